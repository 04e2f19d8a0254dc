"""Every malformed submission gets a 4xx JSON naming what was wrong, and leaves no trace in DB or storage."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import numpy as np
import pytest
from django.core.files.storage import FileSystemStorage
from factories import BundleBytes, make_bundle
from safetensors.numpy import save as st_save

# Refusals made before anything is written run in the usual rolled-back test transaction; the ones that
# happen mid-write (taken name, storage outage) commit for real (transaction=True).
pytestmark = pytest.mark.django_db


# --- crafting bad files -------------------------------------------------------------------------------


def st_read(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors.numpy import load

    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return dict(load(data)), header.get("__metadata__", {})


def st_write(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    return st_save(tensors, metadata=metadata)


def edit_tensors(data: bytes, edit: Callable[[dict[str, np.ndarray]], None]) -> bytes:
    tensors, meta = st_read(data)
    edit(tensors)
    return st_write(tensors, meta)


def edit_config(data: bytes, edit: Callable[[dict], None]) -> bytes:
    cfg = json.loads(data)
    edit(cfg)
    return json.dumps(cfg).encode()


def first_prunable(b: BundleBytes) -> str:
    return sorted(st_read(b.mask)[0])[0]


def _shape_mismatch(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)

    def edit(t):
        t[name] = np.zeros((t[name].shape[0] + 1, *t[name].shape[1:]), dtype=np.float32)

    return b.replace(init=edit_tensors(b.init, edit))


def _mask_shape_mismatch(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)
    return b.replace(mask=edit_tensors(b.mask, lambda t: t.__setitem__(name, t[name][:, :-1].copy())))


def _mask_not_boolean(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)
    return b.replace(mask=edit_tensors(b.mask, lambda t: t.__setitem__(name, t[name].astype(np.float32))))


def _non_finite(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)

    def edit(t):
        t[name] = t[name].copy()
        t[name].flat[0] = np.nan

    return b.replace(init=edit_tensors(b.init, edit))


def _missing_tensor(b: BundleBytes) -> BundleBytes:
    name = sorted(st_read(b.init)[0])[-1]
    return b.replace(init=edit_tensors(b.init, lambda t: t.pop(name)))


def _extra_tensor(b: BundleBytes) -> BundleBytes:
    return b.replace(init=edit_tensors(b.init, lambda t: t.__setitem__("layers.99.weight", np.zeros(3, np.float32))))


def _not_safetensors(b: BundleBytes) -> BundleBytes:
    return b.replace(init=b"\x80\x04\x95 this is a pickle, not safetensors")


def _mask_not_safetensors(b: BundleBytes) -> BundleBytes:
    return b.replace(mask=b"")


def _config_not_json(b: BundleBytes) -> BundleBytes:
    return b.replace(config=b"{'task': 'mnist1d',")


def _config_unknown_key(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c.__setitem__("densty", 0.01)))


def _unknown_layer(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(
        b.config, lambda c: c.__setitem__("architecture", {"layers": [{"type": "lstm", "hidden_size": 8}]})))


def _unknown_family(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(
        b.config, lambda c: c.__setitem__("architecture", {"family": "transformer-xl", "args": {}})))


def _bad_recipe(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c["recipe"].__setitem__("lr", -1.0)))


def _accuracy_out_of_range(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c["claims"].__setitem__("test_accuracy", 64.0)))


def _wrong_format(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c.__setitem__("format", "lottery-ticket/v9")))


def _empty_layer(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)
    return b.replace(mask=edit_tensors(b.mask, lambda t: t.__setitem__(name, np.zeros_like(t[name]))))


BN_MLP = {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 16}, {"type": "batchnorm1d"},
                     {"type": "relu"}, {"type": "linear", "out_features": 10}]}


def _negative_variance(b: BundleBytes) -> BundleBytes:
    bn = make_bundle(architecture=BN_MLP)
    name = next(n for n in st_read(bn.init)[0] if n.endswith("running_var"))
    return bn.replace(init=edit_tensors(bn.init, lambda t: t.__setitem__(name, -np.ones_like(t[name]))))


def _init_dtype_float64(b: BundleBytes) -> BundleBytes:
    name = first_prunable(b)
    return b.replace(init=edit_tensors(b.init, lambda t: t.__setitem__(name, t[name].astype(np.float64))))


def _init_and_mask_swapped_metadata(b: BundleBytes) -> BundleBytes:
    tensors, meta = st_read(b.init)
    return b.replace(init=st_write(tensors, {**meta, "kind": "mask"}))


def _density_metadata_lies(b: BundleBytes) -> BundleBytes:
    tensors, meta = st_read(b.mask)
    return b.replace(mask=st_write(tensors, {**meta, "density": "0.001"}))


def _claimed_density_wrong(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c["claims"].__setitem__("density", 0.001)))


def _too_many_iterations(b: BundleBytes) -> BundleBytes:
    return b.replace(config=edit_config(b.config, lambda c: c["recipe"].__setitem__("iterations", 10_000_000)))


def _truncated_init(b: BundleBytes) -> BundleBytes:
    return b.replace(init=b.init[: len(b.init) // 2])


def _torch_zip_as_mask(b: BundleBytes) -> BundleBytes:
    return b.replace(mask=b"PK\x03\x04" + b"\x00" * 200)


# Each case: how to break a valid bundle, the core's error code, and the field it must name (a part is enough).
CASES = {
    "init_shape_mismatch": (_shape_mismatch, "shape_mismatch", "init"),
    "mask_shape_mismatch": (_mask_shape_mismatch, "shape_mismatch", "mask"),
    "mask_not_boolean": (_mask_not_boolean, "mask_not_boolean", "mask"),
    "non_finite": (_non_finite, "non_finite", "init"),
    "missing_tensor": (_missing_tensor, "missing_tensor", "init"),
    "extra_tensor": (_extra_tensor, "unexpected_tensor", "init"),
    "init_not_safetensors": (_not_safetensors, "pickle_file", "init"),
    "mask_empty_file": (_mask_not_safetensors, "empty_file", "mask"),
    "config_not_json": (_config_not_json, "config_not_json", "config"),
    "config_unknown_key": (_config_unknown_key, "unknown_field", "densty"),
    "unknown_layer": (_unknown_layer, "unknown_layer", "architecture"),
    "unknown_family": (_unknown_family, "unknown_family", "architecture"),
    "bad_recipe": (_bad_recipe, "out_of_range", "recipe.lr"),
    "accuracy_out_of_range": (_accuracy_out_of_range, "out_of_range", "claims.test_accuracy"),
    "wrong_format": (_wrong_format, "unsupported_format", "format"),
    "empty_layer": (_empty_layer, "empty_layer", "mask"),
    "negative_variance": (_negative_variance, "negative_variance", "running_var"),
    "init_dtype_float64": (_init_dtype_float64, "dtype_mismatch", "init"),
    "metadata_kind_swapped": (_init_and_mask_swapped_metadata, "metadata_mismatch", "init.safetensors:__metadata__.kind"),
    "metadata_density_lies": (_density_metadata_lies, "metadata_mismatch", "mask.safetensors:__metadata__.density"),
    "claimed_density_wrong": (_claimed_density_wrong, "claim_mismatch", "claims.density"),
    "too_many_iterations": (_too_many_iterations, "too_many_iterations", "recipe.iterations"),
    "truncated_init": (_truncated_init, "truncated", "init"),
    "torch_zip_as_mask": (_torch_zip_as_mask, "torch_zip", "mask"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_core_validation_failures_are_400_with_code_field_and_message(case, owner_client, submit, assert_no_trace):
    breaker, code, field = CASES[case]
    r = submit(owner_client, breaker(make_bundle()), name="broken-ticket")
    assert r.status_code == 400, r.content
    body = r.json()
    assert set(body) >= {"error", "field", "detail"}
    assert body["error"] == code, body
    assert field in (body["field"] or ""), body
    assert len(body["detail"]) > 10
    assert_no_trace()


@pytest.mark.parametrize("part", ["config", "init", "mask"])
def test_missing_part_is_400_naming_it(part, owner_client, assert_no_trace):
    form = make_bundle().form(name="partial")
    del form[part]
    r = owner_client.post("/api/v1/tickets/", form, format="multipart")
    assert r.status_code == 400
    assert r.json()["error"] == "missing_file" and r.json()["field"] == part
    assert_no_trace()


def test_oversized_upload_is_413_and_leaves_nothing(owner_client, submit, settings, assert_no_trace):
    bundle = make_bundle(hidden=[256, 256])
    settings.TICKETHUB_MAX_UPLOAD_BYTES = len(bundle.init) // 2
    r = submit(owner_client, bundle, name="too-big")
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
    assert_no_trace()


@pytest.fixture
def limits_env(monkeypatch):
    """Set TICKETHUB_MAX_* limits for one test (read through Limits.from_env, as in production)."""
    from registry.tickets.limits import clear_limits_cache

    def _set(**values: int) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"TICKETHUB_{key.upper()}", str(value))
        clear_limits_cache()

    yield _set
    monkeypatch.undo()
    clear_limits_cache()


# (mask.safetensors shares max_file_bytes with init.safetensors, which is always the larger of the two.)
@pytest.mark.parametrize(("part", "limit_name"), [("init", "max_file_bytes"), ("config", "max_config_bytes")])
def test_file_over_its_limit_is_413_naming_it(part, limit_name, owner_client, submit, limits_env, assert_no_trace):
    bundle = make_bundle(hidden=[256, 256])
    size = len(getattr(bundle, part))
    limits_env(**{limit_name: size - 1})
    r = submit(owner_client, bundle, name="over-limit")
    assert r.status_code == 413, r.content
    body = r.json()
    assert body["error"] == "file_too_large" and body["field"] == part
    assert f"{size:,} bytes" in body["detail"] and f"{size - 1:,} bytes" in body["detail"]
    assert_no_trace()


def test_request_limit_follows_the_file_limits(limits_env, settings):
    from registry.tickets.limits import MULTIPART_OVERHEAD_BYTES, max_request_bytes

    settings.TICKETHUB_MAX_UPLOAD_BYTES = None
    limits_env(max_file_bytes=1_000_000, max_config_bytes=10_000)
    assert max_request_bytes() == 2_010_000 + MULTIPART_OVERHEAD_BYTES


def test_core_size_check_is_the_last_line(owner_client, limits_env, assert_no_trace):
    """A config sent as a text field skips the file-part check; the core's own size check still refuses it."""
    bundle = make_bundle()
    limits_env(max_config_bytes=len(bundle.config) - 1)
    form = bundle.form(name="text-config")
    form["config"] = bundle.config.decode()
    r = owner_client.post("/api/v1/tickets/", form, format="multipart")
    assert r.status_code == 400 and r.json()["error"] == "file_too_large" and r.json()["field"] == "config.json"
    assert_no_trace()


