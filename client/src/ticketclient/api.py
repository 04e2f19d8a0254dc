"""The registry's REST API (``/api/v1/``): submit a ticket, follow its verification, log in.

    sub = ticketclient.submit("out/round-07", name="mlp-mnist1d-21pct", token="...")
    result = ticketclient.wait(sub.name, sub.commit)        # polls with backoff, prints progress
    result.verified, result.verified_accuracy, result.reason

The token is ours (``TICKETHUB_TOKEN``, ``token=``, or the file ``ticket login`` writes), never a Hugging
Face token. Errors are typed (:mod:`ticketclient.errors`): an invalid bundle raises ``BundleError`` before
anything is sent (the bundle is validated locally with the same code the registry runs).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import requests

from ticketclient import __version__, constants, validation
from ticketclient.bundle import BUNDLE_FILES, BUNDLE_PARTS, TicketBundle
from ticketclient.errors import (
    BundleError,
    HubError,
    OfflineError,
    SubmissionRejectedError,
    TicketNotFoundError,
    UnauthorizedError,
)
from ticketclient.policy import OUTCOME_LABELS
from ticketclient.validation import ValidatedBundle

if TYPE_CHECKING:  # pragma: no cover
    from ticketclient.ticket import Ticket

#: What :func:`submit` uploads: a bundle folder, a TicketBundle, a Ticket, or the three files' bytes.
BundleSource: TypeAlias = "str | os.PathLike[str] | TicketBundle | Ticket | Mapping[str, bytes]"

_TIMEOUT = 60.0
#: Final states of a verification: the two verdicts, and ``failed`` (the hub could not finish it: not the
#: ticket's fault; the record's ``reason`` says so to the submitter).
FINAL = ("verified", "rejected", "failed")


# --- settings and the token file ----------------------------------------------------------------------


def _endpoint(endpoint: str | None) -> str:
    return (endpoint or constants.endpoint()).rstrip("/")


def _token(token: str | None) -> str | None:
    return token if token is not None else constants.token()


def token_file() -> Path:
    """Where ``ticket login`` stores the token (``TICKETHUB_TOKEN_PATH`` or the config folder)."""
    return constants.token_path()


def _headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"ticketclient/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _detail(response: requests.Response) -> tuple[str, str | None, str]:
    """(code, field, sentence) of an error body in the registry's shape."""
    try:
        body = response.json()
    except ValueError:
        return "http_error", None, response.text[:300] or response.reason
    if isinstance(body, dict):
        return str(body.get("error") or "http_error"), body.get("field"), str(body.get("detail") or body)
    return "http_error", None, str(body)[:300]


def _raise_for(response: requests.Response, what: str) -> None:
    if response.ok:
        return
    code, field_name, detail = _detail(response)
    if response.status_code in (401, 403):
        raise UnauthorizedError(f"{what}: {detail} (HTTP {response.status_code})")
    if response.status_code == 404:
        raise TicketNotFoundError(f"{what}: {detail}")
    raise SubmissionRejectedError(f"{what}: {detail}", status=response.status_code,
                                  detail={"error": code, "field": field_name, "detail": detail})


def _request(method: str, url: str, *, token: str | None, what: str, **kwargs: Any) -> requests.Response:
    try:
        response = requests.request(method, url, headers=_headers(token), timeout=_TIMEOUT, **kwargs)
    except requests.ConnectionError as err:
        raise OfflineError(f"{what}: cannot reach {url} ({err.__class__.__name__})") from err
    _raise_for(response, what)
    return response


