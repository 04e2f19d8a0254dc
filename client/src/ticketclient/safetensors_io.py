"""The safetensors codec of the ticket format (no torch): checked headers, numpy arrays, deterministic bytes.

:func:`read_header` checks a file's header and layout before anything else reads it (sizes, dtypes,
offsets, no pickle or zip in disguise); :func:`load_safetensors` reads the tensors as numpy arrays after
those checks and never unpickles; :func:`save_safetensors` writes byte-for-byte deterministic files.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from safetensors.numpy import load

from ticketclient.errors import BundleError
from ticketclient.strict_json import check_json_tree, strict_json_loads

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


__all__ = ["DTYPES", "NUMPY_TO_ST", "DEFAULT_MAX_HEADER_BYTES", "SafetensorsHeader", "sniff", "read_header",
           "load_safetensors", "save_safetensors"]
