"""ticketclient.pull against a live registry with real bundles: by name, by task, cache, offline, checksums,
withdrawal, typed errors, and the request counts of cold, warm, pinned and offline pulls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ticketclient
from safetensors.numpy import load as load_safetensors
from ticketclient.errors import (
    ChecksumError,
    OfflineError,
    TicketNotFoundError,
    TicketNotVerifiedError,
    UnauthorizedError,
)

from registry.tickets.models import Status, Ticket
from registry.tickets.services import withdraw_ticket


def hub_requests(log) -> list[tuple[str, str]]:
    return [(m, p) for m, p in log if p.startswith("/api/models") or "/resolve/" in p]


def test_pull_by_name_returns_a_ticket_with_checked_files(publish, hub_env) -> None:
    revision, bundle = publish("mlp-mnist1d-20pct", density=0.2, accuracy=0.61)
    ticket = ticketclient.pull("mlp-mnist1d-20pct", **hub_env)

    assert ticket.name == "mlp-mnist1d-20pct" and ticket.commit == revision.commit
    assert ticket.task == "mnist1d"
    assert ticket.status == "verified" and ticket.verified is True
    assert ticket.verified_accuracy == pytest.approx(0.61)
    assert ticket.density == pytest.approx(bundle.expected_density)
    assert ticket.verification["verified"] is True and ticket.verification["runs"][0]["role"] == "ticket"
    init = load_safetensors(bundle.init)
    mask = load_safetensors(bundle.mask)
    assert set(ticket.init) == set(init) and set(ticket.mask) == set(mask)
    for name in mask:
        np.testing.assert_array_equal(ticket.mask[name], mask[name])
        np.testing.assert_array_equal(ticket.init[name], init[name])
    files = {f.path: f.sha256 for f in revision.files.all()}
    assert {k: v for k, v in ticket.sha256.items() if k in files} == files
    assert set(ticket.sha256) == {*files, "verification.json"}
    # in the huggingface_hub cache layout
    assert ticket.path == hub_env["cache_dir"] / "models--mlp-mnist1d-20pct" / "snapshots" / revision.commit
    assert (hub_env["cache_dir"] / "models--mlp-mnist1d-20pct" / "refs" / "main").read_text() == revision.commit
    assert Ticket.objects.get(name="mlp-mnist1d-20pct").downloads == 1


def test_request_counts_cold_warm_pinned_offline(publish, hub_env, request_log, capsys) -> None:
    revision, _ = publish("mlp-mnist1d-20pct")
    counts: dict[str, int] = {}

    request_log.clear()
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    counts["cold"] = len(hub_requests(request_log))
    cold_gets = [p for m, p in hub_requests(request_log) if m == "GET" and "/resolve/" in p]
    assert [m for m, _ in hub_requests(request_log)] == ["GET"] * 5  # no HEAD

    request_log.clear()
    warm = ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    counts["warm"] = len(hub_requests(request_log))
    assert hub_requests(request_log) == [("GET", "/api/models/mlp-mnist1d-20pct/revision/main")]
    assert warm.status == "verified"

    request_log.clear()
    pinned = ticketclient.pull("mlp-mnist1d-20pct", revision.commit, **hub_env)
    counts["pinned"] = len(hub_requests(request_log))
    assert pinned.source == "cache" and pinned.commit == revision.commit

    request_log.clear()
    offline = ticketclient.pull("mlp-mnist1d-20pct", offline=True, **hub_env)
    counts["offline"] = len(hub_requests(request_log))
    assert offline.commit == revision.commit and offline.source == "cache"

    with capsys.disabled():
        print(f"\nrequest counts (4 files): {counts}")
    # cold: one metadata round trip, then one GET per file (no HEAD: the model info carries sha256 and size)
    assert counts == {"cold": 1 + 4, "warm": 1, "pinned": 0, "offline": 0}
    assert len(cold_gets) == 4
    assert Ticket.objects.get(name="mlp-mnist1d-20pct").downloads == 1  # only the cold pull downloaded


def test_pull_by_task_picks_the_best_verified_ticket_under_the_density(publish, hub_env) -> None:
    publish("dense-a", density=0.30, accuracy=0.70, seed=1)
    publish("sparse-b", density=0.05, accuracy=0.62, seed=2)
    publish("sparse-c", density=0.03, accuracy=0.62, seed=3)  # same accuracy, sparser: wins the tie
    publish("sparse-d", density=0.04, accuracy=0.55, seed=4)
    publish("pending-e", density=0.02, accuracy=0.99, seed=5, status=Status.PENDING)
    publish("rejected-f", density=0.02, accuracy=0.98, seed=6, status=Status.REJECTED)
    publish("withdrawn-g", density=0.02, accuracy=0.97, seed=7)
    withdraw_ticket(Ticket.objects.get(name="withdrawn-g"))
    publish("other-task", density=0.02, accuracy=0.99, seed=8, task="digits")

    assert ticketclient.pull(task="mnist1d", max_density=0.06, **hub_env).name == "sparse-c"
    assert ticketclient.pull(task="mnist1d", **hub_env).name == "dense-a"
    assert ticketclient.pull(task="mnist1d", max_density=0.045, **hub_env).name == "sparse-c"
    with pytest.raises(TicketNotFoundError):
        ticketclient.pull(task="mnist1d", max_density=0.01, **hub_env)

    # offline, the same rule over what the cache holds (dense-a and sparse-c were pulled above)
    assert ticketclient.pull(task="mnist1d", max_density=0.5, offline=True, **hub_env).name == "dense-a"
    assert ticketclient.pull(task="mnist1d", max_density=0.06, offline=True, **hub_env).name == "sparse-c"
    with pytest.raises(OfflineError):
        ticketclient.pull(task="mnist1d", max_density=0.01, offline=True, **hub_env)


def test_offline_pull_uses_the_cache_or_says_it_cannot(publish, hub_env, request_log) -> None:
    publish("mlp-mnist1d-20pct")
    with pytest.raises(OfflineError):
        ticketclient.pull("mlp-mnist1d-20pct", offline=True, **hub_env)
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    request_log.clear()
    ticket = ticketclient.pull("mlp-mnist1d-20pct", offline=True, **hub_env)
    assert ticket.status is None and ticket.verified is True  # unchecked status, cached verification record
    assert hub_requests(request_log) == []


def test_offline_mode_from_the_environment(publish, hub_env, request_log, monkeypatch) -> None:
    publish("mlp-mnist1d-20pct")
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    monkeypatch.setenv("TICKETHUB_OFFLINE", "1")
    request_log.clear()
    assert ticketclient.pull("mlp-mnist1d-20pct", **hub_env).source == "cache"
    assert hub_requests(request_log) == []


def test_checksum_failure_is_detected_and_the_bad_copy_dropped(publish, hub_env, isolated_storage) -> None:
    revision, bundle = publish("mlp-mnist1d-20pct")
    sha = revision.files.get(path="init.safetensors").sha256
    blob = Path(isolated_storage) / "blobs" / "sha256" / sha[:2] / sha
    original = blob.read_bytes()
    corrupt = bytearray(original)
    corrupt[-1] ^= 0xFF  # same size, one flipped byte at the end of the tensor data
    blob.write_bytes(bytes(corrupt))

    with pytest.raises(ChecksumError) as info:
        ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    assert "init.safetensors" in str(info.value) and sha in str(info.value)
    cached = list((hub_env["cache_dir"] / "models--mlp-mnist1d-20pct" / "blobs").glob("*"))
    assert sha not in [p.name for p in cached]  # not kept

    blob.write_bytes(original)  # the registry is repaired: the next pull succeeds
    assert ticketclient.pull("mlp-mnist1d-20pct", **hub_env).sha256["init.safetensors"] == sha


def test_a_cached_file_corrupted_locally_is_detected(publish, hub_env) -> None:
    revision, _ = publish("mlp-mnist1d-20pct")
    ticket = ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    local = (ticket.path / "mask.safetensors").resolve()
    data = bytearray(local.read_bytes())
    data[-1] ^= 0x01
    local.chmod(0o644)
    local.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        ticketclient.pull("mlp-mnist1d-20pct", revision.commit, **hub_env)


def test_a_ticket_withdrawn_after_it_was_cached_is_detected_online(publish, hub_env) -> None:
    revision, _ = publish("mlp-mnist1d-20pct")
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    withdraw_ticket(Ticket.objects.get(name="mlp-mnist1d-20pct"), reason="found to be a duplicate")
    with pytest.raises(TicketNotVerifiedError) as info:
        ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    assert info.value.status == "withdrawn" and "duplicate" in str(info.value)
    # asking explicitly still gives the files (audits, reproductions)
    again = ticketclient.pull("mlp-mnist1d-20pct", include_unpublished=True, **hub_env)
    assert again.commit == revision.commit and again.status == "withdrawn"


def test_typed_errors_not_found_not_verified_unauthorized(publish, hub_env, make_user, user_token,
                                                          request_log, monkeypatch) -> None:
    owner = make_user("owner")
    pending, _ = publish("mlp-pending", status=Status.PENDING, owner=owner)
    publish("mlp-rejected", status=Status.REJECTED, owner=owner, seed=1)
    with pytest.raises(TicketNotFoundError):
        ticketclient.pull("no-such-ticket", **hub_env)
    with pytest.raises(TicketNotFoundError):
        ticketclient.pull("mlp-pending", "0" * 40, **hub_env)
    with pytest.raises(TicketNotVerifiedError) as info:
        ticketclient.pull("mlp-pending", **hub_env)
    assert info.value.status == "pending"
    with pytest.raises(TicketNotVerifiedError) as info:
        ticketclient.pull("mlp-rejected", **hub_env)
    assert info.value.status == "rejected"
    with pytest.raises(UnauthorizedError):
        ticketclient.pull("mlp-pending", token="not-a-valid-token", **hub_env)
    with pytest.raises(UnauthorizedError):
        ticketclient.pull("mlp-pending", include_unpublished=True, **hub_env)  # anonymous
    with pytest.raises(UnauthorizedError):
        ticketclient.pull("mlp-pending", include_unpublished=True, token=user_token(make_user()), **hub_env)
    mine = ticketclient.pull("mlp-pending", include_unpublished=True, token=user_token(owner), **hub_env)
    assert mine.commit == pending.commit and mine.status == "pending" and mine.verification is None


def test_a_hugging_face_token_is_never_sent_to_the_registry(publish, hub_env, request_log, monkeypatch,
                                                            make_user, user_token) -> None:
    publish("mlp-mnist1d-20pct")
    monkeypatch.setenv("HF_TOKEN", "hf_users_private_token")
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    assert request_log and all(a is None for a in request_log.authorizations)
    token = user_token(make_user())
    request_log.clear()
    ticketclient.pull("mlp-mnist1d-20pct", token=token, **hub_env)
    assert set(request_log.authorizations) == {f"Bearer {token}"}
    monkeypatch.setenv("TICKETHUB_TOKEN", token)
    request_log.clear()
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    assert set(request_log.authorizations) == {f"Bearer {token}"}


def test_an_unreachable_registry_falls_back_to_the_cache(publish, hub_env) -> None:
    revision, _ = publish("mlp-mnist1d-20pct")
    down = {**hub_env, "endpoint": "http://127.0.0.1:9"}  # nothing listens on the discard port
    with pytest.raises(OfflineError):
        ticketclient.pull("mlp-mnist1d-20pct", **down)
    ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    stale = ticketclient.pull("mlp-mnist1d-20pct", **down)
    assert stale.commit == revision.commit and stale.source == "cache" and stale.status is None


def test_files_land_in_the_huggingface_hub_cache_layout(publish, hub_env) -> None:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    revision, bundle = publish("mlp-mnist1d-20pct")
    ticket = ticketclient.pull("mlp-mnist1d-20pct", **hub_env)
    cache = hub_env["cache_dir"]
    storage = cache / "models--mlp-mnist1d-20pct"
    for path, sha in ticket.sha256.items():
        link = storage / "snapshots" / revision.commit / path
        assert link.is_symlink() and link.resolve() == (storage / "blobs" / sha).resolve()
        assert try_to_load_from_cache("mlp-mnist1d-20pct", path, cache_dir=cache, revision=revision.commit) \
            == str(link)
        # huggingface_hub itself serves it from the cache, offline
        assert hf_hub_download("mlp-mnist1d-20pct", path, revision=revision.commit, cache_dir=cache,
                               local_files_only=True) == str(link)
    assert not list((storage / "blobs").glob("*.incomplete"))


def test_pull_by_task_follows_every_page_past_100_tickets(make_revision, registry_tasks, hub_env,
                                                          request_log) -> None:
    import itertools

    from ticketclient import hub

    files = {"config.json": b"{}", "init.safetensors": b"i", "mask.safetensors": b"m"}
    for k in range(250):
        make_revision(f"many-{k:03d}", files, density=0.05, verified_accuracy=0.5 + k / 1000)
    settings = hub.HubSettings.resolve(endpoint=hub_env["endpoint"], cache_dir=hub_env["cache_dir"])
    request_log.clear()
    # islice bounds the test: before the fix the client asked for page 1 again and again, forever
    listed = [m["id"] for m in itertools.islice(hub.list_models(settings, task="mnist1d"), 1000)]
    assert len(listed) == 250 and len(set(listed)) == 250
    assert listed[0] == "many-249"
    assert len([p for _, p in request_log if p == "/api/models"]) == 3  # pages of 100, 100, 50


def test_pull_by_task_picks_among_winning_tickets_unless_told_otherwise(publish, hub_env) -> None:
    publish("not-winning-best", density=0.05, accuracy=0.80, seed=1, winning=False)
    publish("winning-second", density=0.05, accuracy=0.70, seed=2)
    publish("rejected-third", density=0.05, accuracy=0.90, seed=3, status=Status.REJECTED)

    assert ticketclient.pull(task="mnist1d", **hub_env).name == "winning-second"
    assert ticketclient.pull(task="mnist1d", winning=None, **hub_env).name == "not-winning-best"
    assert ticketclient.pull(task="mnist1d", winning=False, **hub_env).name == "not-winning-best"
    # offline, the same rule over the cache (verification.json carries winning)
    assert ticketclient.pull(task="mnist1d", offline=True, **hub_env).name == "winning-second"
    assert ticketclient.pull(task="mnist1d", winning=None, offline=True, **hub_env).name == "not-winning-best"
    Ticket.objects.filter(name="winning-second").update(status=Status.WITHDRAWN)
    with pytest.raises(TicketNotFoundError, match="winning=None"):
        ticketclient.pull(task="mnist1d", **hub_env)
