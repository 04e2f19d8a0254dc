"""The architecture of a revision as table rows, from the torch-free core (``ticketclient.spec``).

``ArchSpec.layer_table(mask_densities)`` gives one row per layer (name, type, shape, params, density,
surviving units, multiply-adds). If the core cannot resolve the stored architecture (an older format),
the page falls back to the stored canonical layer list with the measured per-tensor densities.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("registry.catalog")


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    shape: str
    params: int | None
    density: float | None
    surviving: str
    macs: int | None
    sparse_macs: int | None


def _get(row: Any, *names: str) -> Any:
    data = dataclasses.asdict(row) if dataclasses.is_dataclass(row) else (row if isinstance(row, dict) else vars(row))
    for name in names:
        if name in data and data[name] is not None:
            return data[name]
    return None


def _shape_text(shape: Any) -> str:
    if shape is None:
        return ""
    if isinstance(shape, list | tuple):
        return " × ".join(str(d) for d in shape)
    return str(shape)


def _surviving_text(value: Any, total: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{value[0]} / {value[1]}"
    return f"{value} / {total}" if total is not None else str(value)


def _from_spec(config: dict[str, Any], input_shape: list[int], num_classes: int,
               layer_densities: dict[str, float]) -> list[LayerRow]:
    from ticketclient import spec

    arch = spec.resolve(config.get("architecture") or {}, input_shape=tuple(input_shape), num_classes=num_classes)
    rows = []
    for row in arch.layer_table(layer_densities):
        macs = _get(row, "macs", "multiply_adds", "dense_macs")
        density = _get(row, "density")
        sparse = _get(row, "sparse_macs", "surviving_macs")
        if sparse is None and macs is not None and density is not None:
            sparse = round(macs * density)
        rows.append(LayerRow(
            name=str(_get(row, "name") or ""), type=str(_get(row, "type") or ""),
            shape=_shape_text(_get(row, "shape", "weight_shape", "output_shape")),
            params=_get(row, "params", "parameters", "num_parameters"),
            density=density,
            surviving=_surviving_text(_get(row, "surviving_units", "surviving", "surviving_neurons"),
                                      _get(row, "units", "total_units", "out_units")),
            macs=macs, sparse_macs=sparse,
        ))
    return rows


def _fallback(architecture: list[dict[str, Any]], layer_densities: dict[str, float]) -> list[LayerRow]:
    rows = []
    for index, layer in enumerate(architecture or []):
        if not isinstance(layer, dict):
            continue
        kind = str(layer.get("type", "?"))
        args = ", ".join(f"{k}={v}" for k, v in layer.items() if k != "type")
        rows.append(LayerRow(name=f"layers.{index}", type=kind, shape=args, params=None,
                             density=layer_densities.get(f"layers.{index}.weight"), surviving="", macs=None,
                             sparse_macs=None))
    return rows


def layer_rows(revision: Any, task: Any) -> tuple[list[LayerRow], bool]:
    """The rows for ``revision`` of a ticket of ``task``; the flag says whether the core computed them."""
    try:
        return _from_spec(revision.config or {}, list(task.input_shape), int(task.num_classes),
                          revision.layer_densities or {}), True
    except Exception as err:  # noqa: BLE001 - any failure of the core falls back to the stored list
        logger.info("architecture table of %s from the stored layer list: %s", revision, err)
        return _fallback(revision.architecture, revision.layer_densities or {}), False
