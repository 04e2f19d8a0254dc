"""The ticket format: strict config parsing, the bundle's disk/bytes round trip, metadata, density.

Tensors are built with numpy only (this layer never needs torch).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ticketclient import format as tformat
from ticketclient import spec, tasks
from ticketclient.errors import BundleError


def config_dict(task: str = "mnist1d", architecture: dict[str, Any] | None = None, **overrides: Any) -> dict:
    recipe = spec.FAMILIES["mlp"].default_recipe.to_dict()
    recipe.update(iterations=400, eval_every=100)
    d = {
        "format": "lottery-ticket/v1",
        "task": task,
        "architecture": architecture or {"family": "mlp", "args": {"hidden": [32, 16]}},
        "recipe": recipe,
        "claims": {"test_accuracy": 0.61, "early_stop_iteration": 300},
        "provenance": {"method": "imp", "rounds": 3, "strategy": "layerwise",
                       "rates": {"default": 0.2, "output": 0.1}, "rewind_iteration": 0, "seed": 0,
                       "dense_test_accuracy": 0.6, "parent": None, "library": "ticketclient 0.1.0"},
    }
    d.update(overrides)
    return d


def build_bundle(task: str = "mnist1d", architecture: dict[str, Any] | None = None, density: float = 0.3,
                 seed: int = 0, float_dtype: Any = np.float32, **overrides: Any) -> tformat.TicketBundle:
    """A valid bundle: random init of every tensor of the resolved spec, random masks of ``density``."""
    cfg = tformat.TicketConfig.from_json(config_dict(task, architecture, **overrides))
    arch = cfg.resolve()
    rng = np.random.default_rng(seed)
    init = {}
    for name, ts in arch.tensors.items():
        if ts.dtype == "I64":
            init[name] = np.array(7, dtype=np.int64).reshape(ts.shape)
        elif name.endswith("running_var"):
            init[name] = rng.uniform(0.5, 2.0, ts.shape).astype(float_dtype)
        else:
            init[name] = rng.standard_normal(ts.shape).astype(float_dtype)
    mask = {}
    for name in arch.prunable:
        m = rng.random(arch.tensors[name].shape) < density
        m.flat[0] = True  # never an empty layer
        mask[name] = m
    return tformat.TicketBundle(config=cfg, init=init, mask=mask)


def bundle_bytes(bundle: tformat.TicketBundle) -> dict[str, bytes]:
    config, init, mask = bundle.to_bytes()
    return {"config": config, "init": init, "mask": mask}


# --- round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "architecture", "float_dtype"), [
    ("mnist1d", None, np.float32),
    ("digits", {"family": "mlp", "args": {"hidden": [8]}}, np.float16),
    ("cifar10", {"family": "resnet-20", "args": {"width": 4}}, np.float32),
])
def test_bundle_round_trips_through_disk_exactly(tmp_path: Path, task, architecture, float_dtype):
    bundle = build_bundle(task, architecture, float_dtype=float_dtype)
    folder = bundle.save(tmp_path / "ticket")
    assert sorted(p.name for p in folder.iterdir()) == sorted(tformat.BUNDLE_FILES)

    loaded = tformat.TicketBundle.load(folder)
    assert loaded.config == bundle.config
    assert loaded.config.to_dict() == bundle.config.to_dict()
    assert json.loads((folder / "config.json").read_text()) == bundle.config.to_dict()
    assert set(loaded.init) == set(bundle.init) and set(loaded.mask) == set(bundle.mask)
    for name, array in bundle.init.items():
        assert loaded.init[name].dtype == array.dtype, name
        assert loaded.init[name].shape == array.shape, name  # 0-d num_batches_tracked stays 0-d
        assert loaded.init[name].tobytes() == array.tobytes(), name
    for name, m in bundle.mask.items():
        assert loaded.mask[name].dtype == np.bool_
        assert np.array_equal(loaded.mask[name], m)
    # writing what was read gives the same bytes (deterministic files, stable sha256)
    assert loaded.to_bytes() == bundle.to_bytes()
    assert tformat.TicketBundle.from_bytes(*bundle.to_bytes()).to_bytes() == bundle.to_bytes()


def test_safetensors_metadata_catalogues_a_file_from_its_header(tmp_path: Path):
    bundle = build_bundle()
    config, init, mask = bundle.to_bytes()
    init_meta = tformat.read_header(init, "init").metadata
    mask_meta = tformat.read_header(mask, "mask").metadata
    arch = bundle.config.resolve()
    assert init_meta == {"format": "lottery-ticket/v1", "kind": "init", "task": "mnist1d",
                         "architecture": arch.to_json()}
    assert mask_meta["kind"] == "mask"
    assert float(mask_meta["density"]) == pytest.approx(tformat.measure_density(bundle.mask)[0], abs=0)
    assert json.loads(mask_meta["architecture"]) == {"layers": arch.layers}


def test_measure_density_counts_kept_weights_overall_and_per_layer():
    mask = {"a": np.array([[True, False], [False, False]]), "b": np.ones((2, 3), dtype=bool)}
    overall, per_layer = tformat.measure_density(mask)
    assert overall == pytest.approx(7 / 10)
    assert per_layer == {"a": 0.25, "b": 1.0}


def test_saving_a_non_boolean_mask_is_refused(tmp_path: Path):
    bundle = build_bundle()
    name = next(iter(bundle.mask))
    bundle.mask[name] = bundle.mask[name].astype(np.float32)
    with pytest.raises(BundleError) as e:
        bundle.save(tmp_path)
    assert e.value.code == "mask_not_boolean" and name in e.value.field


def test_load_names_a_missing_file(tmp_path: Path):
    build_bundle().save(tmp_path)
    (tmp_path / "mask.safetensors").unlink()
    with pytest.raises(BundleError) as e:
        tformat.TicketBundle.load(tmp_path)
    assert e.value.code == "missing_file" and e.value.field == "mask.safetensors"


# --- strict config --------------------------------------------------------------------------------------


def test_config_parses_from_bytes_text_and_dict_alike():
    d = config_dict()
    from_dict = tformat.TicketConfig.from_json(d)
    assert tformat.TicketConfig.from_json(json.dumps(d)) == from_dict
    assert tformat.TicketConfig.from_json(json.dumps(d).encode()) == from_dict
    assert from_dict.recipe.lr == 1.2e-3 and from_dict.recipe.betas == (0.9, 0.999)
    assert from_dict.claims.test_accuracy == 0.61
    assert from_dict.provenance is not None and from_dict.provenance.rates == {"default": 0.2, "output": 0.1}
    assert tformat.TicketConfig.from_dict(from_dict.to_dict()) == from_dict


def test_every_family_default_recipe_is_a_valid_recipe():
    for name, family in spec.FAMILIES.items():
        recipe = family.default_recipe
        assert isinstance(recipe, tformat.Recipe), name
        assert tformat.Recipe.from_dict(recipe.to_dict()) == recipe
    assert spec.FAMILIES["lenet-300-100"].default_recipe.lr == 1.2e-3
    assert spec.FAMILIES["conv-6"].default_recipe.iterations == 30_000
    vgg = spec.FAMILIES["vgg-19"].default_recipe
    assert (vgg.optimizer, vgg.momentum, vgg.lr, vgg.batch_size, vgg.lr_schedule) == ("sgd", 0.9, 0.1, 128, "step")
    assert vgg.warmup_iterations > 0


def _set(d: dict, path: str, value: Any) -> dict:
    keys = path.split(".")
    target = d
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = value
    return d


def _drop(d: dict, path: str) -> dict:
    keys = path.split(".")
    target = d
    for k in keys[:-1]:
        target = target[k]
    del target[keys[-1]]
    return d


BAD_CONFIGS = [
    # (edit, code, field)
    (lambda d: _set(d, "densty", 0.01), "unknown_field", "densty"),
    (lambda d: _set(d, "recipe.learning_rate", 0.1), "unknown_field", "recipe.learning_rate"),
    (lambda d: _set(d, "claims.accuracy", 0.9), "unknown_field", "claims.accuracy"),
    (lambda d: _set(d, "provenance.sed", 1), "unknown_field", "provenance.sed"),
    (lambda d: _set(d, "format", "lottery-ticket/v9"), "unsupported_format", "format"),
    (lambda d: _drop(d, "format"), "missing_field", "format"),
    (lambda d: _drop(d, "recipe"), "missing_field", "recipe"),
    (lambda d: _drop(d, "claims.test_accuracy"), "missing_field", "claims.test_accuracy"),
    (lambda d: _set(d, "task", "MNIST 1D!"), "bad_value", "task"),
    (lambda d: _set(d, "task", 3), "wrong_type", "task"),
    (lambda d: _set(d, "recipe.lr", -1.0), "out_of_range", "recipe.lr"),
    (lambda d: _set(d, "recipe.lr", 0), "out_of_range", "recipe.lr"),
    (lambda d: _set(d, "recipe.lr", "0.1"), "wrong_type", "recipe.lr"),
    (lambda d: _set(d, "recipe.lr", True), "wrong_type", "recipe.lr"),
    (lambda d: _set(d, "recipe.batch_size", 0), "out_of_range", "recipe.batch_size"),
    (lambda d: _set(d, "recipe.batch_size", 60.0), "wrong_type", "recipe.batch_size"),
    (lambda d: _set(d, "recipe.batch_size", True), "wrong_type", "recipe.batch_size"),
    (lambda d: _set(d, "recipe.iterations", 0), "out_of_range", "recipe.iterations"),
    (lambda d: _set(d, "recipe.optimizer", "lion"), "bad_value", "recipe.optimizer"),
    (lambda d: _set(d, "recipe.lr_schedule", "exponential"), "bad_value", "recipe.lr_schedule"),
    (lambda d: _set(d, "recipe.augment", "mixup"), "bad_value", "recipe.augment"),
    (lambda d: _set(d, "recipe.betas", [0.9]), "wrong_type", "recipe.betas"),
    (lambda d: _set(d, "recipe.betas", [0.9, 1.0]), "out_of_range", "recipe.betas"),
    (lambda d: _set(d, "recipe.milestones", [300, 100]), "bad_value", "recipe.milestones"),
    (lambda d: _set(d, "recipe.milestones", [100]), "bad_value", "recipe.milestones"),  # constant schedule
    (lambda d: _set(d, "recipe.gamma", 0.0), "out_of_range", "recipe.gamma"),
    (lambda d: _set(d, "claims.test_accuracy", 64.0), "out_of_range", "claims.test_accuracy"),
    (lambda d: _set(d, "claims.test_accuracy", -0.1), "out_of_range", "claims.test_accuracy"),
    (lambda d: _set(d, "claims.early_stop_iteration", -1), "out_of_range", "claims.early_stop_iteration"),
    (lambda d: _set(d, "claims.density", 0.0), "out_of_range", "claims.density"),
    (lambda d: _set(d, "provenance.strategy", "random"), "bad_value", "provenance.strategy"),
    (lambda d: _set(d, "provenance.rates", {"default": 1.5}), "out_of_range", "provenance.rates.default"),
    (lambda d: _set(d, "provenance.dense_test_accuracy", 98.0), "out_of_range", "provenance.dense_test_accuracy"),
    (lambda d: _set(d, "architecture", {"family": "transformer-xl"}), "unknown_family", "architecture.family"),
    (lambda d: _set(d, "architecture", {"layers": [{"type": "lstm"}]}), "unknown_layer",
     "architecture.layers[0].type"),
    (lambda d: _set(d, "architecture", {"family": "mlp", "layers": []}), "unknown_field", "architecture.family"),
    (lambda d: _set(d, "architecture", {"family": "mlp", "args": {"hiden": [3]}}), "unknown_field",
     "architecture.args.hiden"),
    (lambda d: _set(d, "architecture", "mlp"), "wrong_type", "architecture"),
]


@pytest.mark.parametrize(("edit", "code", "field"), BAD_CONFIGS,
                         ids=[f"{c}:{f}" for _, c, f in BAD_CONFIGS])
def test_invalid_config_raises_its_code_naming_the_field(edit, code, field):
    d = edit(config_dict())
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(json.dumps(d).encode())
    assert (e.value.code, e.value.field) == (code, field), e.value
    assert len(e.value.message) > 10


@pytest.mark.parametrize("text", [b"{'task': 'mnist1d',", b"", b"\xff\xfe not utf8", b"[1, 2]",
                                  b'{"format": NaN}'])
def test_config_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(text)
    assert e.value.code in ("config_not_json", "wrong_type")
    assert e.value.field == "config.json"


def test_unknown_task_is_only_a_name_check_at_parse_time():
    cfg = tformat.TicketConfig.from_json(config_dict(task="imagenet-22k"))
    from ticketclient.errors import UnknownTaskError

    with pytest.raises(UnknownTaskError, match="mnist1d"):
        cfg.resolve()


# --- tasks ----------------------------------------------------------------------------------------------


def test_task_registry_shapes_and_default_families_resolve():
    names = [t.name for t in tasks.all()]
    assert {"mnist1d", "digits", "mnist", "fashion-mnist", "cifar10"} <= set(names) and names[0] == "mnist1d"
    for info in tasks.all():
        arch = spec.resolve(info.default_architecture, info.input_shape, info.num_classes)
        assert arch.shapes[-1] == (info.num_classes,)
    assert tasks.get("mnist1d").input_shape == (40,)
    assert tasks.get("cifar10").sizes == {"train": 45_000, "val": 5_000, "test": 10_000}


def test_unknown_task_lists_known_names():
    from ticketclient.errors import UnknownTaskError

    with pytest.raises(UnknownTaskError) as e:
        tasks.get("imagenet")
    assert "mnist1d" in str(e.value) and "cifar10" in str(e.value)


# --- torch-free -----------------------------------------------------------------------------------------


def test_core_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "from ticketclient import spec, format, validation, tasks, constants, errors\n"
        "a = spec.resolve({'family': 'resnet-20'}, (3, 32, 32), 10)\n"
        "validation.Limits.from_env()\n"
        "bad = [m for m in ('torch', 'torchvision', 'tensorflow', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_validating_a_bundle_does_not_import_torch(tmp_path: Path):
    build_bundle().save(tmp_path)
    code = (
        "import sys\n"
        "from ticketclient import validation\n"
        f"v = validation.validate_folder({str(tmp_path)!r})\n"
        "assert 'torch' not in sys.modules\n"
        "print(round(v.density, 6))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) > 0


def test_eval_points_count_iteration_zero_every_eval_and_the_end():
    recipe = spec.FAMILIES["mlp"].default_recipe
    from dataclasses import replace

    assert replace(recipe, iterations=400, eval_every=100).eval_points == 5   # 0, 100, 200, 300, 400
    assert replace(recipe, iterations=450, eval_every=100).eval_points == 6   # ... and 450
    assert replace(recipe, iterations=50, eval_every=100).eval_points == 2    # 0 and 50


def test_null_means_absent_for_optional_fields_but_not_for_required_ones():
    d = config_dict()
    d["recipe"]["momentum"] = None
    d["provenance"]["method"] = None
    d["claims"]["val_accuracy"] = None
    cfg = tformat.TicketConfig.from_json(d)
    assert cfg.recipe.momentum == 0.0 and cfg.provenance.method == "imp" and cfg.claims.val_accuracy is None
    d["recipe"]["lr"] = None
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(d)
    assert (e.value.code, e.value.field) == ("wrong_type", "recipe.lr")


# --- hostile config text (issue 12): every refusal is a BundleError, never another exception -------------


def test_integer_literal_beyond_the_digit_limit_is_a_bundle_error():
    text = json.dumps(config_dict()).replace('"rounds": 3', '"rounds": ' + "9" * 5000)
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(text.encode())
    assert e.value.code == "config_not_json" and "integer" in e.value.message


def test_duplicate_json_keys_are_refused():
    text = json.dumps(config_dict())[:-1] + ', "task": "cifar10"}'
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(text.encode())
    assert e.value.code == "duplicate_key" and e.value.field == "task"
    nested = json.dumps(config_dict()).replace('"lr":', '"lr": 0.5, "lr":')
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(nested)
    assert e.value.code == "duplicate_key" and e.value.field == "recipe.lr"


@pytest.mark.parametrize("where", ["name", "description", "provenance.notes", "provenance.library",
                                   "provenance.rates key", "provenance.method"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\x1b[31m", "\x7f", "\udfff"])
def test_control_characters_and_lone_surrogates_are_refused_in_every_string(where, bad):
    cfg = config_dict(name="lenet-ok", description="fine")
    if where == "provenance.rates key":
        cfg["provenance"]["rates"] = {f"fc{bad}": 0.2}
    elif where.startswith("provenance."):
        cfg["provenance"][where.split(".")[1]] = f"x{bad}y"
    else:
        cfg[where] = f"x{bad}y"
    text = json.dumps(cfg)  # ensure_ascii: the surrogate travels as a \ud800 escape
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(text.encode())
    assert e.value.code == "bad_character", e.value
    assert "character" in e.value.message


def test_newlines_and_tabs_are_fine_in_free_text():
    cfg = config_dict(description="line one\nline two\ttabbed")
    cfg["provenance"]["notes"] = "a\r\nb"
    parsed = tformat.TicketConfig.from_json(json.dumps(cfg))
    assert parsed.description == "line one\nline two\ttabbed"


@pytest.mark.parametrize("name", ["lenet\n", "../../etc/passwd", "a/b", "x\\y", "Lenet", " lenet", "lenet\t",
                                  "..", "a..b", "a--b", "é-lenet", "-ab"])
def test_the_config_name_suggestion_must_be_a_canonical_ticket_name(name):
    with pytest.raises(BundleError) as e:
        tformat.TicketConfig.from_json(json.dumps(config_dict(name=name)))
    assert e.value.field == "name" and e.value.code in ("bad_value", "bad_character")


def test_deep_nesting_is_a_bundle_error():
    cfg = json.dumps(config_dict())[:-1] + ', "description": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(BundleError):
        tformat.TicketConfig.from_json(cfg)


def test_duplicate_tensor_keys_in_a_safetensors_header_are_refused():
    good = tformat.save_safetensors({"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}, {})
    (n,) = struct.unpack("<Q", good[:8])
    header = good[8:8 + n].decode()
    dup = header.replace('"b":', '"a":')
    data = struct.pack("<Q", len(dup)) + dup.encode() + good[8 + n:]
    with pytest.raises(BundleError) as e:
        tformat.read_header(data, "init")
    assert e.value.code == "duplicate_key"


def test_a_huge_integer_in_a_safetensors_header_is_a_bundle_error():
    header = '{"a": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 8]}}'
    data = struct.pack("<Q", len(header)) + header.encode() + b"\0" * 8
    with pytest.raises(BundleError):
        tformat.read_header(data, "init")
