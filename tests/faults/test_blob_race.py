"""Concurrent writers of the same content-addressed blob all succeed (finding 7: 1 of 128 identical uploads
got 503 when the filesystem store renamed the loser's file)."""

from __future__ import annotations

import threading

from registry.tickets import blobs


def test_it_stores_one_blob_for_128_concurrent_identical_writers(isolated_storage):
    data = b"the same init.safetensors uploaded by many users at once" * 4096
    barrier = threading.Barrier(128)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def write() -> None:
        barrier.wait()
        try:
            results.append(blobs.put_blob(data))
        except BaseException as e:  # noqa: BLE001 - every failure is counted
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(128)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 128 and len({digest for digest, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    digest = results[0][0]
    assert blobs.list_blobs() == [digest] and blobs.read_blob(digest) == data
    leftovers = [p.name for p in (isolated_storage / "blobs" / "sha256" / digest[:2]).iterdir()]
    assert leftovers == [digest], f"temporary files left behind: {leftovers}"


def test_a_missing_blob_reads_as_unavailable_a_transient_error(isolated_storage):
    import pytest

    from verifier.errors import TRANSIENT_ERRORS

    with pytest.raises(blobs.BlobUnavailable) as missing:
        blobs.read_blob("0" * 64)
    assert isinstance(missing.value, TRANSIENT_ERRORS)  # the verifier retries it with backoff
