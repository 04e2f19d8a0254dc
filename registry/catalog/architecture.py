"""The architecture of a revision as table rows, from the torch-free core (``ticketclient.spec``).

``ArchSpec.layer_table`` gives one row per layer: name, type, output shape, weight shape, parameters,
density, units and surviving units (output neurons/channels with at least one kept incoming weight; this
needs the mask itself), dense and sparse multiply-adds. A revision's files never change, so the rows are
cached under the sha256 of its config and mask: the mask blob is read once per revision, not per view.
If the core cannot resolve the stored architecture, the page falls back to the stored layer list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

logger = logging.getLogger("registry.catalog")
#: The rows depend only on immutable files; keep them a week (the key changes with the files).
LAYER_CACHE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    shape: str
    weight_shape: str
    params: int | None
    density: float | None
    units: int | None
    surviving: int | None
    macs: int | None
    sparse_macs: int | None

    @property
    def surviving_text(self) -> str:
        if self.units is None:
            return ""
        return f"{self.surviving} / {self.units}" if self.surviving is not None else f"? / {self.units}"


def _dims(shape: Any) -> str:
    return " × ".join(str(d) for d in shape) if shape else ""


def _masks(mask_sha256: str | None) -> dict[str, Any] | None:
    """The revision's mask tensors (numpy bool arrays) from blob storage, or None when unreadable."""
    if not mask_sha256:
        return None
    try:
        from ticketclient import format as tformat

        from registry.tickets.blobs import read_blob

        tensors, _meta = tformat.load_safetensors(read_blob(mask_sha256), "mask.safetensors")
        return tensors
    except Exception as err:  # noqa: BLE001 - no blob (rows written without files) or unreadable: no survivors
        logger.info("mask blob %s not readable for the layer table: %s", mask_sha256, err)
        return None


def _from_spec(config: dict[str, Any], input_shape: list[int], num_classes: int,
               layer_densities: dict[str, float], mask_sha256: str | None) -> list[LayerRow]:
    from ticketclient import spec

    arch = spec.resolve(config.get("architecture") or {}, input_shape=tuple(input_shape), num_classes=num_classes)
    masks = _masks(mask_sha256)
    if masks is not None and not all(name in masks for name in arch.prunable):
        masks = None
    table = arch.layer_table(layer_densities, masks=masks)
    return [
        LayerRow(name=row["name"], type=row["type"], shape=_dims(row.get("shape")),
                 weight_shape=_dims(row.get("weight_shape")), params=row.get("params"),
                 density=row.get("density"), units=row.get("units"), surviving=row.get("surviving_units"),
                 macs=row.get("macs") or None, sparse_macs=row.get("sparse_macs"))
        for row in table
    ]


def _fallback(architecture: list[dict[str, Any]], layer_densities: dict[str, float]) -> list[LayerRow]:
    rows = []
    for index, layer in enumerate(architecture or []):
        if not isinstance(layer, dict):
            continue
        args = ", ".join(f"{k}={v}" for k, v in layer.items() if k != "type")
        rows.append(LayerRow(name=f"layers.{index}", type=str(layer.get("type", "?")), shape=args, weight_shape="",
                             params=None, density=layer_densities.get(f"layers.{index}.weight"), units=None,
                             surviving=None, macs=None, sparse_macs=None))
    return rows


def layer_rows(revision: Any, task: Any, files: Iterable[Any]) -> tuple[list[LayerRow], bool]:
    """The rows for ``revision`` (of a ticket of ``task``, with its ``files``); the flag says whether the
    core computed them (else they come from the stored layer list)."""
    digests = {f.path: f.sha256 for f in files}
    key = (f"catalog:layers:v1:{revision.pk}:{digests.get('config.json')}:{digests.get('mask.safetensors')}:"
           f"{task.input_shape}:{task.num_classes}")
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        result = (_from_spec(revision.config or {}, list(task.input_shape), int(task.num_classes),
                             revision.layer_densities or {}, digests.get("mask.safetensors")), True)
    except Exception as err:  # noqa: BLE001 - any failure of the core falls back to the stored list
        logger.info("architecture table of %s from the stored layer list: %s", revision, err)
        result = (_fallback(revision.architecture, revision.layer_densities or {}), False)
    cache.set(key, result, LAYER_CACHE_SECONDS)
    return result
