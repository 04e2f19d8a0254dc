"""The checks every uploaded bundle passes before anyone trains it (no torch).

``validate_bundle(config=b, init=b, mask=b, limits=Limits.from_env())`` returns a :class:`ValidatedBundle`
or raises :class:`~ticketclient.errors.BundleError` with a stable ``code``, the ``field`` at fault
(``recipe.lr``, ``init.safetensors:layers.1.weight``) and a sentence for a person. The order of checks:

1. sizes of the three files against :class:`Limits`;
2. ``config.json``: strict JSON and schema (``format.TicketConfig``), the task exists, the architecture
   resolves (whitelist, shapes, parameter and layer limits), the recipe's budget is under the limits;
3. each safetensors header is read and checked by hand (length, JSON, dtypes, offsets in range and
   contiguous, sizes consistent, pickles / torch.save zips / HDF5 / truncation recognised) *before* the
   bytes are handed to the safetensors library;
4. tensor names and shapes against the architecture (nothing missing, nothing extra), dtypes (``F32``/``F16``
   parameters and statistics, ``I64`` ``num_batches_tracked``, ``BOOL`` masks for exactly the prunable
   weights), every value finite, running variances non-negative, no prunable weight fully pruned;
5. metadata, when present, agrees with the config and the measured density; claims are consistent.

Density is measured from the mask here and never read from the config.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ticketclient import format as tformat
from ticketclient import spec, tasks
from ticketclient.constants import parse_int
from ticketclient.errors import BundleError, UnknownTaskError

FLOAT_DTYPES = ("F32", "F16")
MASK_DTYPE = "BOOL"
#: relative tolerance of the mask's ``density`` metadata (machine-written) against the measured density
DENSITY_TOLERANCE = 1e-4
#: ``claims.density`` may be the measured density rounded to this many significant digits (the one density
#: rule: checked here, at upload, and never after training)
CLAIMED_DENSITY_DIGITS = 3
MAX_TENSOR_NAME = 300


@dataclass(frozen=True)
class Limits:
    """What a deployment accepts. Defaults fit LeNet/Conv-2/4/6/VGG-11/16/19/ResNet-20 on CIFAR-10 with
    their paper recipes (VGG-19: 20.0M parameters x 56,000 iterations x batch 128 = 1.4e14).

    Every field can be set with ``TICKETHUB_<FIELD IN CAPITALS>`` (e.g. ``TICKETHUB_MAX_BUDGET=1e12``);
    see :meth:`from_env`.
    """

    #: bytes of ``config.json``
    max_config_bytes: int = 64 * 1024
    #: bytes of each tensor file (``init.safetensors``, ``mask.safetensors``)
    max_file_bytes: int = 160 * 1024 * 1024
    #: bytes of a safetensors JSON header
    max_header_bytes: int = 1024 * 1024
    #: tensors in one file
    max_tensors: int = 1024
    #: parameters of the architecture (buffers not counted)
    max_parameters: int = 25_000_000
    #: layers of the canonical layer list
    max_layers: int = 128
    #: recipe.iterations
    max_iterations: int = 200_000
    #: recipe.batch_size
    max_batch_size: int = 4096
    #: evaluations per run (iterations / eval_every, plus the final one)
    max_eval_points: int = 1000
    #: parameters x iterations x batch_size
    max_budget: int = 300_000_000_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Defaults overridden by ``TICKETHUB_MAX_*`` variables (ValueError names a bad value)."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = f"TICKETHUB_{f.name.upper()}"
            raw = env.get(name)
            if raw is not None and str(raw).strip():
                values[f.name] = parse_int(name, str(raw))
                if values[f.name] < 1:
                    raise ValueError(f"{name} must be a positive integer, got {raw!r}")
        return cls(**values)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ValidatedBundle:
    """A bundle that passed every check, with what was measured."""

    config: tformat.TicketConfig
    arch: spec.ArchSpec
    task_info: tasks.TaskInfo
    init: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    #: kept fraction of all prunable weights, measured from the mask
    density: float
    #: prunable weight name -> kept fraction
    layer_densities: dict[str, float]
    num_parameters: int
    #: prunable weights (the density's denominator) and those kept
    num_prunable: int
    num_kept: int
    #: parameters, iterations, batch_size, budget (= their product), examples, eval_points,
    #: forward_macs (dense, per example), sparse_forward_macs (with this mask)
    budget: dict[str, int]
    #: "config.json" / "init.safetensors" / "mask.safetensors" -> sha256 hex
    sha256: dict[str, str]
    #: "init" / "mask" -> the files' ``__metadata__``
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def bundle(self) -> tformat.TicketBundle:
        return tformat.TicketBundle(config=self.config, init=self.init, mask=self.mask)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for a registry record."""
        return {"task": self.config.task, "density": self.density, "layer_densities": self.layer_densities,
                "num_parameters": self.num_parameters, "num_prunable": self.num_prunable,
                "num_kept": self.num_kept, "budget": dict(self.budget), "sha256": dict(self.sha256),
                "architecture": self.arch.to_dict()}


