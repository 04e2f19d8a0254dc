"""HTTP requests (and wall time) of ticketclient.pull, side by side with huggingface_hub.snapshot_download.

    .venv/bin/python bench/bench_pull_requests.py                       # serves its own registry (SQLite)
    .venv/bin/python bench/bench_pull_requests.py --endpoint http://127.0.0.1:8000 --name lenet-mnist1d-3.6pct

Every request the client sends goes through huggingface_hub's shared HTTP client, so a request hook on it
counts them all (the metadata request and the file downloads). The baseline is huggingface_hub's own
``snapshot_download`` of the same repo from the same registry: it downloads the same files but checks no
sha256 and knows nothing of withdrawal. Scenarios, each on the cache the previous one left:

- cold: empty cache;  warm: everything cached, unpinned (``main``);  pinned: cached, by commit id;
- offline: cached, no network allowed (ticketclient ``offline=True``, huggingface_hub ``local_files_only``).

A second baseline is the floor of a cold pull: plain GETs of the same bytes on the same HTTP client (the
metadata request, then one GET per file the pull fetches), reading them into memory and nothing more.

The goals stated for the client: cold = 1 metadata round trip + one GET per file, within 1.3x of the plain
GETs; warm latest 1 request; pinned and offline 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]


class Counter:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def hook(self, request: Any) -> None:
        self.requests.append((request.method, request.url.path))


def install_counter() -> Counter:
    """Count every request huggingface_hub's shared client (and so ticketclient.pull) sends."""
    import httpx2
    from huggingface_hub.utils import _http, set_client_factory

    counter = Counter()

    def factory() -> httpx2.Client:
        return httpx2.Client(event_hooks={"request": [_http.hf_request_event_hook, counter.hook]},
                             follow_redirects=True, timeout=None)

    set_client_factory(factory)
    return counter


def measure(counter: Counter, fn: Callable[[], Any], repeats: int) -> tuple[int, float]:
    """(requests of one call, median wall seconds over ``repeats`` calls); the first call is counted."""
    times = []
    counts = []
    for _ in range(repeats):
        counter.requests.clear()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        counts.append(len(counter.requests))
    return counts[0], statistics.median(times)


