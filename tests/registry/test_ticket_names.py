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


# --- one canonical form, and no look-alikes (issue 12, finding 2) ------------------------------------------


@pytest.mark.parametrize("name", ["name\n", "lenet-mnist\n", "abc\r", "abc\x00", "abc\t", "\nabc"])
def test_a_trailing_newline_or_control_character_is_not_part_of_a_valid_name(name):
    with pytest.raises(ApiError) as err:
        validate_ticket_name(name)
    assert err.value.code == "invalid_name"


@pytest.mark.parametrize(("first", "second"), [
    ("lenet-mnist", "lenet_mnist"), ("lenet-mnist", "lenet.mnist"), ("lenet-mnist", "lenetmnist"),
    ("conv-2-cifar", "conv2-cifar"), ("model-10", "model-lo"), ("model-1", "model-l"),
    ("resnet-0", "resnet-o"),
])
def test_look_alike_names_of_another_user_are_409(first, second, owner_client, other_client, make_bundle):
    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=0)
    r = owner_client.post("/api/v1/tickets/", bundle.form(name=first), format="multipart")
    assert r.status_code == 201, r.json()
    other = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=1)
    r = other_client.post("/api/v1/tickets/", other.form(name=second), format="multipart")
    assert r.status_code == 409, r.json()
    assert r.json()["error"] == "name_confusable" and first in r.json()["detail"]
    # The owner may not register the look-alike either: one name, one ticket.
    r = owner_client.post("/api/v1/tickets/", other.form(name=second), format="multipart")
    assert r.status_code == 409


def test_name_key_is_unique_in_the_database(owner, db):
    from django.db import IntegrityError, transaction

    from registry.tickets.models import Task, Ticket

    task = Task.objects.get(name="mnist1d")
    Ticket.objects.create(name="abc-1", owner=owner, task=task)
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.bulk_create([Ticket(name="abc_l", owner=owner, task=task)])
