"""Hypothesis-made hostile bundles against ``validate_bundle`` and against ``POST /api/v1/tickets/``.

Every mutation of a valid bundle: truncated files, random bytes, safetensors headers that lie about
offsets, shapes and dtypes, enormous declared shapes (never allocated: the header is checked against the
file's length first), deep nesting, absurd recipe values, unicode edge cases in every string field, flipped
bytes. The oracle: validation raises only ``BundleError`` (never anything else), a mutation known to make
the bundle invalid is always refused, and whatever is accepted satisfies the format's invariants (mask
bytes 0/1, shapes of the architecture, finite values, clean strings, density measured from the mask). The
API must answer every one with a 4xx JSON or a 201, never a 5xx.
"""

from __future__ import annotations

import json
import struct
from functools import cache
from typing import Any

import numpy as np
import pytest
from factories import BundleBytes, make_bundle
from fuzzstats import count, scaled
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from ticketclient import format as tformat
from ticketclient import validation
from ticketclient.errors import BundleError

STRING_FIELDS = ["name", "description", "provenance.notes", "provenance.library", "provenance.method",
                 "provenance.parent", "task", "provenance.rates.<key>", "architecture.family"]
HOSTILE_TEXT = ["\x00", "\ud800", "\udfff", "a\u0000b", "\x1b[2J", "\x7f", "\x85", "\u202e", "\ufeff", "\uffff",
                "../../etc/passwd", "..\\..\\boot.ini", "name\n", "%00", "\u0130", "\u017f", "ǅ", "ﬁ", "A" * 5000,
                "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "e\u0301", "\u200b", "{\"$ref\": 1}", "' OR 1=1 --", "${jndi:ldap://x}"]


@cache
def base() -> BundleBytes:
    return make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=0)


def _header(data: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _pack(header: Any, body: bytes, declared: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if declared is None else declared) + text + body


def _set_path(cfg: dict[str, Any], path: str, value: Any) -> None:
    if path == "provenance.rates.<key>":
        cfg.setdefault("provenance", {})["rates"] = {value if isinstance(value, str) else "k": 0.2}
        return
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return
    node[last] = value


# --- mutations: (files, surely_invalid) ----------------------------------------------------------------

FILES = st.sampled_from(["config", "init", "mask"])


@st.composite
def truncated(draw):
    part = draw(FILES)
    data = getattr(base(), part)
    cut = draw(st.integers(0, len(data.rstrip()) - 1))  # config.json's final newline is not content
    return base().replace(**{part: data[:cut]}), True


@st.composite
def random_bytes(draw):
    part = draw(FILES)
    return base().replace(**{part: draw(st.binary(max_size=4096))}), True


@st.composite
def lying_header(draw):
    part = draw(st.sampled_from(["init", "mask"]))
    header, body = _header(getattr(base(), part))
    names = sorted(k for k in header if k != "__metadata__")
    name = draw(st.sampled_from(names))
    entry = header[name]
    lie = draw(st.sampled_from(["offsets", "shape", "dtype", "enormous", "declared_length", "duplicate", "extra"]))
    declared = None
    if lie == "offsets":
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = [begin + draw(st.integers(-64, 64).filter(bool)), end]
    elif lie == "shape":
        entry["shape"] = draw(st.lists(st.integers(-2, 2**41), max_size=9).filter(lambda s: s != entry["shape"]))
    elif lie == "dtype":
        entry["dtype"] = draw(st.sampled_from(["F64", "I8", "U8", "BF16", "F8", "", "bool", "F32", "BOOL", "I64"]))
        if entry["dtype"] in (("BOOL",) if part == "mask" else ("F32",)):
            entry["dtype"] = "I32"
    elif lie == "enormous":  # a 10 GB (or larger) declared tensor: must be refused from the header alone
        dims = draw(st.lists(st.integers(10_000, 2**39), min_size=2, max_size=4))
        entry["shape"] = dims
        entry["data_offsets"] = [0, int(np.prod(dims, dtype=object)) * 4]
    elif lie == "declared_length":
        declared = draw(st.sampled_from([0, 1, 7, 2**31, 2**63, 2**64 - 1]))
    elif lie == "duplicate":
        text = json.dumps(header)
        dup = json.dumps({name: entry})[1:-1]
        raw = (text[:-1] + ", " + dup + "}").encode()
        return base().replace(**{part: struct.pack("<Q", len(raw)) + raw + body}), True
    elif lie == "extra":
        header["zzz"] = {"dtype": entry["dtype"], "shape": [1], "data_offsets": [len(body), len(body) + 1]}
    return base().replace(**{part: _pack(header, body, declared)}), True


@st.composite
def flipped_mask_bytes(draw):
    header, body = _header(base().mask)
    body = bytearray(body)
    i = draw(st.integers(0, len(body) - 1))
    body[i] = draw(st.integers(2, 255))
    return base().replace(mask=_pack(header, bytes(body))), True


@st.composite
def deep_nesting(draw):
    cfg = json.loads(base().config)
    depth = draw(st.integers(50, 100_000))
    where = draw(st.sampled_from(["description", "recipe.lr", "architecture.args", "claims", "provenance.notes"]))
    text = json.dumps(cfg)
    nested = "[" * depth + "]" * depth
    marker = '"__NEST__"'
    _set_path(cfg, where, "__NEST__")
    text = json.dumps(cfg).replace(marker, nested)
    return base().replace(config=text.encode()), True


ABSURD = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=20), st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                   st.just(10**30), st.just(-1), st.just(0), st.just(1e308))


