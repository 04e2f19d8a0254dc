"""Dataset loaders: ``load(task) -> TaskData`` of numpy arrays with fixed, documented splits.

Every loader returns float32 inputs shaped as the task's ``input_shape`` and int64 labels, normalised
the same way every time, so a ticket trained here and retrained by the verifier sees identical data.

| task | source | train / val / test | normalisation |
| --- | --- | --- | --- |
| ``mnist1d`` | the ``mnist1d`` package's generator, default args (seed 42, 5,000 examples) | first 3,500 / last 500 of its 4,000 train / its 1,000 test | as generated (zero mean, unit std) |
| ``digits`` | ``sklearn.datasets.load_digits`` (1,797 8x8 images) | a fixed permutation (numpy seed 0): 1,197 / 300 / 300 | pixels / 16, then the train split's mean and std |
| ``mnist`` | the IDX files (``train-images-idx3-ubyte.gz`` ...) | first 55,000 / last 5,000 of the 60,000 train / 10,000 test | pixels / 255, mean 0.1307, std 0.3081 |
| ``fashion-mnist`` | the IDX files of Fashion-MNIST | 55,000 / 5,000 / 10,000 as MNIST | pixels / 255, mean 0.2860, std 0.3530 |
| ``cifar10`` | the *binary* version (``data_batch_1.bin`` ... ``test_batch.bin``) | first 45,000 / last 5,000 of the 50,000 train / 10,000 test | pixels / 255, per-channel mean and std |

The split sizes, input shapes and split descriptions are those of :mod:`ticketclient.tasks` (the one
record of them). Files live under ``root`` (an argument) or ``$TICKETHUB_DATA/<task>`` (default
``~/.cache/tickethub/datasets/<task>``, see :mod:`ticketclient.constants`). MNIST, Fashion-MNIST and CIFAR-10 are downloaded once from their
public mirrors into that folder when missing (checked against their published MD5); when that is not
possible :class:`~ticketclient.errors.DatasetUnavailableError` says where to put the files. The pickled
"python version" of CIFAR-10 is never read (nothing here unpickles). ``mnist1d`` is generated locally
and cached as ``mnist1d-v1.npz``; ``digits`` ships with scikit-learn.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import struct
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ticketclient import constants, tasks
from ticketclient.errors import DatasetUnavailableError, UnknownTaskError

#: Environment variable naming the dataset cache folder.
DATA_ENV = constants.DATA_ENV

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"
CIFAR_RECORD = 1 + 3 * 32 * 32

#: Public mirrors, tried in order (a file name is appended to each base URL).
MIRRORS: dict[str, list[str]] = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}
#: Published MD5 of every downloadable file; a download that differs is discarded.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {CIFAR_ARCHIVE: "c32a1d4ab5d03f1284b67883e8d87530"},
}
DOWNLOAD_TIMEOUT_S = 60

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class TaskData:
    """The three splits of a task: float32 inputs of the task's input shape, int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    def subset(self, train: int | None = None, val: int | None = None, test: int | None = None) -> TaskData:
        """The first ``train``/``val``/``test`` examples of each split (quick runs and tests)."""
        return TaskData(self.x_train[:train], self.y_train[:train], self.x_val[:val], self.y_val[:val],
                        self.x_test[:test], self.y_test[:test], task=self.task)


def data_home() -> Path:
    """The dataset cache folder: ``$TICKETHUB_DATA`` or ``~/.cache/tickethub/datasets``."""
    return constants.data_dir()


def load(task_name: str, *, root: str | Path | None = None, download: bool = True) -> TaskData:
    """The task's data with its fixed splits (see the module docstring for each task).

    ``root`` is the folder holding the task's files (default ``$TICKETHUB_DATA/<task>``); with
    ``download=False`` (or ``TICKETHUB_OFFLINE=1``) a missing file raises :class:`DatasetUnavailableError`
    instead of being fetched.
    """
    download = download and not constants.offline()
    info = tasks.get(task_name)  # UnknownTaskError lists the registered tasks
    loader = LOADERS.get(task_name)
    if loader is None:
        raise UnknownTaskError(f"no dataset loader for task {task_name!r} (loaders: {', '.join(sorted(LOADERS))})")
    folder = Path(root).expanduser() if root is not None else data_home() / task_name
    x_train, y_train, x_val, y_val, x_test, y_test = loader(folder, download)
    shape = tuple(info.input_shape)
    xs = [np.ascontiguousarray(x.reshape(len(x), *shape), dtype=np.float32) for x in (x_train, x_val, x_test)]
    ys = [np.ascontiguousarray(y, dtype=np.int64) for y in (y_train, y_val, y_test)]
    return TaskData(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], task=task_name)


Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# --- mnist1d ----------------------------------------------------------------------------------------------

