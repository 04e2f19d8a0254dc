"""Ticket bundles for tests, made with numpy and ticketclient's torch-free format (no training, no torch).

    from factories import make_bundle
    b = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)
    b.config, b.init, b.mask            # the three files' bytes
    b.form(name="my-ticket")            # multipart dict for APIClient.post(..., format="multipart")
    b.write(folder)                     # config.json, init.safetensors, mask.safetensors

The mask keeps exactly ``round(density * size)`` weights of every prunable tensor (at least one), so the
measured overall density is known in advance (``b.expected_density``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_FILES = ("config.json", "init.safetensors", "mask.safetensors")


@dataclass(frozen=True)
class BundleBytes:
    config: bytes
    init: bytes
    mask: bytes
    expected_density: float = 0.0
    expected_layer_densities: dict[str, float] = field(default_factory=dict)

    def by_path(self) -> dict[str, bytes]:
        return {"config.json": self.config, "init.safetensors": self.init, "mask.safetensors": self.mask}

    def form(self, **fields: Any) -> dict[str, Any]:
        """A multipart body for the submit endpoint (file parts config, init, mask plus ``fields``)."""
        body: dict[str, Any] = {
            "config": _named(self.config, "config.json"),
            "init": _named(self.init, "init.safetensors"),
            "mask": _named(self.mask, "mask.safetensors"),
        }
        body.update({k: v for k, v in fields.items() if v is not None})
        return body

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for path, data in self.by_path().items():
            (folder / path).write_bytes(data)
        return folder

    def replace(self, **files: bytes) -> BundleBytes:
        return BundleBytes(
            config=files.get("config", self.config), init=files.get("init", self.init),
            mask=files.get("mask", self.mask), expected_density=self.expected_density,
            expected_layer_densities=self.expected_layer_densities,
        )


def _named(data: bytes, name: str) -> io.BytesIO:
    fh = io.BytesIO(data)
    fh.name = name
    return fh


def default_config(task: str, architecture: dict[str, Any], *, accuracy: float = 0.6) -> dict[str, Any]:
    from ticketclient import spec

    family = architecture.get("family")
    if family and family in spec.FAMILIES:
        recipe = _asdict(spec.FAMILIES[family].default_recipe)
    else:
        recipe = _asdict(spec.FAMILIES["mlp"].default_recipe)
    recipe["iterations"] = min(int(recipe.get("iterations", 200)), 200)
    recipe["eval_every"] = min(int(recipe.get("eval_every", 100)), 100)
    return {
        "format": "lottery-ticket/v1",
        "task": task,
        "architecture": architecture,
        "recipe": recipe,
        "claims": {"test_accuracy": accuracy},
    }


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj)))
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


def make_bundle(
    task: str = "mnist1d",
    family: str = "mlp",
    hidden: Sequence[int] = (32, 16),
    density: float = 0.2,
    seed: int = 0,
    *,
    architecture: dict[str, Any] | None = None,
    accuracy: float = 0.6,
    config: dict[str, Any] | None = None,
) -> BundleBytes:
    """A valid ticket bundle with random weights and a random mask of the given density."""
    from ticketclient import format as tformat
    from ticketclient import spec, tasks

    if architecture is None:
        architecture = {"family": family, "args": {"hidden": list(hidden)} if family == "mlp" else {}}
    cfg_dict = config if config is not None else default_config(task, architecture, accuracy=accuracy)
    info = tasks.get(cfg_dict["task"])
    arch = spec.resolve(cfg_dict["architecture"], input_shape=tuple(info.input_shape), num_classes=info.num_classes)
    rng = np.random.default_rng(seed)
    init: dict[str, np.ndarray] = {}
    for name, t in arch.tensors.items():
        dtype = str(t.dtype).lower()
        if "int" in dtype or dtype == "i64":
            init[name] = np.zeros(t.shape, dtype=np.int64)
        elif name.endswith("running_var"):
            init[name] = np.ones(t.shape, dtype=np.float32)
        elif name.endswith("running_mean"):
            init[name] = np.zeros(t.shape, dtype=np.float32)
        else:
            init[name] = (rng.standard_normal(t.shape) * 0.1).astype(np.float32)
    mask: dict[str, np.ndarray] = {}
    kept = total = 0
    layer_densities = {}
    for name in arch.prunable:
        size = int(np.prod(arch.tensors[name].shape))
        keep = max(1, round(density * size))
        flat = np.zeros(size, dtype=bool)
        flat[rng.choice(size, size=keep, replace=False)] = True
        mask[name] = flat.reshape(arch.tensors[name].shape)
        kept += keep
        total += size
        layer_densities[name] = keep / size
    bundle = tformat.TicketBundle(config=tformat.TicketConfig.from_json(cfg_dict), init=init, mask=mask)
    config_bytes, init_bytes, mask_bytes = bundle.to_bytes()
    return BundleBytes(
        config=config_bytes, init=init_bytes, mask=mask_bytes,
        expected_density=kept / total, expected_layer_densities=layer_densities,
    )