def validate_bundle(*, config: bytes, init: bytes, mask: bytes, limits: Limits | None = None) -> ValidatedBundle:
    """Check a bundle given as the bytes of its three files; see the module docstring."""
    limits = limits if limits is not None else Limits.from_env()
    _check_sizes(config, init, mask, limits)
    cfg = tformat.TicketConfig.from_json(config)
    try:
        info = tasks.get(cfg.task)
    except UnknownTaskError as e:
        raise BundleError("unknown_task", "task", str(e)) from e
    arch = spec.resolve(cfg.architecture, info.input_shape, info.num_classes,
                        max_parameters=limits.max_parameters, max_layers=limits.max_layers)
    budget = check_recipe(cfg.recipe, arch, limits)

    init_header = tformat.read_header(init, "init", max_header_bytes=limits.max_header_bytes)
    mask_header = tformat.read_header(mask, "mask", max_header_bytes=limits.max_header_bytes)
    for kind, header in (("init", init_header), ("mask", mask_header)):
        _check_metadata_kind(header.metadata, kind)  # first: swapped files deserve their own message
    _check_init_header(init_header, arch, limits)
    _check_mask_header(mask_header, arch, limits)
    _check_mask_bytes(mask, mask_header)
    init_tensors, _ = tformat.load_safetensors(init, "init", max_header_bytes=limits.max_header_bytes)
    mask_tensors, _ = tformat.load_safetensors(mask, "mask", max_header_bytes=limits.max_header_bytes)
    _check_values(init_tensors, arch)

    density, per_layer = tformat.measure_density(mask_tensors)
    for name in arch.prunable:
        if per_layer[name] == 0.0:
            raise BundleError("empty_layer", f"mask.safetensors:{name}",
                              f"every weight of {name} is pruned; a ticket must keep at least one weight per layer")
    kept = sum(int(np.count_nonzero(m)) for m in mask_tensors.values())
    if density >= 1.0:
        raise BundleError("not_a_ticket", "mask.safetensors",
                          "the mask keeps every prunable weight (density 1): that is the dense network, not a "
                          "ticket; prune it first (ticket find)")
    _check_metadata(init_header.metadata, "init", cfg, arch, density)
    _check_metadata(mask_header.metadata, "mask", cfg, arch, density)
    _check_claims(cfg, density)

    budget["sparse_forward_macs"] = arch.sparse_macs(per_layer)
    return ValidatedBundle(
        config=cfg, arch=arch, task_info=info, init=init_tensors, mask=mask_tensors, density=density,
        layer_densities=per_layer, num_parameters=arch.num_parameters, num_prunable=arch.num_prunable,
        num_kept=kept, budget=budget,
        sha256={tformat.CONFIG_FILE: _sha(config), tformat.INIT_FILE: _sha(init), tformat.MASK_FILE: _sha(mask)},
        metadata={"init": init_header.metadata, "mask": mask_header.metadata},
    )


