"""Content-addressed file storage through Django's storage API (filesystem or S3).

A file's bytes live at ``blobs/sha256/<first two hex>/<sha256>``; the same bytes are stored once however
many revisions (or tickets) share them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    saved = storage.save(key, ContentFile(data))
    if saved != key:  # a storage that renames on collision would break content addressing
        storage.delete(saved)
        raise RuntimeError(f"storage saved blob {key} as {saved}; content-addressed keys must be kept")
    return digest, True


def open_blob(sha256: str, storage: Storage | None = None):
    return (storage or default_storage).open(blob_key(sha256), "rb")


def read_blob(sha256: str, storage: Storage | None = None) -> bytes:
    with open_blob(sha256, storage) as fh:
        return fh.read()


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
