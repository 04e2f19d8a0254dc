"""The Ticket: what :func:`ticketclient.pull` returns.

A ticket is its config (task, architecture, recipe, claims, provenance), its init tensors and its masks,
plus what the registry says about it (status, verified accuracy, the verification summary). Holding a
ticket needs no torch; :meth:`Ticket.model`, :meth:`Ticket.train` and :meth:`Ticket.compact` import it.

    ticket = ticketclient.pull("lenet-mnist-3.6pct")
    model = ticket.model()            # nn.Module at its init; pruned weights stay zero under any optimizer
    trained = ticket.train(model)     # the recipe, with the core's masked loop: trained.model, trained.result
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketclient import data as data_module
from ticketclient import spec, tasks
from ticketclient.api import verdict, verdict_details
from ticketclient.bundle import BUNDLE_FILES, TicketBundle, measure_density
from ticketclient.compact import CompactResult, compact
from ticketclient.config import TicketConfig
from ticketclient.recipe import Recipe
from ticketclient.threads import torch_threads, train_device

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ticketclient.hub import PulledFiles
    from ticketclient.training import EvalCallback, TrainResult


@dataclass
class TrainedTicket:
    """What :meth:`Ticket.train` returns: the trained module and ``training.TrainResult``.

    The result's fields read through (``trained.final_test_accuracy``, ``trained.curve``...).
    """

    model: torch.nn.Module
    result: TrainResult

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "result"):
            raise AttributeError(name)
        return getattr(self.result, name)

    def __repr__(self) -> str:
        r = self.result
        return (f"TrainedTicket(final_test_accuracy={r.final_test_accuracy:.4f}, iterations={r.iterations}, "
                f"seed={r.seed}, device={r.device!r}, wall_time_s={r.wall_time_s:.1f}, "
                f"model={type(self.model).__name__})")


@dataclass
class Ticket:
    """A lottery ticket: config, init tensors and masks, with the registry's record when pulled."""

    config: TicketConfig
    init: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    name: str | None = None
    #: The revision's 40-hex commit id (None for a local bundle).
    commit: str | None = None
    #: The finished verification (policy, decision, runs), from the revision's verification.json.
    verification: dict[str, Any] | None = None
    #: The registry's record at pull time (status, verified accuracy, downloads...); empty from the cache alone.
    record: dict[str, Any] = field(default_factory=dict)
    #: The folder holding the files (the huggingface_hub snapshot for a pulled ticket).
    path: Path | None = None
    #: sha256 of every file, checked against the registry's record when pulled.
    sha256: dict[str, str] = field(default_factory=dict)
    #: "network" (the registry answered), "cache" (no request: pinned or offline) or "local".
    source: str = "local"

    # --- construction ---------------------------------------------------------------------------------

    @classmethod
    def from_bundle(cls, bundle: TicketBundle, **kwargs: Any) -> Ticket:
        return cls(config=bundle.config, init=dict(bundle.init), mask=dict(bundle.mask), **kwargs)

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs: Any) -> Ticket:
        kwargs.setdefault("path", Path(folder))
        return cls.from_bundle(TicketBundle.load(Path(folder)), **kwargs)

    @classmethod
    def from_pulled(cls, pulled: PulledFiles) -> Ticket:
        bundle = TicketBundle.from_bytes(*(pulled.files[name].read_bytes() for name in BUNDLE_FILES))
        return cls.from_bundle(bundle, name=pulled.name, commit=pulled.commit, verification=pulled.verification(),
                               record=pulled.record, path=pulled.folder, sha256=dict(pulled.sha256),
                               source=pulled.source)

    # --- what it is -----------------------------------------------------------------------------------

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def recipe(self) -> Recipe:
        return self.config.recipe

    @property
    def revision(self) -> str | None:
        return self.commit

    @cached_property
    def arch(self) -> spec.ArchSpec:
        """The resolved architecture (``spec.ArchSpec``) for the task's input shape and classes."""
        info = tasks.get(self.task)
        return spec.resolve(self._architecture_dict(), input_shape=tuple(info.input_shape),
                            num_classes=int(info.num_classes))

    def _architecture_dict(self) -> dict[str, Any]:
        return dict(self.config.architecture)

    @cached_property
    def _densities(self) -> tuple[float, dict[str, float]]:
        overall, per_layer = measure_density(self.mask)
        return float(overall), dict(per_layer)

    @property
    def density(self) -> float:
        """Fraction of prunable weights kept, measured from the mask (never read from the config)."""
        return self._densities[0]

    @property
    def layer_densities(self) -> dict[str, float]:
        return self._densities[1]

    @property
    def status(self) -> str | None:
        """The registry's status at pull time; None when the ticket came from the cache without a request."""
        return self.record.get("status")

    @property
    def verified(self) -> bool | None:
        if self.record:
            return bool(self.record.get("published"))
        if self.verification is not None:
            return bool(self.verification.get("verified"))
        return None

    @property
    def verified_accuracy(self) -> float | None:
        value = self.record.get("verified_accuracy")
        if value is None and self.verification:
            value = self.verification.get("verified_accuracy")
        return None if value is None else float(value)

    @property
    def claimed_accuracy(self) -> float:
        return float(self.config.claims.test_accuracy)

    def verification_summary(self) -> str:
        """One line: verified accuracy, controls and policy, as the verifier decided."""
        v = self.verification
        if not v:
            return "no verification record"
        decision = v.get("decision") or {}
        policy = v.get("policy") or {}
        controls = ", ".join(f"{role} {value:.4f}" for role, value in sorted((decision.get("control_statistics") or {}).items()))
        parts = [
            f"{v.get('status')}",
            f"ticket {decision.get('ticket_statistic', v.get('verified_accuracy'))}",
            f"controls: {controls}" if controls else "",
            f"tolerance {decision.get('tolerance', policy.get('tolerance'))}",
            f"seeds {policy.get('seeds')}" if policy.get("seeds") else "",
        ]
        return "; ".join(p for p in parts if p)

    def __repr__(self) -> str:
        where = f"{self.name}@{self.commit[:12]}" if self.name and self.commit else (self.name or "local ticket")
        acc = self.verified_accuracy
        return (f"Ticket({where}, task={self.task!r}, density={self.density:.4f}, "
                f"verified_accuracy={'n/a' if acc is None else f'{acc:.4f}'}, status={self.status or 'unchecked'})")

    @property
    def verdict(self) -> str:
        """"winning ticket", "verified, not winning", "rejected"... in words (from the verification record)."""
        if self.verification:
            return verdict(self.verification)
        return self.status or "not verified yet"

    def _architecture_text(self) -> str:
        arch = self._architecture_dict()
        if arch.get("family"):
            args = ", ".join(f"{k}={v}" for k, v in sorted((arch.get("args") or {}).items()))
            return f"{arch['family']}" + (f" ({args})" if args else "")
        return f"custom layer list ({len(arch.get('layers') or [])} layers)"

    def describe(self) -> str:
        """A few readable lines for people (the CLI's ``ticket info``)."""
        where = f"{self.name or 'local ticket'}" + (f" @ {self.commit[:12]}" if self.commit else "")
        acc = self.verified_accuracy
        lines = [
            where,
            f"  task:             {self.task}",
            f"  architecture:     {self._architecture_text()}",
            f"  parameters:       {self.arch.num_parameters:,}; weights remaining (density) {self.density:.2%}",
            f"  verdict:          {self.verdict}",
        ]
        lines += [f"                    {line}" for line in verdict_details(self.verification)]
        if self.verification and self.verification.get("reason") and self.verdict != "winning ticket":
            lines.append(f"  reason:           {self.verification['reason']}")
        lines.append(f"  accuracy:         verified {'n/a' if acc is None else f'{acc:.2%}'}, "
                     f"claimed {self.claimed_accuracy:.2%}")
        recipe = self.recipe
        lines.append(f"  recipe:           {recipe.optimizer} lr {recipe.lr}, {recipe.iterations:,} iterations, "
                     f"batch {recipe.batch_size}")
        if self.path:
            lines.append(f"  files:            {self.path}")
        return "\n".join(lines)

    def layer_table_text(self) -> str:
        """The layers as an aligned text table (name, type, output shape, parameters, density, units)."""
        rows = self.arch.layer_table(self.layer_densities, masks=self.mask)
        header = ("layer", "type", "output", "params", "density", "units kept")
        table = [header]
        for r in rows:
            units = "" if r.get("units") is None else (
                f"{r['surviving_units']}/{r['units']}" if r.get("surviving_units") is not None else str(r["units"]))
            table.append((r["name"], r["type"], "x".join(str(d) for d in r["shape"]),
                          f"{r['params']:,}" if r["params"] else "",
                          "" if r.get("density") is None else f"{r['density']:.2%}", units))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                         for row in table)

    # --- torch ----------------------------------------------------------------------------------------

    def masked_init(self) -> dict[str, np.ndarray]:
        """The init tensors with pruned weights set to zero."""
        return {k: (np.where(self.mask[k], v, 0).astype(v.dtype) if k in self.mask else v) for k, v in self.init.items()}

    def model(self, *, device: str | torch.device | None = None, masked: bool = True,
              torch_prune: bool = False) -> torch.nn.Module:
        """The PyTorch module at the ticket's init, pruned weights zero, ready to train with any loop.

        By default the module keeps its mask: pruned weights stay exactly zero under any optimizer (SGD with
        momentum, Adam, AdamW with weight decay...), while parameter names and ``state_dict()`` are those of
        the dense module (:func:`ticketclient.interop.keep_mask`). ``masked=False`` gives a plain
        dense-storage module (pruned weights zero at init only; ``ticketclient.unmask(model)`` does the same
        to a masked one). ``torch_prune=True`` puts the mask on as ``torch.nn.utils.prune``'s
        ``weight_orig``/``weight_mask`` instead.
        """
        from ticketclient import interop, models  # torch stays out until a model is built

        module = models.build_model(self.arch)
        models.load_tensors(module, self.masked_init())
        if torch_prune:
            interop.apply_prune_masks(module, self.mask)
        elif masked:
            interop.keep_mask(module, self.mask)
        if device is not None:
            module = module.to(device)
        return module

    def train(self, model: torch.nn.Module | None = None, *, recipe: Recipe | None = None, seed: int = 0,
              device: str | None = None, progress: bool = True, data: data_module.TaskData | None = None,
              on_eval: EvalCallback | None = None, threads: int | None = None,
              **recipe_overrides: Any) -> TrainedTicket:
        """Train ``model`` (default: a fresh :meth:`model`) from the ticket's init with its recipe, in place.

        Uses ``training.train``, the loop the verifier runs. ``seed`` is the data-order seed.
        ``recipe_overrides`` replace recipe fields (``iterations=500``). ``data`` defaults to
        ``data.load(task)``. On the CPU, torch's thread count is chosen from the model's size
        (:func:`ticketclient.training_threads`; ``threads=`` or ``TICKETHUB_TORCH_THREADS`` set it).
        Returns a :class:`TrainedTicket`: ``.model`` (the trained module, mask kept) and ``.result``
        (``training.TrainResult``; its fields read through: ``.final_test_accuracy``, ``.curve``...).
        """
        from ticketclient import training  # torch stays out until a model is trained

        recipe = recipe if recipe is not None else self.recipe
        if recipe_overrides:
            recipe = replace(recipe, **recipe_overrides)
        task_data = data if data is not None else data_module.load(self.task)
        module = model if model is not None else self.model()
        with torch_threads(module, recipe, device=device, threads=threads, arch=self.arch):
            result = training.train(module, self.mask, task_data, recipe, seed=seed, device=train_device(device),
                                    progress=progress, on_eval=on_eval)
        return TrainedTicket(model=module, result=result)

    def compact(self, tensors: dict[str, np.ndarray] | None = None) -> CompactResult:
        """A smaller dense model computing the same function (eval mode), with counts before and after.

        ``tensors`` are the weights to compact (default: the init); pass a trained model's
        ``models.state_to_numpy(model)`` (or any name -> array dict) to compact it after training.
        """
        info = tasks.get(self.task)
        return compact(self._architecture_dict(), tensors if tensors is not None else self.init, self.mask,
                       input_shape=tuple(info.input_shape), num_classes=int(info.num_classes))

    def prune_state_dict(self) -> dict[str, torch.Tensor]:
        """The init as a ``torch.nn.utils.prune`` state dict (``*.weight_orig`` + ``*.weight_mask``)."""
        from ticketclient import interop  # torch

        return interop.to_prune_state_dict(self.init, self.mask)

    # --- files ----------------------------------------------------------------------------------------

    def bundle(self) -> TicketBundle:
        return TicketBundle(config=self.config, init=self.init, mask=self.mask)

    def save(self, folder: str | Path) -> Path:
        """Write config.json, init.safetensors and mask.safetensors to ``folder``."""
        folder = Path(folder)
        self.bundle().save(folder)
        return folder