def validate_folder(folder: str | os.PathLike[str], limits: Limits | None = None) -> ValidatedBundle:
    """:func:`validate_bundle` on the three files of a folder."""
    folder = Path(folder)
    files = {}
    for key, name in zip(tformat.BUNDLE_PARTS, tformat.BUNDLE_FILES, strict=True):
        path = folder / name
        if not path.is_file():
            raise BundleError("missing_file", name, f"{folder} has no {name}")
        files[key] = path.read_bytes()
    return validate_bundle(**files, limits=limits)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_sizes(config: bytes, init: bytes, mask: bytes, limits: Limits) -> None:
    for name, data, limit in ((tformat.CONFIG_FILE, config, limits.max_config_bytes),
                              (tformat.INIT_FILE, init, limits.max_file_bytes),
                              (tformat.MASK_FILE, mask, limits.max_file_bytes)):
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BundleError("wrong_type", name, f"{name} must be given as bytes, got {type(data).__name__}")
        if len(data) > limit:
            raise BundleError("file_too_large", name, f"{name} is {len(data):,} bytes, over the limit of "
                                                      f"{limit:,} bytes")


def check_recipe(recipe: tformat.Recipe, arch: spec.ArchSpec, limits: Limits) -> dict[str, int]:
    """The recipe's training budget; raises when it is over a limit. Returns the budget dict."""
    if recipe.iterations > limits.max_iterations:
        raise BundleError("too_many_iterations", "recipe.iterations",
                          f"{recipe.iterations:,} iterations is over the limit of {limits.max_iterations:,}")
    if recipe.batch_size > limits.max_batch_size:
        raise BundleError("batch_too_large", "recipe.batch_size",
                          f"batch size {recipe.batch_size:,} is over the limit of {limits.max_batch_size:,}")
    if recipe.eval_points > limits.max_eval_points:
        raise BundleError("too_many_eval_points", "recipe.eval_every",
                          f"evaluating every {recipe.eval_every} of {recipe.iterations:,} iterations makes "
                          f"{recipe.eval_points:,} evaluations, over the limit of {limits.max_eval_points:,}")
    if recipe.rewind_iteration >= recipe.iterations:
        raise BundleError("out_of_range", "recipe.rewind_iteration",
                          f"the rewind iteration ({recipe.rewind_iteration}) must be before the end of training "
                          f"({recipe.iterations})")
    total = arch.num_parameters * recipe.iterations * recipe.batch_size
    if total > limits.max_budget:
        raise BundleError("over_budget", "recipe",
                          f"the training budget (parameters x iterations x batch size = {arch.num_parameters:,} x "
                          f"{recipe.iterations:,} x {recipe.batch_size:,} = {total:.3g}) is over the limit of "
                          f"{limits.max_budget:.3g}")
    return {"parameters": arch.num_parameters, "iterations": recipe.iterations, "batch_size": recipe.batch_size,
            "budget": total, "examples": recipe.iterations * recipe.batch_size,
            "eval_points": recipe.eval_points, "forward_macs": arch.forward_macs}