def serve_own_registry(tmp: Path) -> tuple[str, str]:
    """A registry on SQLite in ``tmp`` with one published ticket; returns (endpoint, ticket name)."""
    os.environ.update({
        "TICKETHUB_VAR_DIR": str(tmp / "var"), "DATABASE_URL": f"sqlite:///{tmp / 'hub.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "registry.settings", "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    name = publish_random_ticket()

    from django.core.servers.basehttp import (
        ThreadedWSGIServer,
        WSGIRequestHandler,
        get_internal_wsgi_application,
    )

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(get_internal_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", name


def publish_random_ticket() -> str:
    """A LeNet-300-100 bundle on mnist1d with a random 5% mask, stored and marked verified (no training)."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from ticketclient import format as tformat
    from ticketclient import spec, tasks

    from registry.tickets import services

    info = tasks.get("mnist1d")
    architecture = {"family": "lenet-300-100", "args": {}}
    arch = spec.resolve(architecture, input_shape=tuple(info.input_shape), num_classes=info.num_classes)
    rng = np.random.default_rng(0)
    init = {n: (rng.standard_normal(t.shape) * 0.05).astype(np.float32) for n, t in arch.tensors.items()}
    mask = {n: rng.random(arch.tensors[n].shape) < 0.05 for n in arch.prunable}
    recipe = spec.FAMILIES["lenet-300-100"].default_recipe
    config = tformat.TicketConfig.from_json({"format": "lottery-ticket/v1", "task": "mnist1d",
                                             "architecture": architecture, "recipe": recipe.to_dict(),
                                             "claims": {"test_accuracy": 0.5}})
    cfg, init_b, mask_b = tformat.TicketBundle(config=config, init=init, mask=mask).to_bytes()
    user = get_user_model().objects.create_user(username="bench", password="bench-password-123")
    sub = services.submit_bundle(user=user, name="lenet-mnist1d-bench-5pct",
                                 upload=services.BundleUpload(config=cfg, init=init_b, mask=mask_b))
    services.set_revision_status(sub.revision.pk, "verified", verified_accuracy=0.5)
    return sub.ticket.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running registry (default: serve one on SQLite)")
    parser.add_argument("--name", help="ticket to pull (default: the first published one)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    if args.endpoint:
        endpoint, name = args.endpoint.rstrip("/"), args.name
    else:
        endpoint, name = serve_own_registry(tmp)
    counter = install_counter()

    import ticketclient
    from huggingface_hub import snapshot_download
    from ticketclient import hub

    settings = hub.HubSettings.resolve(endpoint=endpoint, cache_dir=tmp / "probe")
    if not name:
        name = next(hub.list_models(settings, limit=1))["id"]
    info = hub.model_info(settings, name)
    commit, files = info["sha"], [s["rfilename"] for s in info.get("siblings") or []]

    ours_cache, theirs_cache = tmp / "ours", tmp / "theirs"

    def ours(**kw: Any) -> Callable[[], Any]:
        return lambda: ticketclient.pull(name, endpoint=endpoint, cache_dir=ours_cache, token="", **kw)

    def theirs(**kw: Any) -> Callable[[], Any]:
        return lambda: snapshot_download(name, endpoint=endpoint, cache_dir=theirs_cache, token=False, **kw)

    pulled = [f for f in files if f in hub.PULLED_FILES]
    client = hub.get_session()

    def plain_gets() -> None:
        client.get(f"{endpoint}/api/models/{name}/revision/main").raise_for_status()
        for path in pulled:
            client.get(f"{endpoint}/{name}/resolve/{commit}/{path}").raise_for_status().read()

    colds = iter(range(10**6))

    def ours_cold() -> Any:
        return ticketclient.pull(name, endpoint=endpoint, cache_dir=tmp / f"cold-{next(colds)}", token="")

    theirs_colds = iter(range(10**6))

    def theirs_cold() -> Any:
        return snapshot_download(name, endpoint=endpoint, cache_dir=tmp / f"theirs-cold-{next(theirs_colds)}",
                                 token=False)

    scenarios = [
        ("cold", ours_cold, theirs_cold),
        ("warm (main)", ours(), theirs()),
        ("pinned (commit id)", ours(revision=commit), theirs(revision=commit)),
        ("offline", ours(offline=True), theirs(local_files_only=True)),
    ]
    ours()()  # fill the caches the warm, pinned and offline scenarios use
    theirs()()
    print(f"registry {endpoint}, ticket {name}@{commit[:12]} ({len(files)} files listed: {', '.join(files)}; "
          f"the pull fetches {len(pulled)}), median of {args.repeats} (cold: a fresh cache each time)")
    print(f"{'scenario':<20} {'ticketclient':>12} {'snapshot_dl':>12} {'ours ms':>9} {'theirs ms':>10} {'ratio':>7}")
    for label, mine, baseline in scenarios:
        n_ours, t_ours = measure(counter, mine, args.repeats)
        n_theirs, t_theirs = measure(counter, baseline, args.repeats)
        ratio = t_ours / t_theirs if t_theirs else float("nan")
        print(f"{label:<20} {n_ours:>12} {n_theirs:>12} {t_ours * 1e3:>9.1f} {t_theirs * 1e3:>10.1f} {ratio:>6.2f}x")
    n_plain, t_plain = measure(counter, plain_gets, args.repeats)
    n_cold, t_cold = measure(counter, ours_cold, args.repeats)
    print(f"\ncold pull vs plain GETs of the same bytes: requests {n_cold} vs {n_plain}, "
          f"{t_cold * 1e3:.1f} ms vs {t_plain * 1e3:.1f} ms: {t_cold / t_plain:.2f}x (goal <= 1.3x)")
    n_task, t_task = measure(counter, lambda: ticketclient.pull(task="mnist1d", winning=None, endpoint=endpoint,
                                                                cache_dir=ours_cache, token=""), args.repeats)
    print(f"{'warm by task':<20} {n_task:>12} {'-':>12} {t_task * 1e3:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
