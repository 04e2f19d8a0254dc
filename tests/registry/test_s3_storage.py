"""The S3 path: django-storages against a real S3-compatible server on loopback (moto in server mode)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from registry.tickets import blobs

BUCKET = "tickethub-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("moto_server exited during start-up") from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"moto_server did not answer on {url}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    """default_storage is S3 (a fresh bucket per test) for the duration of the test."""
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **credentials)
    bucket = s3.Bucket(BUCKET)
    bucket.create()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET, "endpoint_url": s3_endpoint, "region_name": "us-east-1",
                "access_key": "testing", "secret_key": "testing", "addressing_style": "path",
                "file_overwrite": True, "default_acl": None,
            },
        },
    }
    yield bucket
    bucket.objects.all().delete()
    bucket.delete()


def test_blobs_round_trip_through_s3(s3_storage):
    data = os.urandom(4096)
    digest = hashlib.sha256(data).hexdigest()
    assert blobs.put_blob(data) == (digest, True)
    assert blobs.put_blob(data) == (digest, False)
    keys = [o.key for o in s3_storage.objects.all()]
    assert keys == [f"blobs/sha256/{digest[:2]}/{digest}"]
    assert hashlib.sha256(blobs.read_blob(digest)).hexdigest() == digest
    assert blobs.list_blobs() == [digest]
    blobs.delete_blobs([digest])
    assert list(s3_storage.objects.all()) == []


@pytest.mark.django_db(transaction=True)
def test_submit_and_download_through_s3(s3_storage, owner_client, anon_client, make_bundle, submit):
    bundle = make_bundle(seed=3)
    r = submit(owner_client, bundle, name="stored-in-s3")
    assert r.status_code == 201, r.json()
    expected = {path: hashlib.sha256(data).hexdigest() for path, data in bundle.by_path().items()}
    stored = sorted(o.key for o in s3_storage.objects.all())
    assert stored == sorted(f"blobs/sha256/{h[:2]}/{h}" for h in expected.values())
    for f in r.json()["files"]:
        got = anon_client.get(f["url"])
        assert got.status_code == 200
        assert hashlib.sha256(b"".join(got.streaming_content)).hexdigest() == expected[f["path"]] == f["sha256"]


@pytest.mark.django_db(transaction=True)
def test_rejected_upload_leaves_nothing_in_s3(s3_storage, owner_client, other_client, make_bundle, submit):
    assert submit(owner_client, make_bundle(seed=1), name="s3-taken").status_code == 201
    before = sorted(o.key for o in s3_storage.objects.all())
    r = submit(other_client, make_bundle(seed=2), name="s3-taken")
    assert r.status_code == 409
    assert sorted(o.key for o in s3_storage.objects.all()) == before
