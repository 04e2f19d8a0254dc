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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketclient import spec, tasks
from ticketclient.errors import OfflineError, RecipeRequiredError, TicketNotFoundError
from ticketclient.recipe import Recipe
from ticketclient.threads import torch_threads, train_device

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ticketclient.api import BundleSource, Submission, VerificationResult
    from ticketclient.bundle import TicketBundle
    from ticketclient.data import TaskData
    from ticketclient.hub import HubSettings
    from ticketclient.pruning import Strategy
    from ticketclient.ticket import Ticket

__all__ = [
    "PICK_RULE", "Ticket", "find", "list_tickets", "login", "pull", "status", "submit", "unmask", "wait",
    "whoami", "withdraw",
]

#: How ``pull(task=..., max_density=...)`` chooses (see :func:`ticketclient.hub.pick_best`).
PICK_RULE = ("among published winning tickets of the task (winning=None: every published one) whose measured "
             "density is <= max_density: the highest verified accuracy; ties go to the lower density, then to "
             "the newest revision")


def pull(name: str | None = None, revision: str | None = None, *, task: str | None = None,
         max_density: float | None = None, winning: bool | None = True, include_unpublished: bool = False,
         endpoint: str | None = None, token: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
         offline: bool | None = None) -> Ticket:
    """Pull a ticket by name (at ``revision``: None = its latest verified revision, or a 40-hex commit id),
    or the best verified ticket of ``task`` under ``max_density`` (rule: :data:`PICK_RULE`).

    By task, only *winning* tickets (verified, matching the dense network and beating the controls) are
    candidates; ``winning=None`` accepts every published ticket, ``winning=False`` only verified tickets
    that are not winning.

    Files go to (and come from) the huggingface_hub cache (``cache_dir``, ``TICKETHUB_CACHE``); the sha256
    of every file is checked against the registry's record. Only published tickets are pulled unless
    ``include_unpublished=True`` (your own pending or rejected revisions, with your token, or a withdrawn
    ticket). ``offline=True`` (or ``TICKETHUB_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) makes no request.

    Raises (all from :mod:`ticketclient.errors`): ``TicketNotFoundError``, ``TicketNotVerifiedError``
    (withdrawn, pending or rejected; ``.status`` says which), ``UnauthorizedError``, ``ChecksumError``,
    ``OfflineError``.
    """
    from ticketclient import hub  # huggingface_hub stays out of `import ticketclient`
    from ticketclient.ticket import Ticket  # requests (through api) stays out of `import ticketclient`

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
        return _pick_from_cache(settings, task, max_density, winning)
    candidates = list(hub.list_models(settings, task=task, max_density=max_density))
    if winning is not None:
        candidates = hub.with_winning(settings, candidates, task=task, winning=winning)
    best = hub.pick_best(candidates, max_density=max_density, winning=winning)
    if best is None:
        under = f" with density <= {max_density}" if max_density is not None else ""
        kind = {True: "winning", False: "verified, not winning", None: "published"}[winning]
        hint = " (winning=None accepts every published ticket)" if winning is True else ""
        raise TicketNotFoundError(f"No {kind} ticket for task {task!r}{under} on {settings.endpoint}{hint}.")
    pulled = hub.pull_files(best["id"], best["sha"], settings=settings, info=best, main_commit=True)
    return Ticket.from_pulled(pulled)


def _pick_from_cache(settings: HubSettings, task: str, max_density: float | None,
                     winning: bool | None = True) -> Ticket:
    """Offline pull by task: the same rule over the tickets in the cache (their verification.json)."""
    from ticketclient import hub  # huggingface_hub stays out of `import ticketclient`
    from ticketclient.ticket import Ticket  # requests (through api) stays out of `import ticketclient`

    tickets = [Ticket.from_pulled(p) for p in hub.cached_tickets(settings)]
    candidates = []
    for t in tickets:
        if t.task != task or t.verification is None:
            continue
        candidates.append({"id": t.name, "sha": t.commit, "_ticket": t, "ticket": {
            "published": bool(t.verification.get("verified")), "verified_accuracy": t.verified_accuracy,
            "density": t.density, "created_at": t.verification.get("finished_at") or "",
            "winning": bool(t.verification.get("winning")) and bool(t.verification.get("verified")),
        }})
    best = hub.pick_best(candidates, max_density=max_density, winning=winning)
    if best is None:
        kind = {True: "winning", False: "verified, not winning", None: "verified"}[winning]
        raise OfflineError(f"Offline, and no {kind} ticket for task {task!r} under density {max_density} is in "
                           f"the cache at {settings.cache_dir}.")
    chosen: Ticket = best["_ticket"]
    return chosen


def submit(path_or_bundle: BundleSource, *, name: str | None = None, message: str = "", token: str | None = None,
           endpoint: str | None = None) -> Submission:
    """Submit a bundle (folder, TicketBundle or Ticket) for verification; see :func:`ticketclient.api.submit`."""
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.submit(path_or_bundle, name=name, message=message, token=token, endpoint=endpoint)


def wait(name: str, revision: str | None = None, *, timeout: float = 3600.0, token: str | None = None,
         endpoint: str | None = None,
         progress: bool | Callable[[VerificationResult], None] = True) -> VerificationResult:
    """Poll a submission's verification (with backoff) until verified or rejected; returns the result."""
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.wait(name, revision, timeout=timeout, token=token, endpoint=endpoint, progress=progress)


