"""The registry speaks the Hub read protocol: huggingface_hub itself downloads, caches and lists tickets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from registry.tickets.models import Status, Ticket  # noqa: E402
from registry.tickets.services import withdraw_ticket  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

FILES = {"config.json": b'{"task": "mnist1d"}', "init.safetensors": b"init-bytes" * 50, "mask.safetensors": b"mask" * 30}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_resolve_headers_carry_commit_and_sha256(make_revision, client) -> None:
    revision = make_revision("lenet-mnist-3.6pct", FILES)
    head = client.head("/lenet-mnist-3.6pct/resolve/main/init.safetensors")
    assert head.status_code == 200
    assert head["X-Repo-Commit"] == revision.commit
    assert head["ETag"] == f'"{sha(FILES["init.safetensors"])}"'
    assert int(head["Content-Length"]) == len(FILES["init.safetensors"])
    get = client.get(f"/lenet-mnist-3.6pct/resolve/{revision.commit}/init.safetensors")
    assert b"".join(get.streaming_content) == FILES["init.safetensors"]
    assert get["X-Repo-Commit"] == revision.commit


def test_hf_hub_download_caches_by_sha256_and_counts_real_downloads(make_revision, live_server, tmp_path: Path,
                                                                    request_log) -> None:
    revision = make_revision("lenet-mnist-3.6pct", FILES)
    kwargs = {"endpoint": live_server.url, "token": False, "cache_dir": tmp_path / "cache"}
    path = hf_hub_download("lenet-mnist-3.6pct", "config.json", **kwargs)
    assert Path(path).read_bytes() == FILES["config.json"]
    assert Path(path).resolve().name == sha(FILES["config.json"])  # blob named by our ETag
    assert [m for m, _ in request_log] == ["HEAD", "GET"]
    assert Ticket.objects.get(name="lenet-mnist-3.6pct").downloads == 1

    request_log.clear()
    hf_hub_download("lenet-mnist-3.6pct", "config.json", revision=revision.commit, **kwargs)  # pinned, cached
    hf_hub_download("lenet-mnist-3.6pct", "config.json", **kwargs)  # main: one HEAD, no GET
    assert [m for m, _ in request_log] == ["HEAD"]
    assert Ticket.objects.get(name="lenet-mnist-3.6pct").downloads == 1  # HEADs are not downloads


def test_model_info_tree_listing_and_snapshot(make_revision, live_server, tmp_path: Path) -> None:
    revision = make_revision("lenet-mnist-3.6pct", FILES, density=0.036, verified_accuracy=0.95)
    make_revision("conv-cifar-10pct", FILES, task="cifar10", density=0.1)
    make_revision("pending-one", FILES, status=Status.PENDING)
    api = HfApi(endpoint=live_server.url, token=False)

    info = api.model_info("lenet-mnist-3.6pct")
    assert info.sha == revision.commit
    assert {s.rfilename: s.lfs.sha256 for s in info.siblings} == {p: sha(d) for p, d in FILES.items()}
    assert info.ticket["density"] == 0.036 and info.ticket["task"] == "mnist1d" and info.ticket["published"]
    assert api.model_info("lenet-mnist-3.6pct", revision=revision.commit).sha == revision.commit

    assert sorted(api.list_repo_files("lenet-mnist-3.6pct")) == sorted(FILES)
    api.verify_repo_checksums  # noqa: B018 - exists in this version; the tree carries lfs.oid = sha256
    tree = {e.path: e.lfs.sha256 for e in api.list_repo_tree("lenet-mnist-3.6pct", revision=revision.commit)}
    assert tree == {p: sha(d) for p, d in FILES.items()}

    names = [m.id for m in api.list_models()]
    assert sorted(names) == ["conv-cifar-10pct", "lenet-mnist-3.6pct"]  # published only
    assert [m.id for m in api.list_models(filter="task:mnist1d")] == ["lenet-mnist-3.6pct"]
    assert [m.id for m in api.list_models(search="conv")] == ["conv-cifar-10pct"]
    assert [m["id"] for m in _get(live_server.url + "/api/models?max_density=0.05")] == ["lenet-mnist-3.6pct"]
    # pagination through the Link header
    assert len(list(api.list_models(limit=1))) == 1
    assert sorted(m["id"] for m in _get_all(live_server.url + "/api/models?limit=1")) == sorted(names)

    folder = snapshot_download("lenet-mnist-3.6pct", endpoint=live_server.url, token=False,
                               cache_dir=tmp_path / "cache")
    assert {p.name: p.read_bytes() for p in Path(folder).iterdir()} == FILES


def _get(url: str):
    import requests

    response = requests.get(url)
    response.raise_for_status()
    return response.json()


def _get_all(url: str) -> list:
    import requests

    items: list = []
    while url:
        response = requests.get(url)
        response.raise_for_status()
        items += response.json()
        url = response.links.get("next", {}).get("url")
    return items


def test_errors_use_the_hub_error_codes(make_revision, live_server, tmp_path: Path) -> None:
    make_revision("lenet-mnist-3.6pct", FILES)
    make_revision("pending-one", FILES, status=Status.PENDING)
    kwargs = {"endpoint": live_server.url, "token": False, "cache_dir": tmp_path / "cache"}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("no-such-ticket", "config.json", **kwargs)
    with pytest.raises(RevisionNotFoundError) as info:
        hf_hub_download("pending-one", "config.json", **kwargs)
    assert info.value.response.headers["X-Ticket-Status"] == "pending"
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("lenet-mnist-3.6pct", "config.json", revision="0" * 40, **kwargs)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("lenet-mnist-3.6pct", "weights.bin", **kwargs)
    with pytest.raises(HfHubHTTPError) as info:
        HfApi(endpoint=live_server.url, token="not-a-registry-token").model_info("lenet-mnist-3.6pct")
    assert info.value.response.status_code == 401


def test_withdrawal_reaches_a_warm_cache(make_revision, live_server, tmp_path: Path) -> None:
    make_revision("lenet-mnist-3.6pct", FILES)
    kwargs = {"endpoint": live_server.url, "token": False, "cache_dir": tmp_path / "cache"}
    hf_hub_download("lenet-mnist-3.6pct", "config.json", **kwargs)
    withdraw_ticket(Ticket.objects.get(name="lenet-mnist-3.6pct"), reason="duplicate of another ticket")
    with pytest.raises(RevisionNotFoundError) as info:
        hf_hub_download("lenet-mnist-3.6pct", "config.json", **kwargs)  # not silently served from the cache
    assert info.value.response.headers["X-Ticket-Status"] == "withdrawn"
    assert "duplicate of another ticket" in info.value.response.headers["X-Error-Message"]


def test_unpublished_revisions_only_for_their_owner_when_asked(make_revision, make_user, user_token,
                                                               live_server) -> None:
    owner, other = make_user("owner"), make_user("other")
    revision = make_revision("pending-one", FILES, status=Status.PENDING, owner=owner)
    include = {"X-Ticket-Include-Unpublished": "1"}
    url = f"{live_server.url}/api/models/pending-one"
    import requests

    assert requests.get(url).status_code == 404
    assert requests.get(url, headers=include).status_code == 401
    forbidden = requests.get(url, headers={**include, "Authorization": f"Bearer {user_token(other)}"})
    assert forbidden.status_code == 403
    mine = requests.get(url, headers={**include, "Authorization": f"Bearer {user_token(owner)}"})
    assert mine.status_code == 200 and mine.json()["sha"] == revision.commit
    assert mine.json()["ticket"]["published"] is False


def test_listing_makes_a_bounded_number_of_queries(publish, client, django_assert_max_num_queries) -> None:
    for i in range(6):
        publish(f"mlp-listed-{i}", seed=i, accuracy=0.5 + i / 100)
    with django_assert_max_num_queries(8):
        response = client.get("/api/models?filter=task:mnist1d&sort=verified_accuracy")
    assert response.status_code == 200
    listed = response.json()
    assert [m["id"] for m in listed] == [f"mlp-listed-{i}" for i in reversed(range(6))]
    assert all("verification.json" in {s["rfilename"] for s in m["siblings"]} for m in listed)
