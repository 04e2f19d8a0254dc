"""The verification policy: decisions from numbers, stated in advance (no database, no torch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from verifier.policy import RANDOM_MASK, REINIT, SUPERMASK, TICKET, VerificationPolicy, spread, trimmed_mean

POLICY = VerificationPolicy(seeds=3, statistic="median", default_tolerance=0.02, tolerances={"mnist1d": 0.03})


def runs(ticket, reinit=(0.50, 0.52, 0.51), random_mask=(0.45, 0.47, 0.46), supermask=(0.20,)):
    return {TICKET: list(ticket), REINIT: list(reinit), RANDOM_MASK: list(random_mask), SUPERMASK: list(supermask)}


def test_verified_and_winning_when_median_clears_claim_and_beats_controls():
    d = POLICY.decide(task="mnist1d", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=0.62)
    assert d.verified and d.winning
    assert d.ticket_statistic == pytest.approx(0.61)
    assert d.margin == pytest.approx(0.61 - 0.51)
    assert d.tolerance == 0.03


def test_inflated_claim_is_rejected_with_reason_naming_numbers():
    d = POLICY.decide(task="mnist1d", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=0.90)
    assert not d.verified
    assert "0.6100" in d.reason and "0.9000" in d.reason and "0.030" in d.reason


def test_tolerance_is_per_task_with_default():
    # 0.61 >= 0.635 - 0.03 on mnist1d but not >= 0.635 - 0.02 on a task without its own tolerance
    assert POLICY.decide(task="mnist1d", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=0.635).verified
    assert not POLICY.decide(task="other", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=0.635).verified


def test_not_winning_when_margin_within_spread_but_still_verified():
    d = POLICY.decide(task="mnist1d", runs=runs([0.50, 0.58, 0.53], reinit=(0.50, 0.51, 0.52)), claimed_accuracy=0.53)
    assert d.verified and not d.winning
    assert d.spreads[TICKET] == pytest.approx(0.08)


def test_density_must_equal_claim():
    ok = POLICY.decide(task="mnist1d", runs=runs([0.6] * 3), claimed_accuracy=0.6,
                       measured_density=0.123456, claimed_density=0.12345)
    assert ok.verified
    bad = POLICY.decide(task="mnist1d", runs=runs([0.6] * 3), claimed_accuracy=0.6,
                        measured_density=0.2, claimed_density=0.1)
    assert not bad.verified and "density" in bad.reason


def test_trimmed_mean_drops_best_and_worst():
    assert trimmed_mean([0.1, 0.5, 0.6, 0.9]) == pytest.approx(0.55)
    p = VerificationPolicy(seeds=4, statistic="trimmed_mean")
    assert p.summarise([0.1, 0.5, 0.6, 0.9]) == pytest.approx(0.55)
    assert spread([0.1, 0.5, 0.9]) == pytest.approx(0.8)


def test_too_few_ticket_runs_is_an_error_not_a_verdict():
    with pytest.raises(ValueError, match="3 ticket runs"):
        POLICY.decide(task="mnist1d", runs=runs([0.6, 0.6]), claimed_accuracy=0.6)


def test_policy_dict_states_everything_and_is_json():
    import json

    d = POLICY.as_dict("mnist1d")
    assert d["tolerance"] == 0.03 and d["statistic"] == "median" and d["seeds"] == [0, 1, 2]
    assert "Winning iff" in d["text"] and "supermask" in d["text"]
    json.dumps(d)


def test_unknown_statistic_is_refused():
    with pytest.raises(ValueError, match="statistic"):
        VerificationPolicy(statistic="mean")


def test_policy_and_celery_app_import_without_torch():
    code = "import sys, verifier, verifier.policy, verifier.tasks; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_transfer_verifies_iff_winning_without_claim():
    assert POLICY.decide(task="digits", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=None, transfer=True).verified
    d = POLICY.decide(task="digits", runs=runs([0.50, 0.52, 0.51]), claimed_accuracy=None, transfer=True)
    assert not d.verified and "does not transfer" in d.reason
    own = POLICY.decide(task="digits", runs=runs([0.60, 0.62, 0.61]), claimed_accuracy=None)
    assert not own.verified and "claims no test accuracy" in own.reason
