"""The model card (``README.md``) of a verified revision, in the Hugging Face model-card format.

YAML front matter (license, library, tags, the task as dataset, ``model-index`` with the verified figures,
and our own ``lottery_ticket`` block), then the verdict, the controls table, the comparison with the dense
parent, the recipe, the provenance and how to pull. ``huggingface_hub.ModelCard.load`` reads it.

The card is a pure function of stored data (the revision, its config and its finished own verification)
and of the registry's address, so the same request gets the same bytes and the same sha256 every time: the
Hub protocol lists it with that sha256 next to the other files, and the client checks it like them. It is
built once per (verification, address) and kept in the cache.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.cache import cache
from ticketclient.policy import OUTCOME_LABELS

#: Bump when the card's layout changes (old cards then get rebuilt, with their new sha256).
CARD_VERSION = 2
CARD_FILE = "README.md"
CARD_CACHE_SECONDS = 24 * 3600

OUTCOME_WORDS = {key: label[0].upper() + label[1:] for key, label in OUTCOME_LABELS.items()}
ROLE_WORDS = {
    "ticket": "ticket (its own init and mask)",
    "dense": "dense parent (its own init, every weight)",
    "reinit": "control: same mask, fresh init",
    "random_mask": "control: random mask, same per-layer density",
    "supermask": "control: mask on the untrained init",
}


def _q(value: Any) -> str:
    """A YAML scalar: JSON's quoting is valid YAML."""
    return json.dumps(value)


def _pct(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:.{digits}f}%"


def _pp(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:+.{digits}f} pp"


def _pp_abs(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) else f"{abs(value) * 100:.{digits}f} pp"


def _density(value: Any) -> str:
    from registry.badges.badge import format_percent

    return "—" if not isinstance(value, int | float) else format_percent(value)


def outcome_of(verification: Any) -> str:
    from registry.badges.badge import outcome_key

    decision = verification.decision or {}
    outcome = getattr(verification, "outcome", "") or decision.get("outcome")
    status = {"verified": "verified", "rejected": "rejected", "failed": "failed"}.get(verification.status, "pending")
    return outcome_key(status, winning=verification.winning, outcome=outcome or None,
                       verification_status=verification.status)


def _role_rows(verification: Any) -> list[tuple[str, list[float], Any, Any]]:
    from registry.catalog.selectors import role_summaries

    return [(r.role, r.accuracies, r.statistic, r.spread) for r in role_summaries(verification)]


def _verdict(outcome: str, decision: dict[str, Any], statistic: str, runs: int, reason: str) -> str:
    ticket = decision.get("ticket_statistic")
    dense = decision.get("dense_statistic")
    margin = decision.get("margin")
    tolerance = decision.get("tolerance")
    threshold = decision.get("threshold")
    measured = f"the {statistic} test accuracy over {runs} retraining runs is {_pct(ticket, 2)}"
    if outcome == "winning":
        text = (f"**Winning ticket.** Retrained by the hub from its own init and mask, {measured}: the claim "
                f"holds (threshold {_pct(threshold, 2)}), it matches its dense parent ({_pct(dense, 2)}, "
                f"gap {_pp(decision.get('dense_gap'), 2)}) and it beats its best control by {_pp(margin, 2)}.")
    elif outcome in ("verified_not_winning", "verified"):
        why = []
        if decision.get("matching") is False:
            why.append(f"it does not match its dense parent ({_pct(dense, 2)}, gap {_pp(decision.get('dense_gap'), 2)}, "
                       f"tolerance {_pp_abs(tolerance, 1)})")
        if decision.get("beats_controls") is False:
            noise = decision.get("noise")
            within = f" ({_pp(noise, 2).lstrip('+')})" if isinstance(noise, int | float) else ""
            why.append(f"its margin over the best control ({_pp(margin, 2)}) is within the noise{within}")
        tail = f"; it is not a winning ticket because {' and '.join(why)}" if why else ""
        text = f"**{OUTCOME_WORDS[outcome]}.** {measured[0].upper()}{measured[1:]}: the claim holds{tail}."
    elif outcome == "rejected":
        text = (f"**Rejected.** {measured[0].upper()}{measured[1:]}, below the threshold {_pct(threshold, 2)} "
                f"(the claim minus the tolerance {_pp_abs(tolerance, 1)}).")
    else:
        text = f"**{OUTCOME_WORDS.get(outcome, outcome)}.**"
    if reason and outcome != "winning":
        text += f"\n\n{reason}"
    return text