MNIST1D_CACHE = "mnist1d-v1.npz"


def _load_mnist1d(folder: Path, download: bool) -> Splits:
    cache = folder / MNIST1D_CACHE
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            x, y, x_test, y_test = z["x"], z["y"], z["x_test"], z["y_test"]
    else:
        x, y, x_test, y_test = _generate_mnist1d()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{MNIST1D_CACHE}.{os.getpid()}.tmp.npz"
        np.savez(tmp, x=x, y=y, x_test=x_test, y_test=y_test)
        os.replace(tmp, cache)
    x, x_test = x.astype(np.float32), x_test.astype(np.float32)
    y, y_test = y.astype(np.int64), y_test.astype(np.int64)
    n = len(y) - tasks.get("mnist1d").val_size
    return x[:n], y[:n], x[n:], y[n:], x_test, y_test


def _generate_mnist1d() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mnist1d package's dataset with its default arguments; the global random state is restored."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # pragma: no cover - an install without the torch extra
        raise DatasetUnavailableError("mnist1d needs the mnist1d package: pip install 'ticketclient[torch]'") from e
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return np.asarray(d["x"]), np.asarray(d["y"]), np.asarray(d["x_test"]), np.asarray(d["y_test"])


# --- digits -----------------------------------------------------------------------------------------------

DIGITS_PERMUTATION_SEED = 0


def _load_digits(folder: Path, download: bool) -> Splits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(DIGITS_PERMUTATION_SEED).permutation(len(y))
    x, y = x[order], y[order]
    info = tasks.get("digits")
    n_train, n_val, n_test = info.train_size, info.val_size, info.test_size
    mean, std = x[:n_train].mean(), x[:n_train].std()
    x = ((x - mean) / std).astype(np.float32)
    a, b, c = n_train, n_train + n_val, n_train + n_val + n_test
    return x[:a], y[:a], x[a:b], y[a:b], x[b:c], y[b:c]


# --- MNIST and Fashion-MNIST (IDX) ------------------------------------------------------------------------



def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array of its declared shape (unsigned bytes only)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetUnavailableError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise DatasetUnavailableError(f"{path}: IDX element type 0x{dtype_code:02x} is not unsigned byte")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    count = int(np.prod(shape)) if shape else 0
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != count:
        raise DatasetUnavailableError(f"{path}: IDX header declares {shape} ({count} values) but holds {body.size}")
    return body.reshape(shape)


def _idx_loader(task: str, mean: float, std: float) -> Callable[[Path, bool], Splits]:
    def load_idx_task(folder: Path, download: bool) -> Splits:
        paths = {key: _ensure_file(task, folder, name, download) for key, name in IDX_FILES.items()}
        arrays = {key: read_idx(path) for key, path in paths.items()}
        x_all = _normalise_images(arrays["train_images"][:, None], mean, std)
        x_test = _normalise_images(arrays["test_images"][:, None], mean, std)
        y_all, y_test = arrays["train_labels"].astype(np.int64), arrays["test_labels"].astype(np.int64)
        _check_pairs(task, x_all, y_all, "train")
        _check_pairs(task, x_test, y_test, "test")
        n = len(y_all) - tasks.get(task).val_size
        if n <= 0:
            raise DatasetUnavailableError(f"{task}: the train files hold {len(y_all)} examples, not more than the "
                                          f"{tasks.get(task).val_size} of the validation split")
        return x_all[:n], y_all[:n], x_all[n:], y_all[n:], x_test, y_test

    return load_idx_task


def _normalise_images(pixels: np.ndarray, mean: float | tuple[float, ...], std: float | tuple[float, ...]) -> np.ndarray:
    """uint8 [N, C, H, W] -> float32 ((x / 255) - mean) / std, per channel when mean is a tuple."""
    x = pixels.astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return (x - m) / s


def _check_pairs(task: str, x: np.ndarray, y: np.ndarray, split: str) -> None:
    if len(x) != len(y):
        raise DatasetUnavailableError(f"{task}: {len(x)} {split} images but {len(y)} {split} labels")


# --- CIFAR-10 (binary version) ----------------------------------------------------------------------------