@st.composite
def absurd_recipe(draw):
    cfg = json.loads(base().config)
    key = draw(st.sampled_from(sorted(cfg["recipe"]) + ["unknown_knob"]))
    value = draw(ABSURD)
    cfg["recipe"][key] = value
    if draw(st.booleans()):  # sometimes a literal beyond Python's int digit limit
        text = json.dumps(cfg).replace(f'"{key}": {json.dumps(value)}', f'"{key}": ' + "9" * 5000, 1)
        return base().replace(config=text.encode()), "9" * 5000 in text
    return base().replace(config=json.dumps(cfg).encode()), False


@st.composite
def unicode_strings(draw):
    cfg = json.loads(base().config)
    where = draw(st.sampled_from(STRING_FIELDS))
    text = draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                          st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE_TEXT), st.text(max_size=8))))
    _set_path(cfg, where, text)
    hostile = tformat.bad_character(text) is not None
    return base().replace(config=json.dumps(cfg, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")), \
        hostile


@st.composite
def duplicate_keys(draw):
    text = base().config.decode()
    key = draw(st.sampled_from(['"task"', '"recipe"', '"lr"', '"test_accuracy"', '"family"']))
    i = text.index(key)
    j = text.index(",", i) if "," in text[i:] else len(text) - 1
    dup = text[i:j]
    return base().replace(config=(text[:i] + dup + ", " + text[i:]).encode()), True


MUTATIONS = {"truncated": truncated, "random_bytes": random_bytes, "lying_header": lying_header,
             "flipped_mask_bytes": flipped_mask_bytes, "deep_nesting": deep_nesting, "absurd_recipe": absurd_recipe,
             "unicode_strings": unicode_strings, "duplicate_keys": duplicate_keys}
#: (bundle, surely_invalid, the mutation's name)
BUNDLES = st.one_of(*(make().map(lambda m, n=name: (*m, n)) for name, make in MUTATIONS.items()))


def _check_accepted(v: validation.ValidatedBundle, b: BundleBytes) -> None:
    """What validation accepted satisfies the format's invariants."""
    header = tformat.read_header(b.mask, "mask")
    raw = np.frombuffer(b.mask[header.data_start:], dtype=np.uint8)
    assert raw.size == 0 or int(raw.max()) <= 1
    for name, ts in v.arch.tensors.items():
        assert v.init[name].shape == tuple(ts.shape)
        if v.init[name].dtype.kind == "f":
            assert np.isfinite(v.init[name]).all()
    assert v.density == tformat.measure_density(v.mask)[0]
    tformat.check_json_tree(json.loads(b.config))  # no control characters or surrogates survive


_SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@hypothesis_settings(max_examples=scaled(700), **_SETTINGS)
@given(BUNDLES)
def test_validate_bundle_refuses_every_invalid_bundle_and_raises_only_bundle_errors(mutation):
    bundle, surely_invalid, kind = mutation
    count("bundles (validate_bundle)")
    try:
        v = validation.validate_bundle(config=bundle.config, init=bundle.init, mask=bundle.mask,
                                       limits=validation.Limits())
    except BundleError as e:
        assert e.code and e.message
        return
    assert not surely_invalid, f"an invalid bundle was accepted ({kind}): {bundle.config[:300]!r}"
    _check_accepted(v, bundle)


@pytest.mark.django_db
@hypothesis_settings(max_examples=scaled(150), **_SETTINGS)
@given(mutation=BUNDLES)
def test_the_submit_api_never_answers_5xx_to_a_hostile_bundle(mutation, owner_client, open_throttles):
    bundle, surely_invalid, kind = mutation
    r = owner_client.post("/api/v1/tickets/", bundle.form(name="fuzz-ticket"), format="multipart")
    count("bundles (POST /api/v1/tickets/)", r.status_code)
    assert r.status_code < 500, r.content[:500]
    body = r.json()
    if r.status_code >= 400:
        assert set(body) >= {"error", "field", "detail"}
    else:
        assert not surely_invalid, f"an invalid bundle was accepted ({kind}): {bundle.config[:300]!r}"
        from registry.tickets.models import Revision

        _check_accepted(validation.validate_bundle(config=bundle.config, init=bundle.init, mask=bundle.mask), bundle)
        Revision.objects.filter(ticket__name="fuzz-ticket").delete()
        from registry.tickets.models import Ticket

        Ticket.objects.filter(name="fuzz-ticket").delete()
