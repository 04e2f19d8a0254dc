"""The ticket format v1 (docs/ticket-format.md): config dataclasses and the three-file bundle (no torch).

- :class:`TicketConfig` (``config.json``): format, task, architecture, :class:`Recipe`, :class:`Claims`,
  :class:`Provenance`. ``from_dict``/``from_json`` are strict: unknown keys, wrong types and values out of
  range raise :class:`~ticketclient.errors.BundleError` naming the field (``recipe.lr``).
- :class:`TicketBundle`: config + ``init`` (every parameter and buffer) + ``mask`` (one boolean array per
  prunable weight), numpy arrays, read and written as safetensors. Nothing is ever unpickled.
- :func:`measure_density`: the kept fraction of prunable weights, overall and per tensor.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ticketclient.errors import BundleError
from ticketclient.spec import check_float, check_int

FORMAT = "lottery-ticket/v1"
CONFIG_FILE = "config.json"
INIT_FILE = "init.safetensors"
MASK_FILE = "mask.safetensors"
BUNDLE_FILES = (CONFIG_FILE, INIT_FILE, MASK_FILE)

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "step", "cosine")
AUGMENTS = ("none", "flip-crop")
STRATEGIES = ("layerwise", "global")
MAX_ITERATIONS_HARD = 10_000_000
MAX_MILESTONES = 64
TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


# --- strict field helpers ---------------------------------------------------------------------------------


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(value: Any) -> str:
    from ticketclient.spec import _type_name as name

    return name(value)


def _int(d: Mapping[str, Any], key: str, where: str, default: Any = ..., **bounds: Any) -> Any:
    if key not in d:
        if default is ...:
            raise BundleError("missing_field", _path(where, key), f"'{key}' is required")
        return default
    if d[key] is None and default is not ...:
        return default  # null means absent for an optional field
    return check_int(d[key], _path(where, key), error=BundleError, **bounds)


def _float(d: Mapping[str, Any], key: str, where: str, default: Any = ..., **bounds: Any) -> Any:
    if key not in d:
        if default is ...:
            raise BundleError("missing_field", _path(where, key), f"'{key}' is required")
        return default
    if d[key] is None and default is not ...:
        return default  # null means absent for an optional field
    return check_float(d[key], _path(where, key), error=BundleError, **bounds)


def _choice(d: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise BundleError("missing_field", _path(where, key), f"'{key}' is required")
        return default
    value = d[key]
    if value is None and default is not ...:
        return default  # null means absent for an optional field
    if not isinstance(value, str) or value not in choices:
        raise BundleError("bad_value", _path(where, key),
                          f"must be one of {', '.join(choices)}, got {value!r:.40}")
    return value


def _str(d: Mapping[str, Any], key: str, where: str, default: Any = ..., max_len: int = 500) -> Any:
    if key not in d:
        if default is ...:
            raise BundleError("missing_field", _path(where, key), f"'{key}' is required")
        return default
    value = d[key]
    if value is None and default is not ...:
        return default  # null means absent for an optional field
    if not isinstance(value, str):
        raise BundleError("wrong_type", _path(where, key), f"expected a string, got {_type_name(value)}")
    if len(value) > max_len:
        raise BundleError("out_of_range", _path(where, key), f"at most {max_len} characters, got {len(value)}")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BundleError("wrong_type", where, f"expected an object, got {_type_name(value)}")
    return value


def _known_keys(d: Mapping[str, Any], cls: type, where: str) -> None:
    allowed = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in allowed:
            path = _path(where, str(key))
            raise BundleError("unknown_field", path,
                              f"unknown field {key!r:.60} (allowed: {', '.join(sorted(allowed))})")


def _string_map(d: Mapping[str, Any], key: str, where: str, max_items: int = 8) -> dict[str, str] | None:
    """An optional object of at most ``max_items`` short string keys and string values (null = absent)."""
    value = d.get(key)
    if value is None:
        return None
    value = _object(value, _path(where, key))
    if len(value) > max_items:
        raise BundleError("out_of_range", _path(where, key), f"at most {max_items} entries")
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 200:
            raise BundleError("wrong_type", _path(where, key), "keys (64 characters at most) and values (200 at "
                                                                "most) must be strings")
    return dict(value)


def _accuracy(d: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    value = _float(d, key, where, default, low=0.0, high=1.0)
    return value


# --- strict JSON: duplicate keys, huge integers, control characters -----------------------------------------

#: Longest integer literal accepted in config.json or a safetensors header (2**64 has 20 digits).
MAX_INT_DIGITS = 40
#: Control characters (C0 except tab, newline and carriage return; DEL; C1) and lone UTF-16 surrogates:
#: refused in every string of a config (and header), whatever database stores it later.
BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: A ticket name (the registry's rule too): lower-case letters and digits with ``.``, ``_``, ``-`` inside.
TICKET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
TICKET_NAME_LENGTH = (3, 96)


class _Pairs(dict[str, Any]):
    """A parsed JSON object that remembers the first key given twice (the last would win silently)."""

    duplicate: str | None = None


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs()
    for key, value in pairs:
        if key in out and out.duplicate is None:
            out.duplicate = key
        out[key] = value
    return out


def _parse_int_literal(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BundleError("config_not_json", None, f"an integer literal has {len(text.lstrip('-')):,} digits; "
                                                   f"at most {MAX_INT_DIGITS} are accepted")
    return int(text)


def strict_json_loads(text: str, label: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, integer literals over :data:`MAX_INT_DIGITS` digits, and
    nesting too deep for the parser; objects given a key twice are marked for :func:`check_json_tree`.
    Every refusal is a :class:`BundleError` with code ``config_not_json`` and field ``label``."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int_literal,
                          object_pairs_hook=_object_pairs)
    except BundleError as e:
        raise BundleError(e.code, label, f"{label} is not acceptable JSON: {e.message}") from None
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise BundleError("config_not_json", label, f"{label} is not valid JSON: {e}") from e


def bad_character(text: str) -> str | None:
    """A description of the first control character or lone surrogate in ``text`` (None if clean)."""
    m = BAD_CHARACTERS.search(text)
    if m is None:
        return None
    return f"U+{ord(m.group()):04X} at position {m.start()}"


def check_json_tree(value: Any, where: str = "") -> None:
    """Refuse duplicate keys (marked by :func:`strict_json_loads`) and control characters or lone surrogates
    in any key or string of a parsed JSON value, naming the field. Iterative: any depth is safe."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            bad = bad_character(item)
            if bad:
                raise BundleError("bad_character", path or None,
                                  f"contains the control character or lone surrogate {bad}; text fields may hold "
                                  f"printable characters, tabs and newlines only")
        elif isinstance(item, Mapping):
            duplicate = getattr(item, "duplicate", None)
            if duplicate is not None:
                raise BundleError("duplicate_key", _path(path, str(duplicate)),
                                  f"the key {duplicate!r:.60} is given twice (JSON objects need unique keys)")
            for key, sub in item.items():
                key_path = _path(path, str(key))
                bad = bad_character(str(key))
                if bad:
                    raise BundleError("bad_character", path or None,
                                      f"a key contains the control character or lone surrogate {bad}")
                stack.append((sub, key_path))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{j}]") for j, sub in enumerate(item))


