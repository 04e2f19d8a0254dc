"""Reproduce one recorded verification run locally, with the seeds the verifier drew and published.

    result = ticketclient.reproduce("lenet-mnist5k-3.6pct", run=1)           # the ticket's run 1
    result = ticketclient.reproduce("lenet-mnist5k-3.6pct", run=0, role="reinit")
    print(result.describe())        # recorded and local final test accuracy side by side

The run is rebuilt exactly as the verifier built it (:func:`ticketclient.pruning.role_state` from the
record's control seed) and trained with :func:`ticketclient.training.train` and the record's data-order
seed. The verifier may have trained the run stacked with the others (``engine: stacked``): the same
arithmetic batched, so a local figure can differ from the recorded one in the last decimals of the loss,
and rarely by a test example or two; a sequential record reproduces bit for bit on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ticketclient
from ticketclient import api, policy
from ticketclient import data as data_module
from ticketclient.bundle import TicketBundle
from ticketclient.errors import HubError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ticketclient.training import TrainResult


@dataclass(frozen=True)
class Reproduction:
    """A recorded run next to the same run trained here."""

    ticket: str
    revision: str
    role: str
    run: int
    data_seed: int | None
    control_seed: int | None
    recorded_accuracy: float
    local_accuracy: float
    recorded_engine: str
    recorded_device: str
    result: TrainResult | None = None

    @property
    def difference(self) -> float:
        return self.local_accuracy - self.recorded_accuracy

    def describe(self) -> str:
        seeds = f"data-order seed {self.data_seed}" + (
            f", control seed {self.control_seed}" if self.control_seed is not None else "")
        return (
            f"{self.ticket}@{self.revision[:12]} {self.role} run {self.run} ({seeds})\n"
            f"  recorded  {self.recorded_accuracy:.4f}  ({self.recorded_engine} engine on {self.recorded_device})\n"
            f"  local     {self.local_accuracy:.4f}  (difference {self.difference:+.4f})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "ticket", "revision", "role", "run", "data_seed", "control_seed", "recorded_accuracy",
            "local_accuracy", "recorded_engine", "recorded_device")} | {"difference": self.difference}


def recorded_run(record: dict[str, Any], *, role: str, run: int) -> dict[str, Any]:
    """The run ``run`` of ``role`` in a finished verification record (as the REST API returns it)."""
    if role not in policy.ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(policy.ROLES)})")
    if record.get("status") not in ("verified", "rejected"):
        raise HubError(f"the verification is {record.get('status')!r}: its seeds are published only once "
                             f"it has finished")
    runs = [r for r in record.get("runs") or [] if r.get("role") == role]
    found = next((r for r in runs if int(r.get("seed", -1)) == run), None)
    if found is None:
        have = ", ".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"])) or "none"
        raise ValueError(f"the record has no {role} run {run} (its {role} runs: {have})")
    if role != policy.SUPERMASK and found.get("data_seed") is None:
        raise HubError("this record predates published seeds (policy version 1): it cannot be reproduced")
    return dict(found)


def reproduce_run(bundle: TicketBundle, recorded: dict[str, Any], *, role: str, data: data_module.TaskData | None = None,
                  device: str | torch.device | None = None, progress: bool = True) -> tuple[float, TrainResult | None]:
    """Train (or evaluate) one recorded run of ``bundle`` locally: (final test accuracy, TrainResult)."""
    from ticketclient import models, pruning, training  # torch stays out until a run is trained

    task_data = data if data is not None else data_module.load(bundle.config.task)
    if role == policy.SUPERMASK:
        return float(pruning.supermask_accuracy(bundle, task_data, device=device)), None
    control_seed = recorded.get("control_seed")
    init, mask = pruning.role_state(bundle, role, None if control_seed is None else int(control_seed))
    model = models.build_model(bundle.config.resolve())
    models.load_tensors(model, init)
    result = training.train(model, mask, task_data, bundle.config.recipe, seed=int(recorded["data_seed"]),
                            device=device, progress=progress)
    return float(result.final_test_accuracy), result


def reproduce(name: str, *, run: int = 0, role: str = policy.TICKET, revision: str | None = None,
              token: str | None = None, endpoint: str | None = None, device: str | torch.device | None = None,
              data: data_module.TaskData | None = None, progress: bool = True) -> Reproduction:
    """Retrain run ``run`` of ``role`` of ``name``'s verification locally and compare with the record."""
    status = api.status(name, revision, token=token, endpoint=endpoint)
    record = status.record or {}
    recorded = recorded_run({**record, "status": record.get("status", status.status)}, role=role, run=run)
    ticket = ticketclient.pull(name, status.commit, include_unpublished=True, token=token, endpoint=endpoint)
    local, result = reproduce_run(ticket.bundle(), recorded, role=role, data=data, device=device, progress=progress)
    return Reproduction(
        ticket=name, revision=status.commit, role=role, run=run, data_seed=recorded.get("data_seed"),
        control_seed=recorded.get("control_seed"), recorded_accuracy=float(recorded["final_test_accuracy"]),
        local_accuracy=local, recorded_engine=str(recorded.get("engine") or ""),
        recorded_device=str(recorded.get("device") or ""), result=result,
    )


__all__ = ["Reproduction", "recorded_run", "reproduce", "reproduce_run"]
