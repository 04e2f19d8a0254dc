"""Content-addressed blobs through Django's storage API (filesystem here; S3 in test_s3_storage.py)."""

from __future__ import annotations

import hashlib

import pytest

from registry.tickets import blobs


def test_blob_lives_at_its_sha256_and_is_stored_once(isolated_storage):
    data = b"lottery ticket bytes"
    digest = hashlib.sha256(data).hexdigest()
    assert blobs.put_blob(data) == (digest, True)
    assert blobs.put_blob(data) == (digest, False)
    path = isolated_storage / "blobs" / "sha256" / digest[:2] / digest
    assert path.read_bytes() == data
    assert blobs.read_blob(digest) == data
    assert blobs.list_blobs() == [digest]


def test_blob_key_refuses_anything_but_a_sha256():
    with pytest.raises(ValueError, match="sha256"):
        blobs.blob_key("../../etc/passwd")
    with pytest.raises(ValueError):
        blobs.blob_key("A" * 64)
