"""Dataset loaders: fixed splits, dtypes, normalisation, and the production formats read from real files.

The MNIST / Fashion-MNIST / CIFAR-10 loaders are exercised on small files written here in the exact
published formats (gzipped IDX, binary CIFAR records in cifar-10-binary.tar.gz), and the download path
against a local HTTP server serving them.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ticketclient import data
from ticketclient.errors import DatasetUnavailableError, UnknownTaskError


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
def test_idx_loader_reads_gz_files_from_root(tmp_path, task, mean, std):
    arrays = _write_idx_set(tmp_path / task)
    d = data.load(task, root=tmp_path / task, download=False)
    assert d.sizes == {"train": 10, "val": 5000, "test": 7}
    assert d.input_shape == (1, 28, 28) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    expected = (arrays["train_images"][:10, None].astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(d.x_train, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(d.y_val, arrays["train_labels"][10:])
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])


def test_idx_loader_uses_the_data_home_and_unpacked_files(data_cache):
    folder = data_cache / "mnist"
    arrays = _write_idx_set(folder)
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
    assert d.sizes == {"train": 5, "val": 5000, "test": 9}
    assert d.input_shape == (3, 32, 32)
    images, labels = batches["data_batch_1.bin"]
    mean = np.array(data.CIFAR_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(data.CIFAR_STD, dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(d.x_train, (images[:5].astype(np.float32) / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d.y_train, labels[:5])
    np.testing.assert_array_equal(d.y_val[-len(labels):], batches["data_batch_5.bin"][1])
    np.testing.assert_array_equal(d.y_test, batches[data.CIFAR_TEST_FILE][1])


def test_cifar10_reads_the_binary_archive_in_place(tmp_path):
    batches = _cifar_batches()
    files = {name: data.write_cifar_records(x, y) for name, (x, y) in batches.items()}
    data.write_cifar_archive(tmp_path / data.CIFAR_ARCHIVE, files)
    _check_cifar(data.load("cifar10", root=tmp_path, download=False), batches)


def test_cifar10_reads_an_extracted_folder(tmp_path):
    batches = _cifar_batches()
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


def test_download_into_the_cache_checks_md5(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    md5 = {name: hashlib.md5((served / name).read_bytes()).hexdigest() for name in data.IDX_FILES.values()}
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/unreachable/", url])
    monkeypatch.setitem(data.CHECKSUMS, "mnist", md5)
    d = data.load("mnist")
    assert d.sizes["train"] == 10
    assert sorted(p.name for p in (data_cache / "mnist").iterdir()) == sorted(data.IDX_FILES.values())


def test_download_with_wrong_checksum_is_discarded(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    monkeypatch.setitem(data.MIRRORS, "fashion-mnist", [url])  # the real published MD5s do not match
    with pytest.raises(DatasetUnavailableError, match="checksum mismatch"):
        data.load("fashion-mnist")
    assert not any((data_cache / "fashion-mnist").iterdir())


def test_unreachable_mirrors_raise_dataset_unavailable(data_cache, monkeypatch):
    monkeypatch.setitem(data.MIRRORS, "cifar10", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailableError, match="could not download cifar-10-binary.tar.gz"):
        data.load("cifar10")


def test_offline_mode_never_downloads(mirror, data_cache, monkeypatch):
    served, url = mirror
    _write_idx_set(served)
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    monkeypatch.setenv("TICKETHUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match="TICKETHUB_OFFLINE"):
        data.load("mnist")
    assert not (data_cache / "mnist").exists()
