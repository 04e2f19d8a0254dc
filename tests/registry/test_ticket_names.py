"""Ticket names follow the Hugging Face repo-id rules (the hub client refuses the rest before any request)."""

from __future__ import annotations

import pytest
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from registry.common.errors import ApiError
from registry.tickets.services import validate_ticket_name

GOOD = ["lenet-mnist-3.6pct", "abc", "a.b", "conv_2-cifar10", "x" * 96, "0day", "resnet20.w16-0.05"]
BAD = [
    ("", "required"),
    ("ab", "3 to 96"),
    ("x" * 97, "3 to 96"),
    ("lenet--mnist", "'--'"),
    ("lenet..mnist", "'..'"),
    ("-lenet", "starts and ends"),
    ("lenet.", "starts and ends"),
    ("LeNet", "lowercase"),
    ("le net", "lowercase"),
    ("owner/name", "lowercase"),
    ("café", "lowercase"),
]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_are_accepted_here_and_by_huggingface_hub(name):
    assert validate_ticket_name(name) == name
    validate_repo_id(name)


@pytest.mark.parametrize(("name", "says"), BAD)
def test_bad_names_are_refused_with_the_reason(name, says):
    with pytest.raises(ApiError) as err:
        validate_ticket_name(name)
    assert err.value.code == "invalid_name" and err.value.field == "name"
    assert says in str(err.value.detail)


@pytest.mark.parametrize("name", ["lenet--mnist", "lenet..mnist", "-lenet", "lenet.", "x" * 97])
def test_names_huggingface_hub_refuses_are_refused_here(name):
    with pytest.raises(HFValidationError):
        validate_repo_id(name)
    with pytest.raises(ApiError):
        validate_ticket_name(name)
