"""The training recipe of a ticket (no torch): :class:`Recipe`, ``config.json``'s ``recipe`` object.

docs/ticket-format.md, "Recipe semantics", says what each field means; ``ticketclient.training.train``
trains exactly that. ``Recipe.from_dict`` is strict: unknown keys, wrong types and values out of range raise
:class:`~ticketclient.errors.BundleError` naming the field (``recipe.lr``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ticketclient.checks import (
    as_object,
    check_float,
    check_int,
    field_choice,
    field_float,
    field_int,
    known_keys,
)
from ticketclient.errors import BundleError

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "step", "cosine")
AUGMENTS = ("none", "flip-crop")
MAX_ITERATIONS_HARD = 10_000_000
MAX_MILESTONES = 64


@dataclass(frozen=True)
class Recipe:
    """How the ticket is trained (docs/ticket-format.md, "Recipe semantics")."""

    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 60
    iterations: int = 50_000
    warmup_iterations: int = 0
    lr_schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    rewind_iteration: int = 0
    eval_every: int = 1000
    augment: str = "none"

    def __post_init__(self) -> None:  # accept lists from callers, store tuples (hashable, immutable)
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "milestones", tuple(self.milestones))

    @classmethod
    def from_dict(cls, d: Any, where: str = "recipe") -> Recipe:
        d = as_object(d, where)
        known_keys(d, cls, where)
        dflt = cls()
        iterations = field_int(d, "iterations", where, low=1, high=MAX_ITERATIONS_HARD)
        betas = d.get("betas", list(dflt.betas))
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise BundleError("wrong_type", f"{where}.betas", "expected a list of two numbers in [0, 1)")
        beta1, beta2 = (check_float(b, f"{where}.betas[{j}]", low=0.0, high=1.0, error=BundleError)
                        for j, b in enumerate(betas))
        betas_t = (beta1, beta2)
        if any(b >= 1.0 for b in betas_t):
            raise BundleError("out_of_range", f"{where}.betas", "each beta must be below 1")
        milestones = d.get("milestones", [])
        if not isinstance(milestones, list | tuple) or len(milestones) > MAX_MILESTONES:
            raise BundleError("wrong_type", f"{where}.milestones",
                              f"expected a list of at most {MAX_MILESTONES} iteration numbers")
        ms = tuple(check_int(m, f"{where}.milestones[{j}]", low=1, high=MAX_ITERATIONS_HARD, error=BundleError)
                   for j, m in enumerate(milestones))
        if list(ms) != sorted(set(ms)):
            raise BundleError("bad_value", f"{where}.milestones", "milestones must be strictly increasing")
        schedule = field_choice(d, "lr_schedule", where, LR_SCHEDULES, dflt.lr_schedule)
        if schedule != "step" and ms:
            raise BundleError("bad_value", f"{where}.milestones", f"milestones only apply to lr_schedule 'step', "
                                                                  f"not {schedule!r}")
        recipe = cls(
            optimizer=field_choice(d, "optimizer", where, OPTIMIZERS),
            lr=field_float(d, "lr", where, low=0.0, low_open=True, high=10.0),
            momentum=field_float(d, "momentum", where, dflt.momentum, low=0.0, high=0.9999),
            betas=betas_t,
            weight_decay=field_float(d, "weight_decay", where, dflt.weight_decay, low=0.0, high=1.0),
            batch_size=field_int(d, "batch_size", where, low=1, high=65_536),
            iterations=iterations,
            warmup_iterations=field_int(d, "warmup_iterations", where, 0, low=0, high=MAX_ITERATIONS_HARD),
            lr_schedule=schedule,
            milestones=ms,
            gamma=field_float(d, "gamma", where, dflt.gamma, low=0.0, low_open=True, high=1.0),
            rewind_iteration=field_int(d, "rewind_iteration", where, 0, low=0, high=iterations),
            eval_every=field_int(d, "eval_every", where, dflt.eval_every, low=1, high=MAX_ITERATIONS_HARD),
            augment=field_choice(d, "augment", where, AUGMENTS, dflt.augment),
        )
        return recipe

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["milestones"] = list(self.milestones)
        return d

    @property
    def eval_points(self) -> int:
        """Number of evaluations of one run: at iteration 0, every ``eval_every`` iterations, and at the end."""
        return self.iterations // self.eval_every + 1 + (1 if self.iterations % self.eval_every else 0)


__all__ = ["Recipe", "OPTIMIZERS", "LR_SCHEDULES", "AUGMENTS", "MAX_ITERATIONS_HARD", "MAX_MILESTONES"]
