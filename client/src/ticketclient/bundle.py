"""The three-file ticket bundle (no torch): ``config.json`` + ``init.safetensors`` + ``mask.safetensors``.

:class:`TicketBundle` holds the :class:`~ticketclient.config.TicketConfig`, ``init`` (every parameter and
buffer) and ``mask`` (one boolean array per prunable weight) as numpy arrays, read and written with
:mod:`ticketclient.safetensors_io`. :func:`measure_density` is the kept fraction of prunable weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ticketclient.config import FORMAT, TicketConfig
from ticketclient.errors import BundleError, UnknownTaskError
from ticketclient.safetensors_io import NUMPY_TO_ST, load_safetensors, save_safetensors

CONFIG_FILE = "config.json"
INIT_FILE = "init.safetensors"
MASK_FILE = "mask.safetensors"
BUNDLE_FILES = (CONFIG_FILE, INIT_FILE, MASK_FILE)
#: The short name of each file of :data:`BUNDLE_FILES`, in that order (``validate_bundle``'s keyword
#: arguments, the upload's form fields).
BUNDLE_PARTS = ("config", "init", "mask")


def measure_density(mask: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
    """(overall kept fraction over all mask entries, kept fraction per tensor). Never reads the config."""
    kept = total = 0
    per_layer: dict[str, float] = {}
    for name, m in mask.items():
        arr = np.asarray(m)
        n = int(arr.size)
        k = int(np.count_nonzero(arr))
        per_layer[name] = k / n if n else 0.0
        kept += k
        total += n
    return (kept / total if total else 0.0), per_layer


@dataclass
class TicketBundle:
    """config + init (every parameter and buffer, name -> array) + mask (prunable weight name -> bool array)."""

    config: TicketConfig
    init: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if isinstance(self.config, Mapping | bytes | str):
            self.config = TicketConfig.from_json(self.config)
        self.init = {k: np.asarray(v) for k, v in self.init.items()}
        self.mask = {k: np.asarray(v) for k, v in self.mask.items()}

    @property
    def density(self) -> float:
        return measure_density(self.mask)[0]

    @property
    def layer_densities(self) -> dict[str, float]:
        return measure_density(self.mask)[1]

    def metadata(self, kind: str) -> dict[str, str]:
        """The ``__metadata__`` of ``init.safetensors`` or ``mask.safetensors`` (docs/ticket-format.md)."""
        meta = {"format": FORMAT, "kind": kind, "task": self.config.task,
                "architecture": _canonical_architecture_json(self.config)}
        if kind == "mask":
            meta["density"] = repr(float(self.density))
        return meta

    def to_bytes(self) -> tuple[bytes, bytes, bytes]:
        """(config.json, init.safetensors, mask.safetensors) as bytes."""
        for name, m in self.mask.items():
            if m.dtype != np.bool_:
                raise BundleError("mask_not_boolean", f"mask.safetensors:{name}",
                                  f"masks must be boolean arrays, {name} is {m.dtype}")
        for name, t in self.init.items():
            if t.dtype.str not in NUMPY_TO_ST:
                raise BundleError("dtype_not_allowed", f"init.safetensors:{name}",
                                  f"{name} has dtype {t.dtype}, which safetensors cannot store")
        config = self.config.to_json().encode("utf-8")
        init = save_safetensors(self.init, self.metadata("init"))
        mask = save_safetensors(self.mask, self.metadata("mask"))
        return config, init, mask

    def save(self, folder: str | Path) -> Path:
        """Write the three files into ``folder`` (created if needed); returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in zip(BUNDLE_FILES, self.to_bytes(), strict=True):
            (folder / name).write_bytes(data)
        return folder

    @classmethod
    def from_bytes(cls, config: bytes | str | Mapping[str, Any], init: bytes, mask: bytes) -> TicketBundle:
        """Parse the three files (strict config, checked safetensors headers). Does not run every
        registry check: use ``validation.validate_bundle`` for untrusted uploads."""
        cfg = TicketConfig.from_json(config)
        tensors, _ = load_safetensors(init, "init")
        masks, _ = load_safetensors(mask, "mask")
        return cls(config=cfg, init=tensors, mask=masks)

    @classmethod
    def load(cls, folder: str | Path) -> TicketBundle:
        folder = Path(folder)
        missing = [n for n in BUNDLE_FILES if not (folder / n).is_file()]
        if missing:
            raise BundleError("missing_file", missing[0], f"{folder} has no {', '.join(missing)}")
        return cls.from_bytes(*((folder / n).read_bytes() for n in BUNDLE_FILES))


def _canonical_architecture_json(config: TicketConfig) -> str:
    """The resolved canonical spec as compact JSON, or the config's architecture if the task is unknown."""
    try:
        return config.resolve().to_json()
    except (UnknownTaskError, BundleError):
        return json.dumps(config.architecture, separators=(",", ":"), sort_keys=True)


__all__ = ["CONFIG_FILE", "INIT_FILE", "MASK_FILE", "BUNDLE_FILES", "BUNDLE_PARTS", "TicketBundle", "measure_density"]