def _check_names(header: tformat.SafetensorsHeader, expected: Mapping[str, spec.TensorSpec], label: str,
                 limits: Limits) -> None:
    fname = f"{label}.safetensors"
    if len(header.tensors) > limits.max_tensors:
        raise BundleError("too_many_tensors", fname, f"{len(header.tensors):,} tensors is over the limit of "
                                                     f"{limits.max_tensors:,}")
    for name in header.tensors:
        if len(name) > MAX_TENSOR_NAME:
            raise BundleError("unexpected_tensor", fname, f"a tensor name is {len(name)} characters long")
    kind = "mask" if label == "mask" else "tensor"
    missing = [n for n in expected if n not in header.tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BundleError(f"missing_{kind}", f"{fname}:{missing[0]}",
                          f"{fname} has no {missing[0]}{more}, which the architecture needs")
    extra = [n for n in header.tensors if n not in expected]
    if extra:
        hint = (" (masks are only for prunable weights: "
                f"{', '.join(list(expected)[:4])}{'...' if len(expected) > 4 else ''})") if label == "mask" else ""
        raise BundleError(f"unexpected_{kind}", f"{fname}:{extra[0]}",
                          f"{fname} has {extra[0]}, which is not in the architecture{hint}")
    for name, ts in expected.items():
        shape = header.tensors[name][1]
        if tuple(shape) != tuple(ts.shape):
            raise BundleError("shape_mismatch", f"{fname}:{name}",
                              f"{name} has shape {list(shape)}, the architecture needs {list(ts.shape)}")


def _check_init_header(header: tformat.SafetensorsHeader, arch: spec.ArchSpec, limits: Limits) -> None:
    _check_names(header, arch.tensors, "init", limits)
    for name, ts in arch.tensors.items():
        dtype = header.tensors[name][0]
        allowed = ("I64",) if ts.dtype == "I64" else FLOAT_DTYPES
        if dtype not in allowed:
            raise BundleError("dtype_mismatch", f"init.safetensors:{name}",
                              f"{name} is {dtype}; it must be {' or '.join(allowed)}")


def _check_mask_header(header: tformat.SafetensorsHeader, arch: spec.ArchSpec, limits: Limits) -> None:
    expected = {n: arch.tensors[n] for n in arch.prunable}
    # dtype before names and shapes: a float mask is the commonest mistake and deserves its own message
    for name, (dtype, _, _) in header.tensors.items():
        if dtype != MASK_DTYPE:
            raise BundleError("mask_not_boolean", f"mask.safetensors:{name}",
                              f"the mask of {name} is {dtype}; masks must be BOOL (numpy bool arrays)")
    _check_names(header, expected, "mask", limits)


def _check_mask_bytes(data: bytes, header: tformat.SafetensorsHeader) -> None:
    """Every BOOL byte is 0 or 1 (numpy would read 2..255 as True, yet the bytes and sha256 would differ)."""
    raw = np.frombuffer(memoryview(data)[header.data_start:], dtype=np.uint8)
    for name, (_, _, (begin, end)) in header.tensors.items():
        chunk = raw[begin:end]
        if chunk.size and int(chunk.max()) > 1:
            bad = int(np.count_nonzero(chunk > 1))
            raise BundleError("mask_not_boolean", f"mask.safetensors:{name}",
                              f"the mask of {name} has {bad:,} byte(s) other than 0 and 1; BOOL bytes must be "
                              f"0 (pruned) or 1 (kept)")


def _check_values(init: Mapping[str, np.ndarray], arch: spec.ArchSpec) -> None:
    for name in arch.tensors:
        array = init[name]
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                bad = int(array.size - np.count_nonzero(finite))
                raise BundleError("non_finite", f"init.safetensors:{name}",
                                  f"{name} has {bad:,} NaN or infinite value(s)")
        if name.endswith("running_var") and (array < 0).any():
            raise BundleError("negative_variance", f"init.safetensors:{name}",
                              f"{name} has negative entries; a running variance cannot be negative")
        if name.endswith("num_batches_tracked") and (array < 0).any():
            raise BundleError("out_of_range", f"init.safetensors:{name}", f"{name} is negative")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=DENSITY_TOLERANCE, abs_tol=1e-9)


def _check_metadata_kind(meta: Mapping[str, str], kind: str) -> None:
    fname = f"{kind}.safetensors"
    if "format" in meta and meta["format"] != tformat.FORMAT:
        raise BundleError("metadata_mismatch", f"{fname}:__metadata__.format",
                          f"the file says format {meta['format']!r:.60}, expected {tformat.FORMAT!r}")
    if "kind" in meta and meta["kind"] != kind:
        raise BundleError("metadata_mismatch", f"{fname}:__metadata__.kind",
                          f"{fname} says it is a {meta['kind']!r:.20} file (were init and mask swapped?)")


