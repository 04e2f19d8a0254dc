"""One density rule, at upload: a claim rounded to three significant digits passes, a larger mismatch is a
4xx with both numbers, and a mask that keeps every weight is the dense network, not a ticket."""

from __future__ import annotations

import json

import pytest
from factories import make_bundle
from ticketclient import validation
from ticketclient.errors import BundleError


def _with_density_claim(bundle, claimed):
    cfg = json.loads(bundle.config)
    cfg["claims"]["density"] = claimed
    return bundle.replace(config=json.dumps(cfg).encode())


@pytest.mark.parametrize(("measured", "claimed", "ok"), [
    (0.091186, 0.0912, True),     # the honest 3-significant-digit claim the old policy rejected after training
    (0.091186, 0.091186, True),
    (0.091186, 0.09115, True),    # within half a unit of the third digit
    (0.091186, 0.091, False),     # two digits: off by more than the rounding
    (0.091186, 0.0915, False),
    (0.5, 0.5004, True),
    (0.5, 0.5006, False),
    (0.0036, 0.00364, False),
    (0.003641, 0.00364, True),
])
def test_density_claim_matches_to_three_significant_digits(measured, claimed, ok):
    assert validation.density_claim_matches(claimed, measured) is ok


def test_an_honest_rounded_density_claim_uploads_and_a_wrong_one_names_both_numbers():
    bundle = make_bundle(density=0.137)
    measured = bundle.expected_density
    ok = _with_density_claim(bundle, float(f"{measured:.3g}"))
    assert validation.validate_bundle(config=ok.config, init=ok.init, mask=ok.mask).density == measured
    bad = _with_density_claim(bundle, round(measured * 1.01, 6))
    with pytest.raises(BundleError) as e:
        validation.validate_bundle(config=bad.config, init=bad.init, mask=bad.mask)
    assert e.value.code == "claim_mismatch" and f"{measured:.3g}" in str(e.value)


def test_a_mask_keeping_every_weight_is_not_a_ticket():
    dense = make_bundle(density=1.0)
    with pytest.raises(BundleError) as e:
        validation.validate_bundle(config=dense.config, init=dense.init, mask=dense.mask)
    assert e.value.code == "not_a_ticket" and "dense network" in str(e.value)


@pytest.mark.django_db
def test_the_api_refuses_a_dense_mask_with_a_clear_400(owner_client):
    dense = make_bundle(density=1.0)
    r = owner_client.post("/api/v1/tickets/", dense.form(name="dense-net"), format="multipart")
    assert r.status_code == 400, r.content
    assert r.json()["error"] == "not_a_ticket"
