"""validate_bundle: a valid bundle passes with measured facts; every broken one raises its own code.

Broken files are crafted byte by byte (numpy + struct + json), so each check is exercised on exactly the
bytes an attacker or a buggy tool would upload.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_it_format import build_bundle, bundle_bytes, config_dict
from ticketclient import format as tformat
from ticketclient import validation
from ticketclient.errors import BundleError

Files = dict[str, bytes]


def valid(**kwargs: Any) -> Files:
    return bundle_bytes(build_bundle(**kwargs))


def raises(files: Files, code: str, field_prefix: str, limits: validation.Limits | None = None) -> BundleError:
    with pytest.raises(BundleError) as e:
        validation.validate_bundle(**files, limits=limits or validation.Limits())
    err = e.value
    assert err.code == code, f"expected {code}, got {err.code}: {err}"
    assert (err.field or "").startswith(field_prefix), f"field {err.field!r} does not start with {field_prefix!r}"
    assert len(err.message) > 10
    assert err.as_dict() == {"code": code, "field": err.field, "message": err.message}
    return err


def tensors_of(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return tformat.load_safetensors(data, "file")


def edit_tensors(data: bytes, edit: Callable[[dict[str, np.ndarray]], None], *,
                 metadata: dict[str, str] | None = None) -> bytes:
    tensors, meta = tensors_of(data)
    edit(tensors)
    return tformat.save_safetensors(tensors, meta if metadata is None else metadata)


def raw_safetensors(header: dict[str, Any], data: bytes, *, declared_length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if declared_length is None else declared_length) + text + data


def with_config(files: Files, edit: Callable[[dict], None]) -> Files:
    cfg = json.loads(files["config"])
    edit(cfg)
    return {**files, "config": json.dumps(cfg).encode()}


# --- the valid case -------------------------------------------------------------------------------------


def test_valid_bundle_passes_with_measured_density_budget_and_checksums():
    bundle = build_bundle(density=0.25)
    files = bundle_bytes(bundle)
    v = validation.validate_bundle(**files, limits=validation.Limits())
    kept = sum(int(m.sum()) for m in bundle.mask.values())
    total = sum(m.size for m in bundle.mask.values())
    assert v.density == pytest.approx(kept / total)
    assert v.num_kept == kept and v.num_prunable == total
    assert v.layer_densities == {n: m.mean() for n, m in bundle.mask.items()}
    assert v.num_parameters == 40 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert v.budget["budget"] == v.num_parameters * 400 * 60
    assert v.budget["forward_macs"] == 40 * 32 + 32 * 16 + 16 * 10
    assert 0 < v.budget["sparse_forward_macs"] < v.budget["forward_macs"]
    import hashlib

    assert v.sha256 == {"config.json": hashlib.sha256(files["config"]).hexdigest(),
                        "init.safetensors": hashlib.sha256(files["init"]).hexdigest(),
                        "mask.safetensors": hashlib.sha256(files["mask"]).hexdigest()}
    assert v.metadata["mask"]["kind"] == "mask"
    for name, array in bundle.init.items():
        assert np.array_equal(v.init[name], array)
    assert v.config == bundle.config
    assert v.arch.prunable == list(bundle.mask)


def test_valid_bundle_with_batchnorm_residual_blocks_and_float16_passes():
    files = valid(task="cifar10", architecture={"family": "resnet-20", "args": {"width": 4}},
                  float_dtype=np.float16)
    v = validation.validate_bundle(**files, limits=validation.Limits())
    assert "layers.6.shortcut.0.weight" in v.mask and "layers.5.shortcut.0.weight" not in v.mask
    assert v.init["layers.1.num_batches_tracked"].dtype == np.int64


def test_metadata_is_optional():
    files = valid()
    strip = {k: edit_tensors(files[k], lambda t: None, metadata={}) for k in ("init", "mask")}
    validation.validate_bundle(**{**files, **strip}, limits=validation.Limits())


# --- tensors against the architecture -------------------------------------------------------------------

W = "layers.1.weight"  # the first prunable weight of the mlp


def test_wrong_init_shape():
    files = valid()
    bad = edit_tensors(files["init"], lambda t: t.__setitem__(W, np.zeros((33, 40), np.float32)))
    err = raises({**files, "init": bad}, "shape_mismatch", f"init.safetensors:{W}")
    assert "[33, 40]" in err.message and "[32, 40]" in err.message


def test_wrong_mask_shape():
    files = valid()
    bad = edit_tensors(files["mask"], lambda t: t.__setitem__(W, t[W][:, :-1].copy()))
    raises({**files, "mask": bad}, "shape_mismatch", f"mask.safetensors:{W}")


def test_missing_and_extra_init_tensors():
    files = valid()
    raises({**files, "init": edit_tensors(files["init"], lambda t: t.pop("layers.5.bias"))},
           "missing_tensor", "init.safetensors:layers.5.bias")
    raises({**files, "init": edit_tensors(files["init"],
                                          lambda t: t.__setitem__("layers.99.weight", np.zeros(3, np.float32)))},
           "unexpected_tensor", "init.safetensors:layers.99.weight")


def test_missing_mask_and_mask_for_a_bias():
    files = valid()
    raises({**files, "mask": edit_tensors(files["mask"], lambda t: t.pop("layers.5.weight"))},
           "missing_mask", "mask.safetensors:layers.5.weight")
    err = raises({**files, "mask": edit_tensors(files["mask"],
                                                lambda t: t.__setitem__("layers.1.bias", np.ones(32, bool)))},
                 "unexpected_mask", "mask.safetensors:layers.1.bias")
    assert "prunable" in err.message


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int64])
def test_non_boolean_mask(dtype):
    files = valid()
    bad = edit_tensors(files["mask"], lambda t: t.__setitem__(W, t[W].astype(dtype)))
    raises({**files, "mask": bad}, "mask_not_boolean", f"mask.safetensors:{W}")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_init(value):
    files = valid()

    def poison(t):
        t["layers.3.bias"] = t["layers.3.bias"].copy()
        t["layers.3.bias"][2] = value

    err = raises({**files, "init": edit_tensors(files["init"], poison)}, "non_finite",
                 "init.safetensors:layers.3.bias")
    assert "1 NaN or infinite" in err.message


def test_init_dtypes_are_float32_or_float16_and_int64_counters():
    files = valid()
    raises({**files, "init": edit_tensors(files["init"], lambda t: t.__setitem__(W, t[W].astype(np.float64)))},
           "dtype_mismatch", f"init.safetensors:{W}")
    raises({**files, "init": edit_tensors(files["init"], lambda t: t.__setitem__(W, t[W].astype(np.int32)))},
           "dtype_mismatch", f"init.safetensors:{W}")
    res = valid(task="cifar10", architecture={"family": "resnet-20", "args": {"width": 2}})
    name = "layers.1.num_batches_tracked"
    raises({**res, "init": edit_tensors(res["init"], lambda t: t.__setitem__(name, t[name].astype(np.float32)))},
           "dtype_mismatch", f"init.safetensors:{name}")


def test_negative_running_variance():
    res = valid(task="cifar10", architecture={"family": "resnet-20", "args": {"width": 2}})
    name = "layers.1.running_var"
    raises({**res, "init": edit_tensors(res["init"], lambda t: t.__setitem__(name, -t[name]))},
           "negative_variance", f"init.safetensors:{name}")


def test_fully_pruned_layer():
    files = valid()
    bad = edit_tensors(files["mask"], lambda t: t.__setitem__("layers.3.weight", np.zeros((16, 32), bool)),
                       metadata={})
    err = raises({**files, "mask": bad}, "empty_layer", "mask.safetensors:layers.3.weight")
    assert "pruned" in err.message


# --- the architecture and the recipe --------------------------------------------------------------------


def test_unknown_layer_type():
    files = with_config(valid(), lambda c: c.__setitem__("architecture", {"layers": [{"type": "lstm"}]}))
    raises(files, "unknown_layer", "architecture.layers[0].type")


def test_architecture_that_does_not_fit_the_task():
    conv_on_1d = with_config(valid(), lambda c: c.__setitem__("architecture", {"family": "conv-2"}))
    err = raises(conv_on_1d, "shape_error", "architecture")
    assert "[40]" in err.message
    wrong_output = with_config(valid(), lambda c: c.__setitem__(
        "architecture", {"layers": [{"type": "linear", "out_features": 7}]}))
    raises(wrong_output, "output_mismatch", "architecture.layers[0]")


def test_oversized_spec():
    wide = {"layers": [{"type": "linear", "out_features": 16_384}, {"type": "relu"},
                       {"type": "linear", "out_features": 16_384}, {"type": "relu"},
                       {"type": "linear", "out_features": 10}]}
    err = raises(with_config(valid(), lambda c: c.__setitem__("architecture", wide)), "too_many_parameters",
                 "architecture.layers[2]")
    assert "25,000,000" in err.message
    deep = {"family": "mlp", "args": {"hidden": [4] * 80}}
    raises(with_config(valid(), lambda c: c.__setitem__("architecture", deep)), "too_many_layers", "architecture")
    too_wide = {"layers": [{"type": "linear", "out_features": 10**9}]}
    raises(with_config(valid(), lambda c: c.__setitem__("architecture", too_wide)), "out_of_range",
           "architecture.layers[0].out_features")


def test_over_budget_recipes():
    files = valid()
    raises(with_config(files, lambda c: c["recipe"].__setitem__("iterations", 5_000_000)),
           "too_many_iterations", "recipe.iterations")
    raises(with_config(files, lambda c: c["recipe"].update(iterations=5000, eval_every=2)),
           "too_many_eval_points", "recipe.eval_every")
    raises(with_config(files, lambda c: c["recipe"].__setitem__("batch_size", 50_000)),
           "batch_too_large", "recipe.batch_size")
    err = raises(files, "over_budget", "recipe", limits=validation.Limits(max_budget=10**6))
    assert "parameters x iterations x batch size" in err.message


# --- not safetensors, or damaged -------------------------------------------------------------------------


def test_empty_and_truncated_files():
    files = valid()
    raises({**files, "mask": b""}, "empty_file", "mask.safetensors")
    raises({**files, "init": files["init"][:-5]}, "truncated", "init.safetensors")
    raises({**files, "init": files["init"][:40]}, "truncated", "init.safetensors")
    raises({**files, "init": files["init"][:5]}, "truncated", "init.safetensors")


def test_a_pickle_is_recognised_and_never_loaded():
    files = valid()
    err = raises({**files, "init": pickle.dumps({"layers.1.weight": [1.0, 2.0]})}, "pickle_file", "init.safetensors")
    assert "pickle" in err.message


def test_a_torch_save_zip_is_recognised():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the layout torch.save writes: archive/data.pkl + archive/data/0
        z.writestr("archive/data.pkl", pickle.dumps({"weight": 1}))
        z.writestr("archive/data/0", b"\x00" * 16)
        z.writestr("archive/version", "3\n")
    err = raises({**valid(), "init": buf.getvalue()}, "torch_zip", "init.safetensors")
    assert "torch.save" in err.message


def test_hdf5_and_random_bytes_are_not_safetensors():
    files = valid()
    err = raises({**files, "init": b"\x89HDF\r\n\x1a\n" + b"\x00" * 100}, "not_safetensors", "init.safetensors")
    assert "HDF5" in err.message
    raises({**files, "mask": struct.pack("<Q", 12) + b"not json at all" + b"\x00" * 8}, "not_safetensors",
           "mask.safetensors")
    raises({**files, "mask": b"\xff" * 64}, "header_too_large", "mask.safetensors")


def test_header_pointing_out_of_range():
    files = valid()
    data = np.zeros(4, np.float32).tobytes()
    beyond = raw_safetensors({W: {"dtype": "F32", "shape": [2, 2], "data_offsets": [64, 80]}}, data)
    raises({**files, "init": beyond}, "bad_offsets", f"init.safetensors:{W}")
    inverted = raw_safetensors({W: {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}, data)
    raises({**files, "init": inverted}, "bad_offsets", f"init.safetensors:{W}")
    size_lie = raw_safetensors({W: {"dtype": "F32", "shape": [100, 100], "data_offsets": [0, 16]}}, data)
    raises({**files, "init": size_lie}, "bad_offsets", f"init.safetensors:{W}")
    overlap = raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                               "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data)
    raises({**files, "init": overlap}, "bad_offsets", "init.safetensors:")
    trailing = raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, data)
    raises({**files, "init": trailing}, "bad_offsets", "init.safetensors")
    claims_more = raw_safetensors({}, b"", declared_length=10_000)
    raises({**files, "init": claims_more}, "truncated", "init.safetensors")


def test_header_with_unknown_dtype_or_bad_entries():
    files = valid()
    data = b"\x00" * 16
    raises({**files, "init": raw_safetensors({W: {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}},
                                             data)}, "dtype_not_allowed", f"init.safetensors:{W}")
    raises({**files, "init": raw_safetensors({W: {"dtype": "F32", "shape": [4]}}, data)},
           "header_invalid", f"init.safetensors:{W}")
    raises({**files, "init": raw_safetensors({W: {"dtype": "F32", "shape": [True, 4], "data_offsets": [0, 16]}},
                                             data)}, "header_invalid", f"init.safetensors:{W}")
    raises({**files, "init": raw_safetensors({"__metadata__": {"a": 1}}, b"")}, "header_invalid",
           "init.safetensors:__metadata__")
    raises({**files, "init": raw_safetensors([1, 2], b"")}, "header_invalid", "init.safetensors")


def test_header_size_limit():
    files = valid()
    raises(files, "header_too_large", "init.safetensors", limits=validation.Limits(max_header_bytes=64))


def test_file_size_limits():
    files = valid()
    err = raises(files, "file_too_large", "init.safetensors", limits=validation.Limits(max_file_bytes=1000))
    assert "limit" in err.message
    raises(files, "file_too_large", "config.json", limits=validation.Limits(max_config_bytes=100))


# --- config, claims, metadata ---------------------------------------------------------------------------


def test_unknown_config_keys_and_bad_claims():
    files = valid()
    raises(with_config(files, lambda c: c.__setitem__("densty", 0.01)), "unknown_field", "densty")
    raises(with_config(files, lambda c: c["claims"].__setitem__("test_accuracy", 64.0)), "out_of_range",
           "claims.test_accuracy")
    raises(with_config(files, lambda c: c["claims"].__setitem__("early_stop_iteration", 10_000)), "out_of_range",
           "claims.early_stop_iteration")
    raises(with_config(files, lambda c: c["claims"].__setitem__("density", 0.9)), "claim_mismatch",
           "claims.density")
    raises({**files, "config": b"{'task': 'mnist1d',"}, "config_not_json", "config.json")
    raises(with_config(files, lambda c: c["recipe"].__setitem__("rewind_iteration", 400)), "out_of_range",
           "recipe.rewind_iteration")


def test_a_correct_density_claim_passes():
    bundle = build_bundle()
    density = tformat.measure_density(bundle.mask)[0]
    files = with_config(bundle_bytes(bundle), lambda c: c["claims"].__setitem__("density", density))
    assert validation.validate_bundle(**files, limits=validation.Limits()).density == density
    rounded = float(f"{density:.3g}")
    files = with_config(bundle_bytes(bundle), lambda c: c["claims"].__setitem__("density", rounded))
    assert validation.validate_bundle(**files, limits=validation.Limits()).density == density
    files = with_config(bundle_bytes(bundle), lambda c: c["claims"].__setitem__("density", density * 1.02))
    raises(files, "claim_mismatch", "claims.density")


def test_unknown_task():
    err = raises(with_config(valid(), lambda c: c.__setitem__("task", "imagenet-22k")), "unknown_task", "task")
    assert "mnist1d" in err.message


def test_metadata_must_agree_with_config_and_mask():
    files = valid()
    _, meta = tensors_of(files["mask"])
    _, init_meta = tensors_of(files["init"])
    err = raises({**files, "init": files["mask"], "mask": files["init"]}, "metadata_mismatch",
                 "init.safetensors:__metadata__.kind")
    assert "swapped" in err.message
    raises({**files, "mask": edit_tensors(files["mask"], lambda t: None, metadata={**meta, "kind": "init"})},
           "metadata_mismatch", "mask.safetensors:__metadata__.kind")
    raises({**files, "init": edit_tensors(files["init"], lambda t: None, metadata={**init_meta, "task": "mnist"})},
           "metadata_mismatch", "init.safetensors:__metadata__.task")
    raises({**files, "mask": edit_tensors(files["mask"], lambda t: None, metadata={**meta, "density": "0.5"})},
           "metadata_mismatch", "mask.safetensors:__metadata__.density")
    other = json.dumps({"family": "mlp", "args": {"hidden": [32, 17]}})
    raises({**files, "init": edit_tensors(files["init"], lambda t: None,
                                          metadata={**init_meta, "architecture": other})},
           "metadata_mismatch", "init.safetensors:__metadata__.architecture")
    raises({**files, "init": edit_tensors(files["init"], lambda t: None, metadata={**init_meta, "owner": "x"})},
           "metadata_mismatch", "init.safetensors:__metadata__.owner")


def test_metadata_architecture_may_be_the_family_form():
    files = valid()
    _, init_meta = tensors_of(files["init"])
    family = json.dumps(config_dict()["architecture"])
    ok = edit_tensors(files["init"], lambda t: None, metadata={**init_meta, "architecture": family})
    validation.validate_bundle(**{**files, "init": ok}, limits=validation.Limits())


# --- limits ---------------------------------------------------------------------------------------------


def test_limits_from_env(monkeypatch):
    monkeypatch.setenv("TICKETHUB_MAX_BUDGET", "1e12")
    monkeypatch.setenv("TICKETHUB_MAX_FILE_BYTES", "1_000_000")
    limits = validation.Limits.from_env()
    assert limits.max_budget == 10**12 and limits.max_file_bytes == 1_000_000
    assert limits.max_parameters == validation.Limits().max_parameters
    monkeypatch.setenv("TICKETHUB_MAX_LAYERS", "many")
    with pytest.raises(ValueError, match="TICKETHUB_MAX_LAYERS"):
        validation.Limits.from_env()
    monkeypatch.setenv("TICKETHUB_MAX_LAYERS", "0")
    with pytest.raises(ValueError, match="TICKETHUB_MAX_LAYERS"):
        validation.Limits.from_env()


def test_default_limits_admit_the_paper_families_with_their_recipes():
    from ticketclient import spec, tasks

    limits = validation.Limits()
    for name, family in spec.FAMILIES.items():
        task = tasks.get("mnist" if name in ("mlp", "lenet-300-100", "lenet-5") else "cifar10")
        arch = spec.resolve({"family": name}, task.input_shape, task.num_classes,
                            max_parameters=limits.max_parameters, max_layers=limits.max_layers)
        budget = validation.check_recipe(family.default_recipe, arch, limits)
        assert budget["budget"] <= limits.max_budget, name


# --- robustness: damaged uploads only ever raise BundleError --------------------------------------------

ODD_VALUES = [None, True, -1, 0, 2**70, 1.5, float("nan"), "", "x" * 300, [], [1, "a"], {}, {"type": "relu"}]


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def test_random_damage_raises_only_bundle_errors():
    """Flipped bytes, cut files and odd JSON values anywhere: a BundleError or a pass, never a crash."""
    rng = np.random.default_rng(1234)
    files = valid(task="cifar10", architecture={"family": "resnet-20", "args": {"width": 2}})
    codes: set[str] = set()
    for trial in range(300):
        damaged = dict(files)
        which = ("config", "init", "mask")[trial % 3]
        if which == "config":
            cfg = json.loads(files["config"])
            path = _paths(cfg)[int(rng.integers(len(_paths(cfg))))]
            target = cfg
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
            damaged["config"] = json.dumps(cfg).encode()
        else:
            data = bytearray(files[which])
            if rng.random() < 0.5:
                for _ in range(int(rng.integers(1, 4))):
                    pos = int(rng.integers(len(data)) if rng.random() < 0.5 else rng.integers(min(len(data), 400)))
                    data[pos] = int(rng.integers(256))
            else:
                data = data[: int(rng.integers(len(data)))]
            damaged[which] = bytes(data)
        try:
            validation.validate_bundle(**damaged, limits=validation.Limits())
        except BundleError as e:
            assert e.code and e.message, e
            codes.add(e.code)
    assert len(codes) >= 8, codes  # the damage reached many different checks


def test_command_line_reports_valid_and_invalid_folders(tmp_path, capsys):
    good = build_bundle().save(tmp_path / "good")
    assert validation.main([str(good), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and 0 < out["density"] < 1 and out["task"] == "mnist1d"
    bad = build_bundle().save(tmp_path / "bad")
    (bad / "init.safetensors").write_bytes(pickle.dumps([1, 2, 3]))
    assert validation.main([str(bad), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "valid": False, "code": "pickle_file", "field": "init.safetensors",
        "message": "this is a Python pickle; tickets are safetensors only (pickles can run code when loaded, so "
                   "they are refused)"}


def _mask_bytes_set_to(files: Files, value: int) -> bytes:
    """The mask file with the first byte of the first mask tensor set to ``value`` (a BOOL byte)."""
    data = bytearray(files["mask"])
    header = tformat.read_header(bytes(data), "mask")
    _, _, (begin, _) = header.tensors[W]
    data[header.data_start + begin] = value
    return bytes(data)


@pytest.mark.parametrize("value", [2, 7, 128, 255])
def test_mask_bytes_other_than_0_and_1_are_refused(value):
    files = valid()
    raises({**files, "mask": _mask_bytes_set_to(files, value)}, "mask_not_boolean", f"mask.safetensors:{W}")


def test_mask_bytes_0_and_1_pass():
    files = valid()
    validation.validate_bundle(**{**files, "mask": _mask_bytes_set_to(files, 1)}, limits=validation.Limits())


def test_a_10gb_declared_tensor_is_refused_without_allocating():
    import tracemalloc

    files = valid()
    header = {W: {"dtype": "F32", "shape": [50_000, 50_000], "data_offsets": [0, 10_000_000_000]}}
    tracemalloc.start()
    try:
        raises({**files, "init": raw_safetensors(header, b"\0" * 64)}, "truncated", "init.safetensors")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
