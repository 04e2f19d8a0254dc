"""The verification policy: decisions from numbers, stated in advance (no database, no torch)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from ticketclient.policy import TASK_NOISE, TaskNoise, statistic_variance_factor

from verifier.policy import (
    DENSE,
    RANDOM_MASK,
    REINIT,
    SUPERMASK,
    TICKET,
    VerificationPolicy,
    draw_seeds,
    spread,
    trimmed_mean,
)

NOISE = {"mnist1d": TaskNoise(sd=0.004, tickets=10, seeds_per_ticket=5, how="test figures")}
POLICY = VerificationPolicy(seeds=3, statistic="median", z=2.5, default_tolerance=0.02, noise=NOISE)
TOL = POLICY.tolerance_for("mnist1d")


def runs(ticket, dense=(0.61, 0.62, 0.615), reinit=(0.50, 0.52, 0.51), random_mask=(0.45, 0.47, 0.46),
         supermask=(0.20,)):
    return {TICKET: list(ticket), DENSE: list(dense), REINIT: list(reinit), RANDOM_MASK: list(random_mask),
            SUPERMASK: list(supermask)}


def test_tolerance_is_derived_from_the_measured_spread():
    v = statistic_variance_factor(3, "median")
    assert v == pytest.approx(0.449, abs=0.005)  # variance of the median of 3 normal runs, in sd**2
    assert TOL == pytest.approx(round(2.5 * 0.004 * math.sqrt(v + 1), 4))
    basis = POLICY.tolerance_basis("mnist1d")
    assert basis["sd"] == 0.004 and basis["z"] == 2.5 and basis["formula"].startswith("max(floor")
    assert POLICY.tolerance_basis("cifar10")["source"].startswith("not yet measured")
    assert POLICY.tolerance_for("cifar10") == 0.02


def test_tolerance_has_a_floor_and_operator_overrides_are_stated():
    tiny = VerificationPolicy(noise={"t": TaskNoise(sd=1e-6, tickets=1, seeds_per_ticket=5, how="x")})
    assert tiny.tolerance_for("t") == tiny.floor
    over = VerificationPolicy(noise=NOISE, overrides={"mnist1d": 0.05})
    assert over.tolerance_for("mnist1d") == 0.05 and "override" in over.tolerance_basis("mnist1d")["source"]


def test_every_measured_task_has_a_tolerance_tighter_than_the_old_flat_three_points():
    policy = VerificationPolicy()
    for task in TASK_NOISE:
        assert policy.tolerance_for(task) < 0.03, task


def test_winning_needs_verified_matching_and_beating_controls():
    d = POLICY.decide(task="mnist1d", runs=runs([0.61, 0.62, 0.615]), claimed_accuracy=0.62)
    assert d.verified and d.matching and d.beats_controls and d.winning and d.outcome == "winning"
    assert d.ticket_statistic == pytest.approx(0.615) and d.dense_statistic == pytest.approx(0.615)
    assert d.margin == pytest.approx(0.615 - 0.51) and d.best_control == REINIT


def test_below_the_dense_parent_is_not_winning_even_when_it_beats_controls():
    # the demo ticket of the old policy: 54.8% "winning" while its dense parent reached 61.2%
    d = POLICY.decide(task="mnist1d", runs=runs([0.546, 0.548, 0.550], dense=(0.610, 0.612, 0.615)),
                      claimed_accuracy=0.548)
    assert d.verified and d.beats_controls and d.matching is False
    assert not d.winning and d.outcome == "verified_not_winning"
    assert d.dense_gap == pytest.approx(0.548 - 0.612)
    assert "Not matching" in d.reason and "0.6120" in d.reason


def test_inflated_claim_is_rejected_and_carries_no_winning_flag():
    d = POLICY.decide(task="mnist1d", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=0.90)
    assert not d.verified and not d.winning and d.outcome == "rejected"
    assert "0.6100" in d.reason and "0.9000" in d.reason and f"{TOL:.4f}" in d.reason


def test_a_claim_inflated_by_two_and_a_half_points_is_rejected_at_a_small_spread():
    # finding 2: verified under the old flat 0.03 tolerance although the ticket's spread was 0.3 points
    honest = [0.640, 0.642, 0.643]
    assert POLICY.decide(task="mnist1d", runs=runs(honest), claimed_accuracy=0.642).verified
    assert not POLICY.decide(task="mnist1d", runs=runs(honest), claimed_accuracy=0.642 + 0.025).verified


def test_not_beating_controls_when_margin_within_spread_but_still_verified():
    d = POLICY.decide(task="mnist1d", runs=runs([0.50, 0.58, 0.53], dense=(0.52, 0.53, 0.54),
                                                  reinit=(0.50, 0.51, 0.52)), claimed_accuracy=0.53)
    assert d.verified and d.matching and d.beats_controls is False and not d.winning
    assert d.noise == pytest.approx(0.08)


def test_the_dense_parent_is_not_a_control():
    d = POLICY.decide(task="mnist1d", runs=runs([0.61, 0.62, 0.615], dense=(0.70, 0.70, 0.70)), claimed_accuracy=0.6)
    assert d.best_control == REINIT and DENSE not in d.control_statistics


def test_density_is_never_a_reason_after_training():
    d = POLICY.decide(task="mnist1d", runs=runs([0.61, 0.62, 0.615]), claimed_accuracy=0.6)
    assert "density" not in d.reason


def test_trimmed_mean_drops_best_and_worst():
    assert trimmed_mean([0.1, 0.5, 0.6, 0.9]) == pytest.approx(0.55)
    p = VerificationPolicy(seeds=4, statistic="trimmed_mean")
    assert p.summarise([0.1, 0.5, 0.6, 0.9]) == pytest.approx(0.55)
    assert spread([0.1, 0.5, 0.9]) == pytest.approx(0.8)


def test_too_few_ticket_runs_is_an_error_not_a_verdict():
    with pytest.raises(ValueError, match="3 ticket runs"):
        POLICY.decide(task="mnist1d", runs=runs([0.6, 0.6]), claimed_accuracy=0.6)


def test_policy_dict_states_everything_and_is_json():
    d = POLICY.as_dict("mnist1d")
    assert d["tolerance"] == TOL and d["statistic"] == "median" and "secrets" in d["seeds"]
    assert set(d["roles"]) == {TICKET, DENSE, REINIT, RANDOM_MASK, SUPERMASK}
    assert "biases included" in d["roles"][REINIT] and "same number of kept weights" in d["roles"][RANDOM_MASK]
    assert set(d["outcomes"]) == {"verified", "matching", "beats_controls", "winning"}
    assert d["tolerances"]["mnist1d"]["sd"] == 0.004
    assert "winning ticket is verified, matching and beats its controls" in d["text"]
    json.dumps(d)


def test_seeds_are_drawn_fresh_and_are_not_the_old_public_constants():
    a, b = draw_seeds(3), draw_seeds(3)
    assert set(a) == {"data_order", REINIT, RANDOM_MASK} and all(len(v) == 3 for v in a.values())
    assert a != b
    drawn = [s for v in a.values() for s in v]
    assert not set(drawn) & {0, 1, 2, 1_000_003, 1_000_004, 2_000_003}
    assert all(0 <= s < 2**53 for s in drawn)


def test_unknown_statistic_is_refused():
    with pytest.raises(ValueError, match="statistic"):
        VerificationPolicy(statistic="mean")


def test_policy_and_celery_app_import_without_torch():
    code = ("import sys, verifier, verifier.policy, verifier.tasks, ticketclient.policy; "
            "assert 'torch' not in sys.modules, 'torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_transfer_verifies_iff_matching_and_beating_controls_without_claim():
    assert POLICY.decide(task="digits", runs=runs([0.61, 0.62, 0.615]), claimed_accuracy=None, transfer=True).verified
    d = POLICY.decide(task="digits", runs=runs([0.50, 0.52, 0.51]), claimed_accuracy=None, transfer=True)
    assert not d.verified and "does not transfer" in d.reason
    own = POLICY.decide(task="digits", runs=runs([0.61, 0.62, 0.615]), claimed_accuracy=None)
    assert not own.verified and "claims no test accuracy" in own.reason


def test_a_figure_exactly_at_a_threshold_is_at_it_despite_float_rounding():
    # 0.949 - 0.954 is -0.00500000000000006 in floating point; the ticket is exactly 5 test examples below
    policy = VerificationPolicy(noise={"t": TaskNoise(sd=1e-6, tickets=1, seeds_per_ticket=5, how="x")})
    assert policy.tolerance_for("t") == 0.005
    d = policy.decide(task="t", runs=runs([0.948, 0.949, 0.951], dense=(0.955, 0.952, 0.954),
                                           reinit=(0.934, 0.933, 0.929), random_mask=(0.923, 0.917, 0.924)),
                      claimed_accuracy=0.954)
    assert d.verified and d.matching and d.winning
    # a margin exactly equal to the noise does not beat it
    tied = policy.decide(task="t", runs=runs([0.937, 0.947, 0.951], dense=(0.95, 0.95, 0.95),
                                              reinit=(0.933, 0.937, 0.930), random_mask=(0.9, 0.9, 0.9)),
                         claimed_accuracy=0.947)
    assert tied.margin == pytest.approx(tied.noise) and tied.beats_controls is False


def test_a_claim_from_more_runs_gets_a_tighter_tolerance_never_a_looser_one():
    one, three = POLICY.tolerance_for("mnist1d"), POLICY.tolerance_for("mnist1d", 3)
    v3 = statistic_variance_factor(3, "median")
    assert three == pytest.approx(round(2.5 * 0.004 * math.sqrt(v3 + v3), 4)) and three < one
    assert POLICY.matching_tolerance_for("mnist1d") == three  # dense parent: also a median of 3 runs
    d = POLICY.decide(task="mnist1d", runs=runs([0.61, 0.62, 0.615]), claimed_accuracy=0.62, claim_runs=3)
    assert d.claim_runs == 3 and d.tolerance == three and "from 3 run(s)" in d.reason
    assert POLICY.tolerance_for("mnist1d", 99) >= POLICY.floor


def test_claims_runs_is_parsed_and_bounded():
    from ticketclient.errors import BundleError
    from ticketclient.format import Claims

    assert Claims.from_dict({"test_accuracy": 0.5, "runs": 3}).runs == 3
    assert Claims.from_dict({"test_accuracy": 0.5}).runs is None
    for bad in (0, 100, 2.5, "3"):
        with pytest.raises(BundleError):
            Claims.from_dict({"test_accuracy": 0.5, "runs": bad})
