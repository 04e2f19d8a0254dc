"""``config.json`` of the ticket format v1 (docs/ticket-format.md), as frozen dataclasses (no torch).

:class:`TicketConfig`: format, task, architecture, :class:`~ticketclient.recipe.Recipe`, :class:`Claims`,
:class:`Provenance`. ``from_dict``/``from_json`` are strict: unknown keys, wrong types and values out of
range raise :class:`~ticketclient.errors.BundleError` naming the field (``claims.test_accuracy``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ticketclient import spec, tasks
from ticketclient.checks import (
    as_object,
    check_float,
    check_ticket_name,
    field_accuracy,
    field_choice,
    field_float,
    field_int,
    field_str,
    known_keys,
    string_map,
)
from ticketclient.errors import BundleError
from ticketclient.recipe import MAX_ITERATIONS_HARD, Recipe
from ticketclient.strict_json import check_json_tree, strict_json_loads

FORMAT = "lottery-ticket/v1"
STRATEGIES = ("layerwise", "global")
TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: At most this many runs behind one claim.
MAX_CLAIM_RUNS = 99


@dataclass(frozen=True)
class Claims:
    """What the submitter claims; checked by retraining. Accuracies are fractions in [0, 1]."""

    test_accuracy: float
    early_stop_iteration: int | None = None
    early_stop_test_accuracy: float | None = None
    val_accuracy: float | None = None
    #: optional; if given it must agree with the density measured from the mask
    density: float | None = None
    #: how many training runs (data-order seeds) ``test_accuracy`` is the median of (absent: one run); the
    #: policy's tolerance accounts for it, so more runs mean a tighter tolerance, never a looser one
    runs: int | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str = "claims") -> Claims:
        d = as_object(d, where)
        known_keys(d, cls, where)
        return cls(
            test_accuracy=field_accuracy(d, "test_accuracy", where),
            early_stop_iteration=field_int(d, "early_stop_iteration", where, None, low=0, high=MAX_ITERATIONS_HARD),
            early_stop_test_accuracy=field_accuracy(d, "early_stop_test_accuracy", where, None),
            val_accuracy=field_accuracy(d, "val_accuracy", where, None),
            density=field_float(d, "density", where, None, low=0.0, low_open=True, high=1.0),
            runs=field_int(d, "runs", where, None, low=1, high=MAX_CLAIM_RUNS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Provenance:
    """How the ticket was found (informational; never trusted for measurement)."""

    method: str = "imp"
    rounds: int | None = None
    strategy: str | None = None
    rates: dict[str, float] = field(default_factory=dict)
    rewind_iteration: int | None = None
    seed: int | None = None
    dense_test_accuracy: float | None = None
    parent: str | None = None
    library: str | None = None
    notes: str | None = None
    #: the data it was trained on: ``{"name": task, "sha256": ticketclient.data.TaskData.fingerprint}``
    data: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str = "provenance") -> Provenance:
        d = as_object(d, where)
        known_keys(d, cls, where)
        rates_in = d.get("rates") or {}
        rates_in = as_object(rates_in, f"{where}.rates")
        if len(rates_in) > 64:
            raise BundleError("out_of_range", f"{where}.rates", "at most 64 rates")
        rates = {}
        for k, v in rates_in.items():
            if not isinstance(k, str) or len(k) > 200:
                raise BundleError("wrong_type", f"{where}.rates", "rate names must be short strings")
            rates[k] = check_float(v, f"{where}.rates.{k}", low=0.0, high=1.0, error=BundleError)
        return cls(
            method=field_str(d, "method", where, "imp", max_len=64),
            rounds=field_int(d, "rounds", where, None, low=0, high=10_000),
            strategy=field_choice(d, "strategy", where, STRATEGIES, None),
            rates=rates,
            rewind_iteration=field_int(d, "rewind_iteration", where, None, low=0, high=MAX_ITERATIONS_HARD),
            seed=field_int(d, "seed", where, None, low=0, high=2**63 - 1),
            dense_test_accuracy=field_accuracy(d, "dense_test_accuracy", where, None),
            parent=field_str(d, "parent", where, None, max_len=200),
            library=field_str(d, "library", where, None, max_len=100),
            notes=field_str(d, "notes", where, None, max_len=2000),
            data=string_map(d, "data", where),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TicketConfig:
    """``config.json``: see docs/ticket-format.md. ``architecture`` is kept as the JSON object given."""

    task: str
    architecture: dict[str, Any]
    recipe: Recipe
    claims: Claims
    provenance: Provenance | None = None
    name: str | None = None
    description: str | None = None
    format: str = FORMAT

    @classmethod
    def from_dict(cls, d: Any) -> TicketConfig:
        d = as_object(d, "config.json")
        check_json_tree(d)
        known_keys(d, cls, "")
        fmt = d.get("format")
        if fmt is None:
            raise BundleError("missing_field", "format", f"'format' is required (\"{FORMAT}\")")
        if fmt != FORMAT:
            raise BundleError("unsupported_format", "format",
                              f"format {fmt!r:.60} is not supported (this library reads {FORMAT!r})")
        task = field_str(d, "task", "", max_len=64)
        if not TASK_NAME.match(task):
            raise BundleError("bad_value", "task", f"{task!r} is not a task name (lower-case letters, digits, -._)")
        if "architecture" not in d:
            raise BundleError("missing_field", "architecture", "'architecture' is required")
        spec.check_architecture(d["architecture"])  # structure, family, layer types and fields (shapes need the task)
        architecture = json.loads(json.dumps(d["architecture"]))
        for key in ("recipe", "claims"):
            if key not in d:
                raise BundleError("missing_field", key, f"'{key}' is required")
        provenance = d.get("provenance")
        name = field_str(d, "name", "", None, max_len=96)
        if name is not None:
            check_ticket_name(name)
        return cls(
            task=task, architecture=architecture, recipe=Recipe.from_dict(d["recipe"]),
            claims=Claims.from_dict(d["claims"]),
            provenance=Provenance.from_dict(provenance) if provenance is not None else None,
            name=name, description=field_str(d, "description", "", None, max_len=5000), format=FORMAT,
        )

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> TicketConfig:
        """Parse ``config.json`` (bytes, text or an already-parsed dict); strict, see the module docstring."""
        if isinstance(data, Mapping):
            return cls.from_dict(data)
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                data = bytes(data).decode("utf-8")
            except UnicodeDecodeError as e:
                raise BundleError("config_not_json", "config.json", f"config.json is not UTF-8 text ({e})") from e
        if not isinstance(data, str):
            raise BundleError("config_not_json", "config.json", f"expected JSON text, got {type(data).__name__}")
        return cls.from_dict(strict_json_loads(data, "config.json"))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": self.format, "task": self.task}
        if self.name is not None:
            d["name"] = self.name
        if self.description is not None:
            d["description"] = self.description
        d["architecture"] = json.loads(json.dumps(self.architecture))
        d["recipe"] = self.recipe.to_dict()
        d["claims"] = self.claims.to_dict()
        if self.provenance is not None:
            d["provenance"] = self.provenance.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def resolve(self, **limits: Any) -> spec.ArchSpec:
        """The :class:`~ticketclient.spec.ArchSpec` for this config's task (``tasks.get(task)``)."""
        info = tasks.get(self.task)
        return spec.resolve(self.architecture, tuple(info.input_shape), info.num_classes, **limits)


__all__ = ["FORMAT", "STRATEGIES", "TASK_NAME", "MAX_CLAIM_RUNS", "Claims", "Provenance", "TicketConfig"]