def read_cifar_records(raw: bytes, name: str = "CIFAR-10 batch") -> tuple[np.ndarray, np.ndarray]:
    """One binary CIFAR-10 batch: records of 1 label byte + 3,072 pixel bytes (R, G, B planes of 32x32)."""
    if len(raw) % CIFAR_RECORD:
        raise DatasetUnavailableError(f"{name}: {len(raw)} bytes is not a whole number of {CIFAR_RECORD}-byte records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def _read_cifar_files(folder: Path, download: bool) -> dict[str, bytes]:
    """The six batch files' bytes, from an extracted folder or from the archive (read in place)."""
    names = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
    for candidate in (folder / CIFAR_FOLDER, folder):
        if all((candidate / n).is_file() for n in names):
            return {n: (candidate / n).read_bytes() for n in names}
    archive = _ensure_file("cifar10", folder, CIFAR_ARCHIVE, download)
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[base] = handle.read()
    except (tarfile.TarError, OSError) as e:
        raise DatasetUnavailableError(f"{archive} is not a readable cifar-10-binary.tar.gz: {e}") from e
    missing = [n for n in names if n not in out]
    if missing:
        raise DatasetUnavailableError(f"{archive} lacks {', '.join(missing)} (is it the binary version?)")
    return out


def _load_cifar10(folder: Path, download: bool) -> Splits:
    files = _read_cifar_files(folder, download)
    parts = [read_cifar_records(files[n], n) for n in CIFAR_TRAIN_FILES]
    x_all = _normalise_images(np.concatenate([p[0] for p in parts]), CIFAR_MEAN, CIFAR_STD)
    y_all = np.concatenate([p[1] for p in parts])
    x_test_raw, y_test = read_cifar_records(files[CIFAR_TEST_FILE], CIFAR_TEST_FILE)
    x_test = _normalise_images(x_test_raw, CIFAR_MEAN, CIFAR_STD)
    n = len(y_all) - tasks.get("cifar10").val_size
    if n <= 0:
        raise DatasetUnavailableError(f"cifar10: the train batches hold {len(y_all)} examples, not more than the "
                                      f"{tasks.get('cifar10').val_size} of the validation split")
    return x_all[:n], y_all[:n], x_all[n:], y_all[n:], x_test, y_test


# --- files and downloads ----------------------------------------------------------------------------------


def _ensure_file(task: str, folder: Path, name: str, download: bool) -> Path:
    """``folder/name``, downloaded from the task's mirrors first when missing and ``download`` is on."""
    path = folder / name
    if path.is_file():
        return path
    unpacked = folder / name.removesuffix(".gz")
    if name.endswith(".gz") and unpacked.is_file():
        return unpacked
    where = f"put {name} in {folder} (or pass root=, or set {DATA_ENV})"
    if not download:
        raise DatasetUnavailableError(f"{task}: {path} is missing and downloads are off (download=False or "
                                      f"{constants.OFFLINE_ENV}); {where}")
    errors = []
    for base in MIRRORS.get(task, []):
        try:
            _download(base + name, path, CHECKSUMS.get(task, {}).get(name))
            return path
        except (OSError, urllib.error.URLError, ValueError) as e:
            errors.append(f"{base}{name}: {e}")
    raise DatasetUnavailableError(f"{task}: could not download {name} ({'; '.join(errors) or 'no mirror'}); {where}")


def _download(url: str, path: Path, md5: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, tmp.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch: md5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz); the inverse of read_idx."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def write_cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """uint8 images [N, 3, 32, 32] and labels as binary CIFAR-10 records; the inverse of read_cifar_records."""
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(labels), -1)
    return np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], images], axis=1).tobytes()


def write_cifar_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A cifar-10-binary.tar.gz holding ``files`` under cifar-10-batches-bin/ (tests and tools)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{CIFAR_FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


LOADERS: dict[str, Callable[[Path, bool], Splits]] = {
    "mnist1d": _load_mnist1d,
    "digits": _load_digits,
    "mnist": _idx_loader("mnist", MNIST_MEAN, MNIST_STD),
    "fashion-mnist": _idx_loader("fashion-mnist", FASHION_MEAN, FASHION_STD),
    "cifar10": _load_cifar10,
}

__all__ = ["TaskData", "load", "data_home", "read_idx", "write_idx", "read_cifar_records", "write_cifar_records",
           "write_cifar_archive", "LOADERS", "MIRRORS", "CHECKSUMS"]