@pytest.mark.django_db(transaction=True)
def test_taken_name_is_409(owner_client, other_client, submit, assert_no_trace):
    assert submit(owner_client, make_bundle(seed=0), name="popular-name").status_code == 201
    r = submit(other_client, make_bundle(seed=1), name="popular-name")
    assert r.status_code == 409
    assert r.json()["error"] == "name_taken" and r.json()["field"] == "name"
    assert "another user" in r.json()["detail"]
    assert_no_trace(tickets=1, revisions=1, blobs_expected=3)


def test_unknown_task_is_400(owner_client, submit, assert_no_trace):
    from registry.tickets.models import Task

    Task.objects.filter(name="mnist1d").delete()  # known to ticketclient, not offered by this registry
    r = submit(owner_client, make_bundle(task="mnist1d"), name="orphan-task")
    assert r.status_code == 400 and r.json()["error"] == "unknown_task" and r.json()["field"] == "task"
    assert "mnist1d" in r.json()["detail"]
    assert_no_trace()


def test_task_unknown_to_the_core_is_400(owner_client, submit, assert_no_trace):
    b = make_bundle()
    r = submit(owner_client, b.replace(config=edit_config(b.config, lambda c: c.__setitem__("task", "imagenet-22k"))),
               name="imagenet-ticket")
    assert r.status_code == 400 and "task" in (r.json()["field"] or "")
    assert_no_trace()