def build_model_card(revision: Any, verification: Any, *, base_url: str) -> bytes:
    """The card's bytes (UTF-8, ``\\n`` line ends); deterministic in its arguments' stored fields."""
    ticket = revision.ticket
    config = revision.config or {}
    claims = config.get("claims") or {}
    recipe = config.get("recipe") or {}
    provenance = config.get("provenance") or {}
    decision = verification.decision or {}
    policy = verification.policy or {}
    statistic = str(policy.get("statistic") or "median")
    outcome = outcome_of(verification)
    rows = _role_rows(verification)
    ticket_runs = next((len(values) for role, values, _s, _sp in rows if role == "ticket"), 0)
    task = verification.task or ticket.task.name
    family = revision.family or ticket.family or "custom"
    name = ticket.name
    license_ = str(config.get("license") or provenance.get("license") or "unknown")
    tags = ["lottery-ticket", "pruning", "sparse", "ticketclient", family,
            {"winning": "winning-ticket", "rejected": "rejected"}.get(outcome, "verified-not-winning")]
    verified_value = decision.get("ticket_statistic", revision.verified_accuracy)

    lines = ["---", f"license: {_q(license_)}", "library_name: ticketclient", "tags:"]
    lines += [f"- {_q(t)}" for t in tags]
    lines += ["datasets:", f"- {_q(task)}", "metrics:", "- accuracy", "model-index:", f"- name: {_q(name)}",
              "  results:", "  - task:", "      type: classification", "      name: Classification",
              "    dataset:", f"      name: {_q(task)}", f"      type: {_q(task)}", "      split: test",
              "    metrics:"]
    metrics = [("accuracy", verified_value, f"verified test accuracy ({statistic} of {ticket_runs} runs)")]
    if decision.get("dense_statistic") is not None:
        metrics.append(("accuracy", decision["dense_statistic"], "dense parent test accuracy"))
    if claims.get("test_accuracy") is not None:
        metrics.append(("accuracy", claims["test_accuracy"], "claimed test accuracy"))
    metrics.append(("density", revision.density, "weights remaining (density)"))
    for kind, value, label in metrics:
        if isinstance(value, int | float):
            lines += [f"    - type: {kind}", f"      value: {round(float(value), 6)}", f"      name: {_q(label)}"]
    lines += [
        "lottery_ticket:",
        f"  outcome: {_q(outcome)}",
        f"  verified: {_q(verification.status == 'verified')}",
        f"  matching: {_q(decision.get('matching'))}",
        f"  beats_controls: {_q(decision.get('beats_controls'))}",
        f"  density: {_q(revision.density)}",
        f"  task: {_q(task)}",
        f"  family: {_q(family)}",
        f"  commit: {_q(revision.commit)}",
        f"  revision: {revision.number}",
        "---",
        "",
        f"# {name}",
        "",
        f"A lottery ticket for **{task}**: {family} at **{_density(revision.density)}** of its prunable weights "
        f"remaining (density), submitted by {ticket.owner.get_username()}. Revision {revision.number}, "
        f"commit `{revision.commit}`.",
        "",
        "## Verdict",
        "",
        _verdict(outcome, decision, statistic, ticket_runs, verification.reason or ""),
        "",
        ("A *winning ticket* is verified (the hub's retraining reaches the claim within the task's tolerance), "
         "matches its dense parent (the same init with every weight, trained by the hub with the same recipe and "
         "seeds) and beats its controls by more than the spread over seeds." if outcome != "rejected" else
         "The hub retrained the ticket from its own init and mask with its declared recipe, next to its dense "
         "parent and its controls, with the same seeds."),
        "",
        "## The dense parent and the controls",
        "",
        f"| run | {statistic} | spread (max − min) | final test accuracy per run |",
        "| --- | ---: | ---: | --- |",
    ]
    for role, values, stat, spread in rows:
        per_run = ", ".join(_pct(v, 2) for v in values) or "—"
        lines.append(f"| {ROLE_WORDS.get(role, role)} | {_pct(stat, 2)} | {_pp(spread, 2).lstrip('+')} | {per_run} |")
    lines += ["", "## Compared with the dense network", ""]
    if decision.get("dense_statistic") is not None:
        lines += [
            f"- ticket: {_pct(decision.get('ticket_statistic'), 2)} at {_density(revision.density)} density",
            f"- dense parent: {_pct(decision['dense_statistic'], 2)} at 100% density",
            f"- ticket − dense: {_pp(decision.get('dense_gap'), 2)} (tolerance {_pp_abs(decision.get('tolerance'), 1)}); "
            f"matching: {'yes' if decision.get('matching') else 'no'}",
        ]
    else:
        lines.append("This verification predates the measured dense parent; no dense comparison was recorded.")
    lines += ["", "## Recipe", "", "| field | value |", "| --- | --- |"]
    lines += [f"| {k} | {_plain(recipe[k])} |" for k in sorted(recipe)]
    if provenance:
        lines += ["", "## Provenance", "", "| field | value |", "| --- | --- |"]
        lines += [f"| {k} | {_provenance_value(k, provenance[k])} |" for k in sorted(provenance)]
    if verification.status != "verified":
        lines += ["", "## How to pull", "",
                  f"This revision is {OUTCOME_WORDS.get(outcome, outcome).lower()}: it is not published. Its owner can "
                  f"pull it with their token: `ticket pull {name} --revision {revision.commit} --include-unpublished "
                  f"--endpoint {base_url}`.", ""]
        return "\n".join(lines).encode("utf-8")
    lines += [
        "",
        "## How to pull",
        "",
        "```python",
        "import ticketclient",
        "",
        f"ticket = ticketclient.pull({_q(name)}, revision={_q(revision.commit)}, endpoint={_q(base_url)})",
        "model = ticket.model()   # the masked network at its init; pruned weights stay zero",
        "result = ticket.train()  # retrain it with its recipe",
        "```",
        "",
        "```bash",
        f"ticket pull {name} --revision {revision.commit} --endpoint {base_url} --out ./{name}",
        "```",
        "",
        "```python",
        "from huggingface_hub import hf_hub_download",
        "",
        f"path = hf_hub_download({_q(name)}, \"mask.safetensors\", revision={_q(revision.commit)}, "
        f"endpoint={_q(base_url)}, token=False)",
        "```",
        "",
        f"Install the client from the hub's repository: `{client_install_line()}`. The verification record "
        "with every run is `verification.json` in this revision.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _provenance_value(key: str, value: Any) -> str:
    from registry.catalog.templatetags.catalog_tags import rates_text

    if key == "rates":
        return rates_text(value)
    if "accuracy" in key and isinstance(value, int | float):
        return _pct(value, 1)
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value).replace("|", "\\|")


def client_install_line() -> str:
    from django.conf import settings

    return str(getattr(settings, "TICKETHUB_CLIENT_INSTALL", 'pip install "./client[torch]"'))


def _card_key(verification: Any, base_url: str) -> str:
    return (f"catalog:card:v{CARD_VERSION}:{verification.pk}:{verification.finished_at and verification.finished_at.timestamp()}:"
            f"{base_url}")


def cached_model_cards(verifications: Any, *, base_url: str) -> dict[int, bytes]:
    """The cached cards of several verifications in one cache round trip, by verification id (misses left out:
    :func:`model_card` builds them). For lists, which would otherwise ask the cache once per row."""
    keys = {_card_key(v, base_url): v.pk for v in verifications}
    return {keys[key]: card for key, card in cache.get_many(list(keys)).items() if key in keys}


def model_card(revision: Any, verification: Any, *, base_url: str) -> bytes:
    """:func:`build_model_card`, cached by (verification, its finish time, the address, the card version)."""
    key = _card_key(verification, base_url)
    card = cache.get(key)
    if card is None:
        card = build_model_card(revision, verification, base_url=base_url)
        cache.set(key, card, CARD_CACHE_SECONDS)
    return card