def status(name: str, revision: str | None = None, *, token: str | None = None,
           endpoint: str | None = None) -> VerificationResult:
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.status(name, revision, token=token, endpoint=endpoint)


def login(token: str, *, endpoint: str | None = None) -> dict[str, Any]:
    """Check a registry token and store it for later commands."""
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.login(token, endpoint=endpoint)


def whoami(*, token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.whoami(token=token, endpoint=endpoint)


def withdraw(name: str, *, reason: str = "", token: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    from ticketclient import api  # requests stays out of `import ticketclient`

    return api.withdraw(name, reason=reason, token=token, endpoint=endpoint)


def list_tickets(*, task: str | None = None, architecture: str | None = None, search: str | None = None,
                 density_min: float | None = None, density_max: float | None = None, status: str | None = None,
                 owner: str | None = None, winning: bool | None = None, sort: str = "accuracy",
                 limit: int | None = 100, token: str | None = None, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Tickets in the registry's catalog (``GET /api/v1/tickets/``, every page up to ``limit``); each a dict
    with name, task, architecture, status, density, verified_accuracy, owner... See :func:`api.list_tickets`."""
    from ticketclient import api  # requests stays out of `import ticketclient`

    return list(api.list_tickets(task=task, architecture=architecture, search=search, density_min=density_min,
                                 density_max=density_max, status=status, owner=owner, winning=winning, sort=sort,
                                 limit=limit, token=token, endpoint=endpoint))


def unmask(model: torch.nn.Module) -> torch.nn.Module:
    """A plain dense-storage module from a masked one (``Ticket.model()``): see :func:`interop.unmask`."""
    from ticketclient.interop import unmask as _unmask  # torch stays out of `import ticketclient`

    return _unmask(model)


def default_recipe(task: str, architecture: dict[str, Any] | None = None) -> Recipe:
    """The recipe ``find`` uses on ``task`` when none is given: the task's own (``TaskInfo.default_recipe``)
    for its default family, else the architecture family's. A layer-list architecture has none:
    :class:`~ticketclient.errors.RecipeRequiredError`."""
    info = tasks.get(task)
    arch = dict(architecture) if architecture else info.default_architecture
    family = arch.get("family")
    if family is None:
        raise RecipeRequiredError("An architecture given as a layer list has no default recipe: pass recipe= "
                                  "(a ticketclient.format.Recipe), or use a family architecture "
                                  f"(known families: {', '.join(spec.FAMILIES)}).")
    if not isinstance(family, str) or family not in spec.FAMILIES:
        raise ValueError(f"unknown architecture family {family!r} (known: {', '.join(spec.FAMILIES)})")
    recipe = spec.FAMILIES[family].recipe
    if info.default_recipe and family == info.default_family:
        return Recipe.from_dict({**recipe.to_dict(), **info.default_recipe})
    return recipe


def default_strategy(architecture: dict[str, Any]) -> Strategy:
    """The pruning ``find`` uses when none is given: the family's ``default_pruning`` (layer-wise for
    LeNet/Conv, global for VGG/ResNet); layer-wise 20%/10% for a layer list (:func:`pruning.default_strategy`)."""
    from ticketclient import pruning  # torch stays out of `import ticketclient`

    return pruning.default_strategy(architecture)


def find(task: str, architecture: dict[str, Any] | None = None, *, rounds: int = 5, out_dir: str | Path | None = None,
         seed: int = 0, progress: bool = True, threads: int | None = None, recipe: Recipe | None = None,
         strategy: Strategy | None = None, device: str | torch.device | None = None, rewind_iteration: int = 0,
         data: TaskData | None = None, claim_runs: int = 3) -> list[TicketBundle]:
    """Run iterative magnitude pruning on ``task``; one ``TicketBundle`` per round (``pruning.find_ticket``,
    which says what ``rewind_iteration``, ``data`` and ``claim_runs`` do).

    Without ``recipe=``, the task's default recipe (:func:`default_recipe`); without ``strategy=``, the
    family's default pruning (:func:`default_strategy`). A layer-list architecture needs ``recipe=``
    (:class:`~ticketclient.errors.RecipeRequiredError`). On the CPU the torch thread count is chosen from the
    network's size (``threads=`` or TICKETHUB_TORCH_THREADS override it).
    """
    from ticketclient import pruning  # torch stays out of `import ticketclient`

    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    info = tasks.get(task)
    arch = dict(architecture) if architecture else spec.default_architecture(info.default_family, info.default_args)
    if recipe is None:
        recipe = default_recipe(task, arch)
    if strategy is None:
        strategy = pruning.default_strategy(arch)
    resolved = spec.resolve(arch, input_shape=tuple(info.input_shape), num_classes=int(info.num_classes))
    with torch_threads(None, recipe, device=device, threads=threads, arch=resolved):
        return pruning.find_ticket(task, arch, recipe, rounds=rounds, seed=seed, out_dir=out_dir, strategy=strategy,
                                   progress=progress, device=train_device(device), rewind_iteration=rewind_iteration,
                                   data=data, claim_runs=claim_runs)


def __getattr__(name: str) -> Any:
    if name in ("Ticket", "TrainedTicket"):
        from ticketclient import ticket  # requests (through api) stays out of `import ticketclient`

        return getattr(ticket, name)
    raise AttributeError(f"module 'ticketclient' has no attribute {name!r}")