def _request_json(method: str, url: str, *, token: str | None, what: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`_request`'s JSON object body (a :class:`HubError` if the registry answered anything else)."""
    return _json_object(_request(method, url, token=token, what=what, **kwargs), what)


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HubError(f"{what}: the registry did not answer with a JSON object (HTTP {response.status_code})")
    return body


# --- login --------------------------------------------------------------------------------------------


def whoami(*, token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """The account the token belongs to (``GET /api/v1/me/``)."""
    token = _token(token)
    if not token:
        raise UnauthorizedError("No registry token: pass token=, set TICKETHUB_TOKEN, or run `ticket login`.")
    return _request_json("GET", f"{_endpoint(endpoint)}/api/v1/me/", token=token, what="checking the token")


def login(token: str, *, endpoint: str | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """Check ``token`` against the registry, then store it (mode 0600) for later commands."""
    account = whoami(token=token, endpoint=endpoint)
    target = Path(path) if path is not None else token_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token.strip() + "\n")
    return account


# --- submit -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What the registry answered to a submission."""

    name: str
    commit: str
    number: int
    status: str
    url: str
    created: bool
    body: dict[str, Any] = field(default_factory=dict, repr=False)


def _bundle_bytes(path_or_bundle: BundleSource) -> dict[str, bytes]:
    """config/init/mask bytes from a folder, a TicketBundle, a Ticket, or a dict of bytes."""
    if isinstance(path_or_bundle, Mapping):
        return {k: bytes(path_or_bundle[k]) for k in BUNDLE_PARTS}
    if isinstance(path_or_bundle, str | os.PathLike):
        folder = Path(path_or_bundle)
        if not folder.is_dir():
            raise BundleError("not_a_folder", None, f"{folder} is not a folder holding a ticket bundle")
        files = dict(zip(BUNDLE_PARTS, BUNDLE_FILES, strict=True))
        missing = [f for f in files.values() if not (folder / f).is_file()]
        if missing:
            raise BundleError("missing_file", missing[0], f"{folder} has no {', '.join(missing)}")
        return {part: (folder / filename).read_bytes() for part, filename in files.items()}
    bundle = path_or_bundle.bundle() if hasattr(path_or_bundle, "bundle") else path_or_bundle
    if not isinstance(bundle, TicketBundle):
        raise TypeError(f"submit() takes a folder, a TicketBundle or a Ticket, not {type(path_or_bundle).__name__}")
    return bundle_to_bytes(bundle)


def _config_name(config: bytes) -> str | None:
    """The ``name`` in config.json bytes, if any."""
    try:
        value = json.loads(config).get("name")
    except (ValueError, AttributeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _suggest_name(validated: ValidatedBundle | None) -> str:
    """A name in the catalog's style: ``<family>-<task>-<density>pct``."""
    if validated is None:
        return "my-ticket"
    family = validated.config.architecture.get("family") or "custom"
    pct = float(validated.density) * 100
    return f"{family}-{validated.config.task}-{pct:.2g}pct" if pct < 10 else \
        f"{family}-{validated.config.task}-{pct:.0f}pct"


def bundle_to_bytes(bundle: TicketBundle) -> dict[str, bytes]:
    config, init, mask = bundle.to_bytes()
    return {"config": config, "init": init, "mask": mask}


def submit(path_or_bundle: BundleSource, *, name: str | None = None, message: str = "", token: str | None = None,
           endpoint: str | None = None, validate: bool = True) -> Submission:
    """Upload a bundle (a folder, a ``TicketBundle`` or a ``Ticket``) for verification.

    The bundle is validated locally first (``validation.validate_bundle``, the registry's own checks), so
    a malformed one raises :class:`BundleError` without a request. Returns the stored revision; follow it
    with :func:`wait`.
    """
    token = _token(token)
    if not token:
        raise UnauthorizedError("Submitting needs a registry token: pass token=, set TICKETHUB_TOKEN, or run "
                                "`ticket login`.")
    parts = _bundle_bytes(path_or_bundle)
    validated = None
    if validate:
        validated = validation.validate_bundle(config=parts["config"], init=parts["init"], mask=parts["mask"])
    if not name:
        name = _config_name(parts["config"])
        if not name:
            raise BundleError("missing_name", "name", "no ticket name: pass name= (--name) or set \"name\" in "
                              f"config.json, for example {_suggest_name(validated)!r}")
    files = {part: (filename, parts[part], "application/json" if part == "config" else "application/octet-stream")
             for part, filename in zip(BUNDLE_PARTS, BUNDLE_FILES, strict=True)}
    data = {k: v for k, v in (("name", name), ("message", message)) if v}
    url = f"{_endpoint(endpoint)}/api/v1/tickets/"
    try:
        response = requests.post(url, headers=_headers(token), files=files, data=data, timeout=_TIMEOUT)
    except requests.ConnectionError as err:
        raise OfflineError(f"submitting: cannot reach {url} ({err.__class__.__name__})") from err
    if response.status_code == 400:
        code, field_name, detail = _detail(response)
        raise BundleError(code, field_name, f"the registry refused the bundle: {detail}")
    _raise_for(response, f"submitting {name or 'the bundle'}")
    body = _json_object(response, f"submitting {name}")
    revision = body.get("revision") or {}
    return Submission(name=body["name"], commit=revision.get("commit", ""), number=int(revision.get("number", 0)),
                      status=str(revision.get("status") or body.get("status")), url=str(body.get("url", "")),
                      created=bool(body.get("created")), body=body)


# --- status and wait ----------------------------------------------------------------------------------


def verdict(record: dict[str, Any] | None) -> str:
    """The verdict of a verification record (or a ``verification.json``) in words: "winning ticket",
    "verified, not winning", "rejected", "verification failed", else its status ("queued", "running"...).
    Tolerant of records written before the dense comparison existed (no ``outcome``)."""
    if not record:
        return "not verified yet"
    outcome = record.get("outcome") or ((record.get("decision") or {}).get("outcome"))
    status = str(record.get("status") or "")
    if outcome == "winning" or (not outcome and status == "verified" and record.get("winning") is True
                                and record.get("matching") is not False):
        return OUTCOME_LABELS["winning"]
    if outcome == "verified_not_winning" or (not outcome and status == "verified"):
        return OUTCOME_LABELS["verified_not_winning"]
    if outcome == "rejected" or status == "rejected":
        return OUTCOME_LABELS["rejected"]
    if outcome == "failed" or status == "failed":
        return OUTCOME_LABELS["failed"]
    return status or "unknown"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"


def verdict_details(record: dict[str, Any] | None) -> list[str]:
    """Sentences that back the verdict: the dense comparison and the controls, when the record has them."""
    if not record:
        return []
    decision = dict(record.get("decision") or {})
    lines = []
    ticket = decision.get("ticket_statistic")
    dense = decision.get("dense_statistic")
    matching = record.get("matching", decision.get("matching"))
    beats = record.get("beats_controls", decision.get("beats_controls"))
    if dense is not None and ticket is not None:
        gap = decision.get("dense_gap", float(ticket) - float(dense))
        word = "matches" if matching is True else "does not match" if matching is False else "compared with"
        tolerance = decision.get("tolerance")
        within = f" (tolerance {_pct(tolerance)})" if tolerance is not None else ""
        lines.append(f"{word} the dense network: ticket {_pct(ticket)} vs dense {_pct(dense)}, "
                     f"{float(gap) * 100:+.2f} points{within}")
    controls = {role: v for role, v in (decision.get("control_statistics") or {}).items()
                if role != "dense" and v is not None}
    if controls:
        best = decision.get("best_control") or max(controls, key=lambda role: float(controls[role]))
        word = ("beats the controls" if beats is True else "does not beat the controls" if beats is False
                else "controls")
        listed = ", ".join(f"{role} {_pct(value)}" for role, value in sorted(controls.items()))
        gap = decision.get("margin")
        if gap is None and ticket is not None and best in controls:
            gap = float(ticket) - float(controls[best])
        noise = decision.get("noise")
        margin = "" if gap is None else (f" (margin over {best} {float(gap) * 100:+.2f} points"
                                         + (f", noise {float(noise) * 100:.2f}" if noise is not None else "") + ")")
        lines.append(f"{word}: {listed}{margin}")
    elif beats is not None:
        lines.append("beats the controls" if beats else "does not beat the controls")
    return lines


@dataclass(frozen=True)
class VerificationResult:
    """A revision's verification as the registry reports it.

    ``status`` is the revision's (pending, verifying, verified, rejected), or ``failed`` when the hub could
    not finish its verification (see ``reason``, written for the submitter).
    """

    name: str
    commit: str
    status: str
    verified_accuracy: float | None
    claimed_accuracy: float | None
    density: float | None
    #: the ``own`` verification record (policy, decision, progress, runs) if there is one
    record: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def winning(self) -> bool | None:
        value = (self.record or {}).get("winning")
        return None if value is None else bool(value) and self.verified

    @property
    def verdict(self) -> str:
        """In words: "winning ticket", "verified, not winning", "rejected", "verification failed"..."""
        if not self.finished:
            return self.status
        return verdict({**(self.record or {}), "status": self.status})

    @property
    def reason(self) -> str:
        return str((self.record or {}).get("reason") or "")

    @property
    def progress(self) -> dict[str, Any]:
        return dict((self.record or {}).get("progress") or {})

    @property
    def tolerance(self) -> float | None:
        decision = (self.record or {}).get("decision") or {}
        value = decision.get("tolerance")
        return None if value is None else float(value)

    def describe(self) -> str:
        acc = "n/a" if self.verified_accuracy is None else f"{self.verified_accuracy:.4f}"
        claim = "n/a" if self.claimed_accuracy is None else f"{self.claimed_accuracy:.4f}"
        head = f"{self.name}@{self.commit[:12]}: {self.verdict}"
        if self.failed:
            text = f"{head}: the hub could not finish the verification (not a verdict on the ticket)"
            return f"{text}: {self.reason}" if self.reason else text
        text = f"{head} (verified accuracy {acc}, claimed {claim})"
        lines = [f"{text}: {self.reason}" if self.reason else text]
        if self.finished:
            lines += [f"  {line}" for line in verdict_details(self.record)]
        return "\n".join(lines)


def status(name: str, revision: str | None = None, *, token: str | None = None,
           endpoint: str | None = None) -> VerificationResult:
    """The verification status of ``name`` at ``revision`` (default: its latest revision)."""
    rev = revision or "latest"
    url = f"{_endpoint(endpoint)}/api/v1/tickets/{name}/revisions/{rev}/verification/"
    body = _request_json("GET", url, token=_token(token), what=f"status of {name}@{rev}")
    records = body.get("records") or []
    own = next((r for r in records if r.get("kind") == "own"), records[0] if records else None)
    state = str(body.get("status"))
    if own and own.get("status") == "failed" and state not in ("verified", "rejected"):
        state = "failed"
    return VerificationResult(name=name, commit=str(body.get("commit", "")), status=state,
                              verified_accuracy=body.get("verified_accuracy"),
                              claimed_accuracy=body.get("claimed_accuracy"), density=body.get("density"),
                              record=own, body=body)


def _print_progress(result: VerificationResult) -> None:
    p = result.progress
    if p.get("runs_total"):
        line = (f"\r{result.name}: {result.status} run {p.get('runs_done', 0)}/{p.get('runs_total')} "
                f"{p.get('current_run') or ''} it {p.get('iteration') or 0}/{p.get('iterations') or '?'}")
    else:
        line = f"\r{result.name}: {result.status}"
    sys.stderr.write(line[:120].ljust(60))
    sys.stderr.flush()


def wait(name: str, revision: str | None = None, *, timeout: float = 3600.0, token: str | None = None,
         endpoint: str | None = None, progress: bool | Callable[[VerificationResult], None] = True,
         poll_initial: float = 1.0, poll_max: float = 15.0) -> VerificationResult:
    """Poll the verification of ``name`` (at ``revision``) with backoff until it is verified, rejected or
    failed (the hub could not finish it: ``.failed``, ``.reason``).

    Returns the final :class:`VerificationResult` (check ``.verified``); raises ``TimeoutError`` after
    ``timeout`` seconds. ``progress`` prints a status line to stderr, or is called with each poll's result.
    """
    deadline = time.monotonic() + timeout
    delay = poll_initial
    report = _print_progress if progress is True else (progress or None)
    while True:
        result = status(name, revision, token=token, endpoint=endpoint)
        if report:
            report(result)
        if result.finished:
            if progress is True:
                sys.stderr.write("\n")
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{name} is still {result.status} after {timeout:.0f} s")
        time.sleep(min(delay, remaining))
        delay = min(poll_max, delay * 1.5)


def withdraw(name: str, *, reason: str = "", token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """Withdraw your ticket (it stops being served as published)."""
    url = f"{_endpoint(endpoint)}/api/v1/tickets/{name}/withdraw/"
    return _request_json("POST", url, token=_token(token), what=f"withdrawing {name}", json={"reason": reason})


def ticket_record(name: str, *, token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """The registry's REST record of a ticket (``GET /api/v1/tickets/<name>/``)."""
    url = f"{_endpoint(endpoint)}/api/v1/tickets/{name}/"
    return _request_json("GET", url, token=_token(token), what=f"ticket {name}")


def list_tickets(*, task: str | None = None, architecture: str | None = None, search: str | None = None,
                 density_min: float | None = None, density_max: float | None = None, status: str | None = None,
                 owner: str | None = None, winning: bool | None = None, sort: str = "accuracy",
                 limit: int | None = 100, page_size: int = 100, token: str | None = None,
                 endpoint: str | None = None) -> Iterator[dict[str, Any]]:
    """Tickets from ``GET /api/v1/tickets/`` (every page, following ``next``, up to ``limit``; None: all)."""
    params: dict[str, Any] | None = {k: v for k, v in {
        "task": task, "architecture": architecture, "search": search, "density_min": density_min,
        "density_max": density_max, "status": status, "owner": owner, "sort": sort, "page_size": page_size,
        "winning": None if winning is None else ("true" if winning else "false"),
    }.items() if v not in (None, "")}
    url: str | None = f"{_endpoint(endpoint)}/api/v1/tickets/"
    count = 0
    token = _token(token)
    while url:
        body = _request_json("GET", url, token=token, what="listing tickets", params=params)
        for item in body.get("results") or []:
            yield item
            count += 1
            if limit is not None and count >= limit:
                return
        url = body.get("next")
        params = None  # the next link carries the query


def similar_names(name: str, *, token: str | None = None, endpoint: str | None = None, n: int = 3) -> list[str]:
    """Ticket names close to ``name`` (for "did you mean"), from catalog searches on its words."""
    words = [w for w in re.split(r"[-_.\s/]+", name) if len(w) >= 3][:3] or [name[:3]]
    names: set[str] = set()
    for word in words:
        try:
            names.update(t["name"] for t in list_tickets(search=word, limit=200, sort="newest", token=token,
                                                         endpoint=endpoint))
        except Exception:  # noqa: BLE001 - a suggestion is best effort
            continue
    return difflib.get_close_matches(name, sorted(names - {name}), n=n, cutoff=0.6)