@pytest.mark.parametrize("name", ["ab", "Upper-Case", "double--dash", "trailing-", "a" * 97])
def test_invalid_name_is_400(name, owner_client, submit, assert_no_trace):
    r = submit(owner_client, make_bundle(), name=name)
    assert r.status_code == 400 and r.json()["error"] == "invalid_name" and r.json()["field"] == "name"
    assert_no_trace()


class FailingOnMaskStorage(FileSystemStorage):
    """A filesystem storage that fails when asked to store one particular blob (a storage outage)."""

    fail_sha256 = ""

    def _save(self, name, content):
        if self.fail_sha256 and name.endswith(self.fail_sha256):
            raise OSError("simulated storage outage")
        return super()._save(name, content)

    def exists(self, name):  # blobs.put_blob asks first (and writes filesystem blobs itself, atomically)
        if self.fail_sha256 and name.endswith(self.fail_sha256):
            raise OSError("simulated storage outage")
        return super().exists(name)


@pytest.mark.django_db(transaction=True)
def test_storage_failure_mid_submission_leaves_no_rows_and_no_blobs(owner_client, submit, settings,
                                                                   isolated_storage, assert_no_trace, broker):
    import hashlib

    bundle = make_bundle()
    FailingOnMaskStorage.fail_sha256 = hashlib.sha256(bundle.mask).hexdigest()
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": f"{__name__}.FailingOnMaskStorage", "OPTIONS": {"location": str(isolated_storage)}}}
    r = submit(owner_client, bundle, name="unlucky")
    assert r.status_code == 503 and r.json()["error"] == "storage_unavailable"
    assert_no_trace()
    assert broker.messages() == []