def _check_metadata(meta: Mapping[str, str], kind: str, cfg: tformat.TicketConfig, arch: spec.ArchSpec,
                    density: float) -> None:
    fname = f"{kind}.safetensors"
    if not meta:
        return
    allowed = {"format", "kind", "task", "architecture", "density"}
    for key in meta:
        if key not in allowed:
            raise BundleError("metadata_mismatch", f"{fname}:__metadata__.{key}",
                              f"unknown metadata key {key!r:.60} (allowed: {', '.join(sorted(allowed))})")
    if "task" in meta and meta["task"] != cfg.task:
        raise BundleError("metadata_mismatch", f"{fname}:__metadata__.task",
                          f"{fname} was written for task {meta['task']!r:.60}, config.json says {cfg.task!r}")
    if "architecture" in meta:
        where = f"{fname}:__metadata__.architecture"
        try:
            declared = json.loads(meta["architecture"])
            other = spec.resolve(declared, arch.input_shape, arch.num_classes,
                                 max_parameters=arch.num_parameters, max_layers=len(arch.layers))
        except (ValueError, BundleError) as e:
            raise BundleError("metadata_mismatch", where,
                              f"the architecture in {fname}'s metadata does not match config.json ({e})") from e
        if other.layers != arch.layers:
            raise BundleError("metadata_mismatch", where,
                              f"the architecture in {fname}'s metadata differs from config.json's")
    if "density" in meta and kind == "mask":
        try:
            declared_density = float(meta["density"])
        except ValueError as e:
            raise BundleError("metadata_mismatch", f"{fname}:__metadata__.density",
                              f"density {meta['density']!r:.30} is not a number") from e
        if not _close(declared_density, density):
            raise BundleError("metadata_mismatch", f"{fname}:__metadata__.density",
                              f"the metadata says density {declared_density:.6g}, the mask has {density:.6g}")


def _check_claims(cfg: tformat.TicketConfig, density: float) -> None:
    claims, recipe = cfg.claims, cfg.recipe
    if claims.early_stop_iteration is not None and claims.early_stop_iteration > recipe.iterations:
        raise BundleError("out_of_range", "claims.early_stop_iteration",
                          f"early stop at iteration {claims.early_stop_iteration:,} is after the end of training "
                          f"({recipe.iterations:,} iterations)")
    if claims.density is not None and not density_claim_matches(claims.density, density):
        raise BundleError("claim_mismatch", "claims.density",
                          f"the config claims density {claims.density:.6g}, the mask has {density:.6g} "
                          f"(density is measured from the mask: claim it rounded to {CLAIMED_DENSITY_DIGITS} "
                          f"significant digits, {density:.{CLAIMED_DENSITY_DIGITS}g}, or leave the claim out)")


def density_claim_matches(claimed: float, measured: float, digits: int = CLAIMED_DENSITY_DIGITS) -> bool:
    """True iff ``claimed`` is ``measured`` to ``digits`` significant digits (within half a unit of the last)."""
    if not (math.isfinite(claimed) and measured > 0):
        return False
    half_unit = 0.5 * 10 ** (math.floor(math.log10(measured)) - (digits - 1))
    return bool(abs(claimed - measured) <= half_unit * (1 + 1e-9))


def main(argv: list[str] | None = None) -> int:
    """``python -m ticketclient.validation FOLDER [--json]``: the registry's checks on a local bundle.

    Exit status 0 when valid (prints density, parameters and budget), 1 with the error's code, field and
    message when not. Limits come from the environment (``TICKETHUB_MAX_*``).
    """
    parser = argparse.ArgumentParser(prog="python -m ticketclient.validation", description=main.__doc__)
    parser.add_argument("folder", help="a folder with config.json, init.safetensors and mask.safetensors")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        v = validate_folder(args.folder)
    except BundleError as e:
        if args.json:
            print(json.dumps({"valid": False, **e.as_dict()}))
        else:
            print(f"invalid ({e.code}): {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"valid": True, **v.summary()}))
    else:
        print(f"valid: task {v.config.task}, density {v.density:.4%} ({v.num_kept:,} of {v.num_prunable:,} "
              f"prunable weights), {v.num_parameters:,} parameters, training budget {v.budget['budget']:.3g}")
    return 0


__all__ = ["Limits", "ValidatedBundle", "validate_bundle", "validate_folder", "check_recipe", "main"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
