"""ticketclient: pull, train, find and submit lottery tickets.

    import ticketclient
    ticket = ticketclient.pull("lenet-mnist-3.6pct")          # or pull(task="mnist1d", max_density=0.05)
    model = ticket.model()                                     # masked nn.Module at its init
    result = ticket.train()                                    # retrain with its recipe
    print(ticket.verified_accuracy, result.final_test_accuracy)

Importing the package imports neither torch nor huggingface_hub (the registry's web process uses the
torch-free core: ``spec``, ``format``, ``validation``, ``tasks``); the functions below import what they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from ticketclient.api import Submission, VerificationResult
    from ticketclient.ticket import Ticket

__all__ = [
    "PICK_RULE", "Ticket", "find", "login", "pull", "status", "submit", "wait", "whoami", "withdraw",
]

#: How ``pull(task=..., max_density=...)`` chooses (see :func:`ticketclient.hub.pick_best`).
PICK_RULE = ("among published tickets of the task whose measured density is <= max_density: the highest "
             "verified accuracy; ties go to the lower density, then to the newest revision")


def pull(name: str | None = None, revision: str | None = None, *, task: str | None = None,
         max_density: float | None = None, include_unpublished: bool = False, endpoint: str | None = None,
         token: str | None = None, cache_dir: str | os.PathLike | None = None,
         offline: bool | None = None) -> Ticket:
    """Pull a ticket by name (at ``revision``: None = its latest verified revision, or a 40-hex commit id),
    or the best verified ticket of ``task`` under ``max_density`` (rule: :data:`PICK_RULE`).

    Files go to (and come from) the huggingface_hub cache (``cache_dir``, ``TICKETHUB_CACHE``); the sha256
    of every file is checked against the registry's record. Only published tickets are pulled unless
    ``include_unpublished=True`` (your own pending or rejected revisions, with your token, or a withdrawn
    ticket). ``offline=True`` (or ``TICKETHUB_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) makes no request.

    Raises (all from :mod:`ticketclient.errors`): ``TicketNotFoundError``, ``TicketNotVerifiedError``
    (withdrawn, pending or rejected; ``.status`` says which), ``UnauthorizedError``, ``ChecksumError``,
    ``OfflineError``.
    """
    from ticketclient import hub
    from ticketclient.errors import TicketNotFoundError
    from ticketclient.ticket import Ticket

    settings = hub.HubSettings.resolve(endpoint=endpoint, token=token, cache_dir=cache_dir, offline=offline)
    if name is not None:
        if task is not None or max_density is not None:
            raise ValueError("pull() takes a name, or task= (and max_density=), not both")
        return Ticket.from_pulled(hub.pull_files(name, revision, settings=settings,
                                                 include_unpublished=include_unpublished))
    if task is None:
        raise ValueError("pull() needs a ticket name, or task= to pick the best ticket of a task")
    if revision is not None or include_unpublished:
        raise ValueError("pull(task=...) picks among published tickets; revision= and include_unpublished= "
                         "apply to pulls by name")
    if settings.offline:
        return _pick_from_cache(settings, task, max_density)
    candidates = list(hub.list_models(settings, task=task, max_density=max_density))
    best = hub.pick_best(candidates, max_density=max_density)
    if best is None:
        under = f" with density <= {max_density}" if max_density is not None else ""
        raise TicketNotFoundError(f"No published ticket for task {task!r}{under} on {settings.endpoint}.")
    pulled = hub.pull_files(best["id"], best["sha"], settings=settings, info=best, main_commit=True)
    return Ticket.from_pulled(pulled)


def _pick_from_cache(settings: Any, task: str, max_density: float | None) -> Ticket:
    """Offline pull by task: the same rule over the tickets in the cache (their verification.json)."""
    from ticketclient import hub
    from ticketclient.errors import OfflineError
    from ticketclient.ticket import Ticket

    tickets = [Ticket.from_pulled(p) for p in hub.cached_tickets(settings)]
    candidates = []
    for t in tickets:
        if t.task != task or t.verification is None:
            continue
        candidates.append({"id": t.name, "sha": t.commit, "_ticket": t, "ticket": {
            "published": bool(t.verification.get("verified")), "verified_accuracy": t.verified_accuracy,
            "density": t.density, "created_at": t.verification.get("finished_at") or "",
        }})
    best = hub.pick_best(candidates, max_density=max_density)
    if best is None:
        raise OfflineError(f"Offline, and no verified ticket for task {task!r} under density {max_density} is in "
                           f"the cache at {settings.cache_dir}.")
    return best["_ticket"]


def submit(path_or_bundle: Any, *, name: str | None = None, message: str = "", token: str | None = None,
           endpoint: str | None = None) -> Submission:
    """Submit a bundle (folder, TicketBundle or Ticket) for verification; see :func:`ticketclient.api.submit`."""
    from ticketclient import api

    return api.submit(path_or_bundle, name=name, message=message, token=token, endpoint=endpoint)


def wait(name: str, revision: str | None = None, *, timeout: float = 3600.0, token: str | None = None,
         endpoint: str | None = None, progress: Any = True) -> VerificationResult:
    """Poll a submission's verification (with backoff) until verified or rejected; returns the result."""
    from ticketclient import api

    return api.wait(name, revision, timeout=timeout, token=token, endpoint=endpoint, progress=progress)


def status(name: str, revision: str | None = None, *, token: str | None = None,
           endpoint: str | None = None) -> VerificationResult:
    from ticketclient import api

    return api.status(name, revision, token=token, endpoint=endpoint)


def login(token: str, *, endpoint: str | None = None) -> dict[str, Any]:
    """Check a registry token and store it for later commands."""
    from ticketclient import api

    return api.login(token, endpoint=endpoint)


def whoami(*, token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    from ticketclient import api

    return api.whoami(token=token, endpoint=endpoint)


def withdraw(name: str, *, reason: str = "", token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    from ticketclient import api

    return api.withdraw(name, reason=reason, token=token, endpoint=endpoint)


def find(task: str, architecture: dict[str, Any] | None = None, *, rounds: int = 5, out_dir: str | Path | None = None,
         seed: int = 0, progress: bool = True, **kwargs: Any) -> list[Any]:
    """Run iterative magnitude pruning on ``task``; one ``TicketBundle`` per round (``pruning.find_ticket``)."""
    from ticketclient import pruning, spec, tasks

    info = tasks.get(task)
    arch = dict(architecture) if architecture else spec.default_architecture(info.default_family, info.default_args)
    recipe = kwargs.pop("recipe", None)
    if recipe is None:
        if "family" not in arch:
            raise ValueError("find() with a layer-list architecture needs recipe= (a format.Recipe)")
        recipe = spec.FAMILIES[arch["family"]].default_recipe
    return pruning.find_ticket(task, arch, recipe, rounds=rounds, seed=seed, out_dir=out_dir, progress=progress,
                               **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Ticket":
        from ticketclient.ticket import Ticket

        return Ticket
    raise AttributeError(f"module 'ticketclient' has no attribute {name!r}")