def check_ticket_name(name: str, field_: str = "name") -> str:
    """``name`` if it is a canonical ticket name (see :data:`TICKET_NAME`), else a BundleError."""
    lo, hi = TICKET_NAME_LENGTH
    if bad_character(name):
        raise BundleError("bad_character", field_, f"the name contains a control character ({bad_character(name)})")
    if not (lo <= len(name) <= hi and TICKET_NAME.fullmatch(name)) or "--" in name or ".." in name:
        raise BundleError("bad_value", field_,
                          f"{name!r:.120} is not a ticket name: {lo} to {hi} lower-case letters, digits and "
                          f"'.', '_', '-' inside (no '--' or '..'), starting and ending with a letter or digit")
    return name


# --- config dataclasses -----------------------------------------------------------------------------------


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
        d = _object(d, where)
        _known_keys(d, cls, where)
        dflt = cls()
        iterations = _int(d, "iterations", where, low=1, high=MAX_ITERATIONS_HARD)
        betas = d.get("betas", list(dflt.betas))
        if not isinstance(betas, list | tuple) or len(betas) != 2:
            raise BundleError("wrong_type", f"{where}.betas", "expected a list of two numbers in [0, 1)")
        betas_t = tuple(check_float(b, f"{where}.betas[{j}]", low=0.0, high=1.0, error=BundleError)
                        for j, b in enumerate(betas))
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
        schedule = _choice(d, "lr_schedule", where, LR_SCHEDULES, dflt.lr_schedule)
        if schedule != "step" and ms:
            raise BundleError("bad_value", f"{where}.milestones", f"milestones only apply to lr_schedule 'step', "
                                                                  f"not {schedule!r}")
        recipe = cls(
            optimizer=_choice(d, "optimizer", where, OPTIMIZERS),
            lr=_float(d, "lr", where, low=0.0, low_open=True, high=10.0),
            momentum=_float(d, "momentum", where, dflt.momentum, low=0.0, high=0.9999),
            betas=betas_t,  # type: ignore[arg-type]
            weight_decay=_float(d, "weight_decay", where, dflt.weight_decay, low=0.0, high=1.0),
            batch_size=_int(d, "batch_size", where, low=1, high=65_536),
            iterations=iterations,
            warmup_iterations=_int(d, "warmup_iterations", where, 0, low=0, high=MAX_ITERATIONS_HARD),
            lr_schedule=schedule,
            milestones=ms,
            gamma=_float(d, "gamma", where, dflt.gamma, low=0.0, low_open=True, high=1.0),
            rewind_iteration=_int(d, "rewind_iteration", where, 0, low=0, high=iterations),
            eval_every=_int(d, "eval_every", where, dflt.eval_every, low=1, high=MAX_ITERATIONS_HARD),
            augment=_choice(d, "augment", where, AUGMENTS, dflt.augment),
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
        d = _object(d, where)
        _known_keys(d, cls, where)
        return cls(
            test_accuracy=_accuracy(d, "test_accuracy", where),
            early_stop_iteration=_int(d, "early_stop_iteration", where, None, low=0, high=MAX_ITERATIONS_HARD),
            early_stop_test_accuracy=_accuracy(d, "early_stop_test_accuracy", where, None),
            val_accuracy=_accuracy(d, "val_accuracy", where, None),
            density=_float(d, "density", where, None, low=0.0, low_open=True, high=1.0),
            runs=_int(d, "runs", where, None, low=1, high=MAX_CLAIM_RUNS),
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
        d = _object(d, where)
        _known_keys(d, cls, where)
        rates_in = d.get("rates") or {}
        rates_in = _object(rates_in, f"{where}.rates")
        if len(rates_in) > 64:
            raise BundleError("out_of_range", f"{where}.rates", "at most 64 rates")
        rates = {}
        for k, v in rates_in.items():
            if not isinstance(k, str) or len(k) > 200:
                raise BundleError("wrong_type", f"{where}.rates", "rate names must be short strings")
            rates[k] = check_float(v, f"{where}.rates.{k}", low=0.0, high=1.0, error=BundleError)
        return cls(
            method=_str(d, "method", where, "imp", max_len=64),
            rounds=_int(d, "rounds", where, None, low=0, high=10_000),
            strategy=_choice(d, "strategy", where, STRATEGIES, None),
            rates=rates,
            rewind_iteration=_int(d, "rewind_iteration", where, None, low=0, high=MAX_ITERATIONS_HARD),
            seed=_int(d, "seed", where, None, low=0, high=2**63 - 1),
            dense_test_accuracy=_accuracy(d, "dense_test_accuracy", where, None),
            parent=_str(d, "parent", where, None, max_len=200),
            library=_str(d, "library", where, None, max_len=100),
            notes=_str(d, "notes", where, None, max_len=2000),
            data=_string_map(d, "data", where),
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
        d = _object(d, "config.json")
        check_json_tree(d)
        _known_keys(d, cls, "")
        fmt = d.get("format")
        if fmt is None:
            raise BundleError("missing_field", "format", f"'format' is required (\"{FORMAT}\")")
        if fmt != FORMAT:
            raise BundleError("unsupported_format", "format",
                              f"format {fmt!r:.60} is not supported (this library reads {FORMAT!r})")
        task = _str(d, "task", "", max_len=64)
        if not TASK_NAME.match(task):
            raise BundleError("bad_value", "task", f"{task!r} is not a task name (lower-case letters, digits, -._)")
        from ticketclient.spec import check_architecture

        if "architecture" not in d:
            raise BundleError("missing_field", "architecture", "'architecture' is required")
        check_architecture(d["architecture"])  # structure, family, layer types and fields (shapes need the task)
        architecture = json.loads(json.dumps(d["architecture"]))
        for key in ("recipe", "claims"):
            if key not in d:
                raise BundleError("missing_field", key, f"'{key}' is required")
        provenance = d.get("provenance")
        name = _str(d, "name", "", None, max_len=96)
        if name is not None:
            check_ticket_name(name)
        return cls(
            task=task, architecture=architecture, recipe=Recipe.from_dict(d["recipe"]),
            claims=Claims.from_dict(d["claims"]),
            provenance=Provenance.from_dict(provenance) if provenance is not None else None,
            name=name, description=_str(d, "description", "", None, max_len=5000), format=FORMAT,
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

    def resolve(self, **limits: Any) -> Any:
        """The :class:`~ticketclient.spec.ArchSpec` for this config's task (``tasks.get(task)``)."""
        from ticketclient import spec, tasks

        info = tasks.get(self.task)
        return spec.resolve(self.architecture, tuple(info.input_shape), info.num_classes, **limits)


def _reject_constant(name: str) -> Any:
    raise BundleError("config_not_json", "config.json", f"config.json contains {name}, which is not valid JSON")


# --- safetensors ------------------------------------------------------------------------------------------

#: safetensors dtype -> (numpy dtype, bytes per element)
DTYPES: dict[str, tuple[Any, int]] = {
    "F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8), "BF16": (None, 2),
    "I64": (np.int64, 8), "I32": (np.int32, 4), "I16": (np.int16, 2), "I8": (np.int8, 1),
    "U8": (np.uint8, 1), "BOOL": (np.bool_, 1),
}
NUMPY_TO_ST = {np.dtype(v[0]).str: k for k, v in DTYPES.items() if v[0] is not None}
DEFAULT_MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class SafetensorsHeader:
    """A checked safetensors header: tensors name -> (dtype, shape, (begin, end)), metadata, data start."""

    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]]
    metadata: dict[str, str]
    data_start: int


def sniff(data: bytes) -> str | None:
    """Name a well-known non-safetensors file format from its first bytes (None if not recognised)."""
    head = bytes(data[:16])
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "a Python pickle"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (the torch.save format, which holds a pickle)"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file (Keras/h5py)"
    if head[:6] == b"\x93NUMPY":
        return "a numpy .npy file"
    if head[:2] == b"\x1f\x8b":
        return "a gzip file"
    if head[:1] in (b"{", b"["):
        return "a JSON document"
    return None


def read_header(data: bytes, label: str = "file", *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                allowed_dtypes: tuple[str, ...] | None = None) -> SafetensorsHeader:
    """Check a safetensors file's header and layout *before* anything else reads it.

    The file is 8 bytes (little-endian header length n), n bytes of JSON, then the tensor data. Checks: the
    length is sane and under ``max_header_bytes``; the header is a JSON object of ``{"dtype", "shape",
    "data_offsets"}`` entries (plus ``__metadata__`` of strings); dtypes are known (and in
    ``allowed_dtypes`` when given); each tensor's byte size is its shape times its dtype size; offsets are in
    range, in order, contiguous from 0 and end exactly at the end of the file. ``label`` (``init`` or
    ``mask``) starts every error's field.
    """
    field_ = f"{label}.safetensors" if label in ("init", "mask") else label
    if len(data) == 0:
        raise BundleError("empty_file", field_, "the file is empty")
    kind = sniff(data)
    if kind == "a Python pickle":
        raise BundleError("pickle_file", field_, "this is a Python pickle; tickets are safetensors only "
                                                 "(pickles can run code when loaded, so they are refused)")
    if kind is not None and kind.startswith("a zip archive"):
        raise BundleError("torch_zip", field_, "this is a torch.save zip (it holds a pickle); save the tensors "
                                               "with safetensors instead")
    if len(data) < 8:
        raise BundleError("truncated", field_, f"the file is {len(data)} bytes, too short for a safetensors "
                                               f"header" + (f" (it looks like {kind})" if kind else ""))
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if kind is not None and (n > len(data) or n > max_header_bytes):
        raise BundleError("not_safetensors", field_, f"this is {kind}, not a safetensors file")
    if n > max_header_bytes:
        raise BundleError("header_too_large", field_, f"the safetensors header claims {n:,} bytes, over the "
                                                      f"limit of {max_header_bytes:,} (not a safetensors file?)")
    if 8 + n > len(data):
        raise BundleError("truncated", field_, f"the header claims {n:,} bytes but the file has only "
                                               f"{len(data) - 8:,} after the length: the file is truncated")
    try:
        header = strict_json_loads(bytes(data[8:8 + n]).decode("utf-8"), field_)
    except UnicodeDecodeError as e:
        raise BundleError("not_safetensors", field_, "the header is not UTF-8 JSON, so this is not a safetensors "
                                                     "file") from e
    except BundleError as e:
        raise BundleError("not_safetensors", field_, f"the header is not JSON, so this is not a safetensors "
                                                     f"file ({e.message})") from e
    if not isinstance(header, dict):
        raise BundleError("header_invalid", field_, "the safetensors header is not a JSON object")
    check_json_tree(header, field_ + ":")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise BundleError("header_invalid", f"{field_}:__metadata__", "metadata must map strings to strings")
    start = 8 + n
    size = len(data) - start
    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]] = {}
    for name, entry in header.items():
        where = f"{field_}:{name}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise BundleError("header_invalid", where, "each tensor entry needs exactly dtype, shape, data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise BundleError("dtype_not_allowed", where, f"unknown dtype {dtype!r:.20}")
        if allowed_dtypes is not None and dtype not in allowed_dtypes:
            raise BundleError("dtype_not_allowed", where, f"dtype {dtype} is not allowed here "
                                                          f"(allowed: {', '.join(allowed_dtypes)})")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape):
            raise BundleError("header_invalid", where, "shape must be a list of at most 8 non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise BundleError("header_invalid", where, "data_offsets must be two integers [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise BundleError("bad_offsets", where, f"data_offsets [{begin}, {end}] are not a valid byte range")
        expected = math.prod(shape) * DTYPES[dtype][1]
        if end - begin != expected:
            raise BundleError("bad_offsets", where, f"a {dtype} tensor of shape {shape} needs {expected:,} bytes, "
                                                    f"its offsets span {end - begin:,}")
        tensors[name] = (dtype, tuple(shape), (begin, end))
    cursor = 0
    for name, (_, _, (begin, end)) in sorted(tensors.items(), key=lambda kv: kv[1][2]):
        if begin != cursor:
            raise BundleError("bad_offsets", f"{field_}:{name}",
                              f"tensor data must be contiguous: expected the tensor to start at byte {cursor:,} of "
                              f"the data, the header says {begin:,} (the header points out of range)")
        cursor = end
    if cursor > size:
        raise BundleError("truncated", field_, f"the header declares {cursor:,} bytes of tensor data but the file "
                                               f"holds only {size:,}: the file is truncated")
    if cursor < size:
        raise BundleError("bad_offsets", field_, f"the tensors cover {cursor:,} bytes but the file holds {size:,} "
                                                 f"bytes of data (trailing bytes)")
    return SafetensorsHeader(tensors=tensors, metadata=dict(metadata), data_start=start)


def load_safetensors(data: bytes, label: str = "file", **header_checks: Any) -> tuple[dict[str, np.ndarray],
                                                                                      dict[str, str]]:
    """(tensors, metadata) of a safetensors file, after :func:`read_header`'s checks. Never unpickles."""
    from safetensors.numpy import load

    header = read_header(data, label, **header_checks)
    if any(dt == "BF16" for dt, _, _ in header.tensors.values()):
        raise BundleError("dtype_not_allowed", f"{label}.safetensors", "BF16 tensors are not supported")
    try:
        tensors = load(bytes(data))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # safetensors raises its own types; a Rust panic is a BaseException
        raise BundleError("not_safetensors", f"{label}.safetensors", f"safetensors could not read the file: {e}") from e
    return dict(tensors), header.metadata


def save_safetensors(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialise to safetensors, byte-for-byte deterministic (the safetensors library orders metadata keys
    by a hash map, so the same tensors could give different bytes and a different sha256).

    Layout as the library writes it: tensors ordered by dtype size (largest first), then name; the header is
    compact JSON (metadata keys sorted) padded with spaces to a multiple of 8 bytes; data little-endian.
    """
    entries = []
    for name, value in tensors.items():
        array = np.asarray(value)
        st = NUMPY_TO_ST.get(array.dtype.newbyteorder("<").str if array.dtype.byteorder == ">" else array.dtype.str)
        if st is None:
            raise BundleError("dtype_not_allowed", name, f"{name} has dtype {array.dtype}, which safetensors "
                                                         f"cannot store")
        entries.append((name, st, array))
    entries.sort(key=lambda e: (-DTYPES[e[1]][1], e[0]))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(metadata[k]) for k in sorted(metadata)}
    chunks = []
    offset = 0
    for name, st, array in entries:
        raw = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False)).tobytes()
        header[name] = {"dtype": st, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


# --- the bundle -------------------------------------------------------------------------------------------


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
    from ticketclient.errors import UnknownTaskError

    try:
        return str(config.resolve().to_json())
    except (UnknownTaskError, BundleError):
        return json.dumps(config.architecture, separators=(",", ":"), sort_keys=True)


__all__ = [
    "FORMAT", "BUNDLE_FILES", "CONFIG_FILE", "INIT_FILE", "MASK_FILE", "Recipe", "Claims", "Provenance",
    "TicketConfig", "TicketBundle", "SafetensorsHeader", "measure_density", "read_header", "load_safetensors",
    "save_safetensors", "sniff", "strict_json_loads", "check_json_tree", "check_ticket_name", "bad_character",
    "TICKET_NAME",
]
