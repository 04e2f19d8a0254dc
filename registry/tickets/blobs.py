"""Content-addressed file storage through Django's storage API (filesystem or S3).

A file's bytes live at ``blobs/sha256/<first two hex>/<sha256>``; the same bytes are stored once however
many revisions (or tickets) share them.

Concurrent writers of the same bytes are normal (two users uploading the same init): on the filesystem a
blob is written to a temporary file and published with ``link()``, which is atomic and refuses to replace,
so a reader never sees a partial blob and the writer who loses the race simply finds its content there
already (success, not an error). Reading a blob that the store cannot give back raises
:class:`BlobUnavailable` (a ``ConnectionError``: the verifier retries it with backoff).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobUnavailable(ConnectionError):
    """The store could not give back a blob (storage down, unreadable, or the blob is missing)."""

    def __init__(self, sha256: str, cause: BaseException) -> None:
        self.sha256 = sha256
        super().__init__(f"blob {sha256} is unavailable from storage: {type(cause).__name__}: {cause}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_key(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def put_blob(data: bytes, storage: Storage | None = None) -> tuple[str, bool]:
    """Store ``data`` under its sha256. Returns ``(sha256, created)``; ``created`` is False when present."""
    storage = storage or default_storage
    digest = sha256_hex(data)
    key = blob_key(digest)
    if storage.exists(key):
        return digest, False
    if isinstance(storage, FileSystemStorage):
        return digest, _put_file(Path(storage.path(key)), data)
    saved = storage.save(key, ContentFile(data))
    if saved != key:  # a concurrent writer stored the same key first: its content is ours (same sha256)
        storage.delete(saved)
        if storage.exists(key):
            return digest, False
        raise RuntimeError(f"storage saved blob {key} as {saved}; content-addressed keys must be kept")
    return digest, True


def _put_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to a temporary file beside ``path``, then publish it atomically; False if it was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:  # a concurrent writer published the same bytes first
            return False
        return True
    finally:
        os.unlink(tmp)


def open_blob(sha256: str, storage: Storage | None = None):
    return (storage or default_storage).open(blob_key(sha256), "rb")


def read_blob(sha256: str, storage: Storage | None = None) -> bytes:
    """The blob's bytes; :class:`BlobUnavailable` when the store cannot give them."""
    try:
        with open_blob(sha256, storage) as fh:
            return fh.read()
    except BlobUnavailable:
        raise
    except Exception as err:  # OSError on a filesystem, botocore's errors on S3
        raise BlobUnavailable(sha256, err) from err


def delete_blobs(digests: Iterable[str], storage: Storage | None = None) -> None:
    storage = storage or default_storage
    for digest in digests:
        storage.delete(blob_key(digest))


def list_blobs(storage: Storage | None = None) -> list[str]:
    """Every stored blob's sha256 (for tests and consistency checks; walks the whole store)."""
    storage = storage or default_storage
    digests: list[str] = []
    try:
        prefixes, _ = storage.listdir("blobs/sha256")
    except FileNotFoundError:
        return digests
    for prefix in prefixes:
        _, files = storage.listdir(f"blobs/sha256/{prefix}")
        digests.extend(f for f in files if _SHA256.match(f))
    return sorted(digests)
