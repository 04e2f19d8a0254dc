"""Pulling tickets over the Hugging Face Hub read protocol, with huggingface_hub's download and cache.

The registry serves every ticket like a model repo (``config.json``, ``init.safetensors``,
``mask.safetensors`` and a generated ``verification.json``), so this module does no HTTP caching of its
own: files land in huggingface_hub's standard cache layout (``<cache>/models--<name>/{blobs,snapshots,refs}``,
blobs named by sha256 as ``hf_hub_download`` names them), so ``try_to_load_from_cache`` and huggingface_hub
itself serve pinned or offline pulls from it.

What this module adds on top:

- one metadata request per unpinned pull (``/api/models/<name>/revision/main``) that resolves ``main`` to a
  commit id and tells whether the ticket is still published; files are then fetched by commit id, so a
  warm cache makes no other request, and a withdrawn ticket is detected even when its files are cached;
- the sha256 of every file checked against the registry's record (the model info's ``lfs.sha256``, which is
  also the ETag huggingface_hub names the cache blob after) on every pull, cached or not; a mismatch
  removes the bad copy and raises :class:`~ticketclient.errors.ChecksumError`;
- typed errors (:mod:`ticketclient.errors`) instead of huggingface_hub's;
- our own endpoint and token (``TICKETHUB_*`` variables, see :mod:`ticketclient.constants`): a user's
  Hugging Face token is never sent to the registry (``token=False`` when we have none).

Request counts (3 bundle files + verification.json): cold pull by name 1 + 4 GETs = 5 (the model info
carries every file's sha256 and size, so no HEAD precedes a GET); warm pull by name 1; pull pinned to a
cached commit id 0; offline 0. A pull pinned to a commit id makes no
request when cached, so it does not re-check publication; pull by name (or ``revision=None``) does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx2  # noqa: E402  (huggingface_hub's HTTP client)
from huggingface_hub import constants as hf_constants  # noqa: E402
from huggingface_hub import try_to_load_from_cache  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name  # noqa: E402
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status  # noqa: E402

from ticketclient import (  # noqa: E402, F401  (PICK_RULE: the rule pick_best applies)
    PICK_RULE,
    __version__,
    api,
    constants,
)
from ticketclient import format as tformat  # noqa: E402
from ticketclient.constants import COMMIT_RE  # noqa: E402
from ticketclient.errors import (  # noqa: E402
    ChecksumError,
    HubError,
    OfflineError,
    TicketError,
    TicketNotFoundError,
    TicketNotVerifiedError,
    UnauthorizedError,
)

# We never want the library's telemetry request to huggingface.co from a ticket pull.
hf_constants.HF_HUB_DISABLE_TELEMETRY = True

logger = logging.getLogger("ticketclient.hub")

BUNDLE_FILES = tformat.BUNDLE_FILES
VERIFICATION_FILE = "verification.json"
#: What a pull fetches: the bundle and the verification record.
PULLED_FILES = (*BUNDLE_FILES, VERIFICATION_FILE)
INCLUDE_UNPUBLISHED_HEADER = "X-Ticket-Include-Unpublished"
#: The ref an unpublished (owner's) pull records, so that it never stands in for ``main`` offline.
UNPUBLISHED_REF = "unpublished"
_COMMIT = COMMIT_RE
_TIMEOUT = 30.0


# --- settings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSettings:
    """Where and how to talk to the registry. Arguments win over environment variables."""

    endpoint: str
    token: str | None
    cache_dir: Path
    offline: bool

    @classmethod
    def resolve(cls, endpoint: str | None = None, token: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                offline: bool | None = None) -> HubSettings:
        endpoint = (endpoint or constants.endpoint()).rstrip("/")
        token = token if token is not None else constants.token()
        cache = Path(cache_dir) if cache_dir is not None else constants.cache_dir()
        if offline is None:
            offline = constants.offline() or hf_constants.is_offline_mode()
        return cls(endpoint=endpoint, token=token or None, cache_dir=Path(cache).expanduser(), offline=bool(offline))

    def headers(self, *, include_unpublished: bool = False) -> dict[str, str]:
        extra = {INCLUDE_UNPUBLISHED_HEADER: "1"} if include_unpublished else None
        # token=False: never fall back to the user's Hugging Face token for our registry.
        return build_hf_headers(token=self.token or False, library_name="ticketclient",
                                library_version=__version__, headers=extra)


# --- errors -------------------------------------------------------------------------------------------


def _ticket_status(err: HfHubHTTPError) -> str | None:
    response = getattr(err, "response", None)
    return response.headers.get("X-Ticket-Status") if response is not None else None


def _server_message(err: HfHubHTTPError) -> str:
    response = getattr(err, "response", None)
    if response is None:
        return str(err)
    message = response.headers.get("X-Error-Message")
    if message:
        return str(message)
    try:
        return str(response.json().get("detail") or err)
    except Exception:  # noqa: BLE001 - any body
        return str(err)


def not_verified(message: str, status: str | None) -> TicketNotVerifiedError:
    error = TicketNotVerifiedError(message)
    error.status = status  # type: ignore[attr-defined]
    return error


def translate(err: Exception, *, name: str, revision: str | None, endpoint: str) -> TicketError:
    """huggingface_hub's (and httpx's) exceptions -> ours, with a message naming what was asked."""
    what = f"{name}@{revision}" if revision else name
    if isinstance(err, TicketError):
        return err
    if isinstance(err, OfflineModeIsEnabled):
        return OfflineError(f"{what} is not in the cache and offline mode is on (HF_HUB_OFFLINE or TICKETHUB_OFFLINE).")
    if isinstance(err, GatedRepoError):  # a subclass of RepositoryNotFoundError: test it first
        return UnauthorizedError(_server_message(err))
    if isinstance(err, RepositoryNotFoundError):
        return TicketNotFoundError(f"No ticket named {name!r} on {endpoint}.")
    if isinstance(err, RevisionNotFoundError):
        status = _ticket_status(err)
        if status:
            return not_verified(_server_message(err), status)
        return TicketNotFoundError(f"{_server_message(err)} ({what} on {endpoint})")
    if isinstance(err, RemoteEntryNotFoundError):
        return TicketNotFoundError(f"{_server_message(err)} ({what} on {endpoint})")
    if isinstance(err, HfHubHTTPError) and err.response is not None and err.response.status_code in (401, 403):
        hint = "" if err.response.status_code == 403 else " (set TICKETHUB_TOKEN or run `ticket login`)"
        return UnauthorizedError(f"{endpoint} refused the token: {_server_message(err)}{hint}")
    if isinstance(err, httpx2.TransportError):
        return OfflineError(f"Cannot reach the registry at {endpoint} ({err.__class__.__name__}: {err}), "
                            f"and {what} is not in the cache.")
    if isinstance(err, LocalEntryNotFoundError):
        cause = err.__cause__
        if isinstance(cause, Exception) and not isinstance(cause, LocalEntryNotFoundError):
            return translate(cause, name=name, revision=revision, endpoint=endpoint)
        return OfflineError(f"{what} is not in the cache and the registry at {endpoint} could not be reached.")
    if isinstance(err, HfHubHTTPError):
        return HubError(f"{endpoint} answered an error for {what}: {_server_message(err)}")
    return HubError(f"Pulling {what} from {endpoint} failed: {err}")


# --- metadata requests --------------------------------------------------------------------------------


def _get_json(settings: HubSettings, url: str, *, params: Mapping[str, Any] | None = None,
              include_unpublished: bool = False) -> httpx2.Response:
    """GET ``url``; ``params`` None keeps the query string ``url`` carries (a ``next`` link)."""
    if settings.offline:
        raise OfflineModeIsEnabled(f"offline mode is on; not requesting {url}")
    response = get_session().get(url, params=dict(params) if params else None, timeout=_TIMEOUT,
                                 headers=settings.headers(include_unpublished=include_unpublished))
    hf_raise_for_status(response)
    return response


def model_info(settings: HubSettings, name: str, revision: str | None = None, *,
               include_unpublished: bool = False) -> dict[str, Any]:
    """``GET /api/models/<name>/revision/<rev>``: the commit id, files with sha256, and our ``ticket`` record."""
    url = f"{settings.endpoint}/api/models/{name}/revision/{revision or 'main'}"
    try:
        info = _get_json(settings, url, include_unpublished=include_unpublished).json()
    except Exception as err:  # noqa: BLE001 - translated
        raise translate(err, name=name, revision=revision, endpoint=settings.endpoint) from err
    if not isinstance(info, dict):
        raise HubError(f"{settings.endpoint} answered {url} with something other than a JSON object")
    return info


def list_models(settings: HubSettings, *, task: str | None = None, max_density: float | None = None,
                search: str | None = None, sort: str = "verified_accuracy", limit: int | None = None,
                page_size: int = 100) -> Iterator[dict[str, Any]]:
    """Published tickets from ``GET /api/models`` (follows the ``Link: rel="next"`` pages)."""
    query: dict[str, Any] = {"sort": sort, "direction": -1, "limit": page_size}
    if task:
        query["filter"] = f"task:{task}"
    if max_density is not None:
        query["max_density"] = repr(float(max_density))
    if search:
        query["search"] = search
    params: dict[str, Any] | None = query
    url: str | None = f"{settings.endpoint}/api/models"
    count = 0
    try:
        while url:
            response = _get_json(settings, url, params=params)
            for item in response.json():
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries them (an empty dict would replace its query string)
    except TicketError:
        raise
    except Exception as err:  # noqa: BLE001 - translated
        raise translate(err, name=f"tickets for task {task}", revision=None, endpoint=settings.endpoint) from err


# --- the pick rule ------------------------------------------------------------------------------------



def pick_best(candidates: list[dict[str, Any]], *, max_density: float | None = None,
              winning: bool | None = None) -> dict[str, Any] | None:
    """Apply :data:`PICK_RULE` to model dicts from :func:`list_models` (``ticket`` records inside).

    ``winning`` True/False keeps only candidates whose record says ``winning`` is that (see
    :func:`with_winning`); None ignores it.
    """

    def eligible(item: dict[str, Any]) -> bool:
        record = item.get("ticket") or {}
        if not record.get("published") or record.get("verified_accuracy") is None:
            return False
        if winning is not None and bool(record.get("winning")) is not winning:
            return False
        return max_density is None or float(record["density"]) <= float(max_density)

    def key(item: dict[str, Any]) -> tuple[float, float, str]:
        record = item["ticket"]
        return (-float(record["verified_accuracy"]), float(record["density"]), _negate(record.get("created_at") or ""))

    pool = [c for c in candidates if eligible(c)]
    return min(pool, key=key) if pool else None


def with_winning(settings: HubSettings, candidates: list[dict[str, Any]], *, task: str,
                 winning: bool) -> list[dict[str, Any]]:
    """The candidates with ``ticket.winning`` filled in from the catalog's ``winning`` filter
    (``GET /api/v1/tickets/?task=&winning=true``), when their records do not carry it already."""
    if all("winning" in (c.get("ticket") or {}) for c in candidates):
        return candidates
    names = {t["name"] for t in api.list_tickets(task=task, winning=True, limit=None, token=settings.token,
                                                  endpoint=settings.endpoint)}
    out = []
    for c in candidates:
        record = dict(c.get("ticket") or {})
        record.setdefault("winning", c.get("id") in names)
        out.append({**c, "ticket": record})
    return out


def _negate(text: str) -> str:
    """A string that sorts in the reverse order of ``text`` (for "newest first" inside a min())."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


# --- files --------------------------------------------------------------------------------------------


@dataclass
class PulledFiles:
    """A ticket revision's files in the huggingface_hub cache, checked against the registry's sha256."""

    name: str
    commit: str
    folder: Path
    files: dict[str, Path]
    sha256: dict[str, str]
    #: The registry's model info when the pull asked it (None from cache only: pinned or offline).
    info: dict[str, Any] | None = None
    #: "network" (the registry answered) or "cache" (no request made)
    source: str = "network"
    endpoint: str = ""
    requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        return dict((self.info or {}).get("ticket") or {})

    def verification(self) -> dict[str, Any] | None:
        path = self.files.get(VERIFICATION_FILE)
        return json.loads(path.read_text()) if path else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _storage_folder(settings: HubSettings, name: str) -> Path:
    return settings.cache_dir / repo_folder_name(repo_id=name, repo_type="model")


def _write_ref(settings: HubSettings, name: str, ref: str, commit: str) -> None:
    """Record ``ref -> commit`` like huggingface_hub does, so an offline pull of ``ref`` finds the snapshot."""
    path = _storage_folder(settings, name) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != commit:
        path.write_text(commit)


def _read_ref(settings: HubSettings, name: str, ref: str) -> str | None:
    path = _storage_folder(settings, name) / "refs" / ref
    return path.read_text().strip() if path.is_file() else None


def _discard(path: Path) -> None:
    """Remove a cached file: its snapshot link and the blob it points at."""
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
    except OSError:  # pragma: no cover - best effort
        logger.warning("could not remove %s from the cache", path)


def _check(name: str, commit: str, path_in_repo: str, local: Path, expected: str | None) -> str:
    """sha256 of a cached file against the registry's record (the blob name is the ETag it sent)."""
    actual = sha256_file(local)
    record = expected or local.resolve().name
    if actual != record:
        _discard(local)
        raise ChecksumError(
            f"{name}@{commit[:12]}: {path_in_repo} has sha256 {actual} but the registry's record is {record}; "
            f"the bad copy was removed from the cache, pull again (if it repeats, the registry's copy is corrupt)."
        )
    return actual


def _from_cache(settings: HubSettings, name: str, commit: str) -> PulledFiles | None:
    """The revision's files from the cache alone (no request), or None if a bundle file is missing."""
    files: dict[str, Path] = {}
    for path in (*BUNDLE_FILES, VERIFICATION_FILE):
        found = try_to_load_from_cache(name, path, cache_dir=settings.cache_dir, revision=commit)
        if isinstance(found, str):
            files[path] = Path(found)
        elif path in BUNDLE_FILES:
            return None
    sha = {path: _check(name, commit, path, local, None) for path, local in files.items()}
    folder = _storage_folder(settings, name) / "snapshots" / commit
    return PulledFiles(name=name, commit=commit, folder=folder, files=files, sha256=sha, info=None, source="cache",
                       endpoint=settings.endpoint)


def _download(settings: HubSettings, name: str, info: dict[str, Any], *, include_unpublished: bool) -> PulledFiles:
    """Every file of the revision ``info`` names, into the huggingface_hub cache layout: one GET per file not
    cached yet (the model info already carries each file's sha256 and size, so no HEAD is needed)."""
    commit = str(info.get("sha") or "")
    if not _COMMIT.match(commit):
        raise HubError(f"The registry answered no valid commit id for {name!r} (got {commit!r}).")
    # the files a ticket is made of (the model card README.md and anything else listed are not needed)
    siblings = {s["rfilename"]: s for s in info.get("siblings") or [] if s.get("rfilename") in PULLED_FILES}
    records = {path: (s.get("lfs") or {}).get("sha256") for path, s in siblings.items()}
    missing = [p for p in BUNDLE_FILES if p not in records]
    if missing:
        raise HubError(f"The registry lists no {', '.join(missing)} for {name}@{commit[:12]}.")
    files: dict[str, Path] = {}
    sha: dict[str, str] = {}
    for path in sorted(records):
        expected = records[path]
        size = siblings[path].get("size")
        cached = try_to_load_from_cache(name, path, cache_dir=settings.cache_dir, revision=commit)
        if isinstance(cached, str) and (expected is None or Path(cached).resolve().name == expected):
            local = Path(cached)
            sha[path] = _check(name, commit, path, local, expected)
        else:
            try:
                local = _fetch(settings, name, commit, path, expected, size, include_unpublished=include_unpublished)
            except Exception as err:  # noqa: BLE001 - translated
                raise translate(err, name=name, revision=commit, endpoint=settings.endpoint) from err
            sha[path] = local.resolve().name  # hashed while it streamed in (the blob is named by its sha256)
        files[path] = local
    folder = _storage_folder(settings, name) / "snapshots" / commit
    return PulledFiles(name=name, commit=commit, folder=folder, files=files, sha256=sha, info=info,
                       source="network", endpoint=settings.endpoint)


def _fetch(settings: HubSettings, name: str, commit: str, path: str, expected: str | None, size: int | None, *,
           include_unpublished: bool) -> Path:
    """GET one file into ``blobs/<sha256>`` and link it from ``snapshots/<commit>/<path>``, as
    ``hf_hub_download`` lays it out (so ``try_to_load_from_cache`` and offline pulls find it)."""
    storage = _storage_folder(settings, name)
    blobs = storage / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    url = f"{settings.endpoint}/{quote(name)}/resolve/{commit}/{quote(path)}"
    digest = hashlib.sha256()
    received = 0
    partial = blobs / f"{expected or 'download'}.{uuid.uuid4().hex[:12]}.incomplete"  # per call: threads too
    try:
        with get_session().stream("GET", url, timeout=_TIMEOUT, follow_redirects=True,
                                  headers=settings.headers(include_unpublished=include_unpublished)) as response:
            if response.status_code >= 400:
                response.read()
            hf_raise_for_status(response)
            with open(partial, "wb") as fh:
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                    received += len(chunk)
                    if size is not None and received > int(size):
                        break  # more bytes than the record: stop reading; the check below reports it
                    fh.write(chunk)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ChecksumError(
                f"{name}@{commit[:12]}: {path} downloaded with sha256 {actual} ({received} bytes) but the "
                f"registry's record is {expected}; nothing was cached, pull again (if it repeats, the registry's "
                f"copy is corrupt)."
            )
        blob = blobs / actual
        os.replace(partial, blob)
    finally:
        partial.unlink(missing_ok=True)
    link = storage / "snapshots" / commit / path
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    try:
        link.symlink_to(os.path.relpath(blob, link.parent))
    except OSError:  # no symlinks on this filesystem: a copy, as huggingface_hub does
        shutil.copyfile(blob, link)
    return link


def pull_files(name: str, revision: str | None = None, *, settings: HubSettings,
               include_unpublished: bool = False, info: dict[str, Any] | None = None,
               main_commit: bool = False) -> PulledFiles:
    """Fetch (or find in the cache) the files of ``name`` at ``revision`` (None = ``main``).

    - offline: the cache only (``revision`` None reads the ref recorded by the last online pull);
    - ``revision`` a commit id and the files cached: no request;
    - otherwise one model-info request (skipped when ``info`` is given, e.g. from a listing), then
      one GET by commit id for each file not cached yet (no HEAD: the model info carries sha256 and size).

    ``main_commit`` says that ``revision`` is the ticket's current ``main`` (a listing said so): the
    cache records it, as for an unpinned pull, so offline pulls by name or task find it.
    """
    ref = UNPUBLISHED_REF if include_unpublished else "main"
    pinned = revision is not None and _COMMIT.match(revision) is not None
    if settings.offline:
        commit = revision if pinned else _read_ref(settings, name, revision or ref)
        cached = _from_cache(settings, name, commit) if commit else None
        if cached is None:
            raise OfflineError(
                f"{name}@{revision or ref} is not in the cache at {settings.cache_dir} and offline mode is on; "
                "pull it once online first."
            )
        return cached
    if pinned and info is None:
        cached = _from_cache(settings, name, revision)  # type: ignore[arg-type]
        if cached is not None:
            return cached
    if pinned and main_commit:
        cached = _from_cache(settings, name, revision)  # type: ignore[arg-type]
        if cached is not None:  # a listing named this commit: no request, but remember it as main
            _write_ref(settings, name, ref, cached.commit)
            cached.info, cached.source = info, "network"
            return cached
    if info is None:
        try:
            info = model_info(settings, name, revision, include_unpublished=include_unpublished)
        except OfflineError:
            # The registry is unreachable: serve the last revision this cache saw, as huggingface_hub does.
            commit = revision if pinned else _read_ref(settings, name, revision or ref)
            cached = _from_cache(settings, name, commit) if commit else None
            if commit is None or cached is None:
                raise
            logger.warning("registry %s unreachable; using the cached %s@%s", settings.endpoint, name, commit[:12])
            cached.extra["stale"] = True
            return cached
    pulled = _download(settings, name, info, include_unpublished=include_unpublished)
    if not pinned or main_commit:
        _write_ref(settings, name, ref if main_commit else (revision or ref), pulled.commit)
    return pulled


def cached_tickets(settings: HubSettings) -> Iterator[PulledFiles]:
    """Every ticket revision recorded under ``refs/main`` in the cache (for offline pulls by task)."""
    if not settings.cache_dir.is_dir():
        return
    for folder in sorted(settings.cache_dir.glob("models--*")):
        name = folder.name[len("models--"):].replace("--", "/")
        commit = _read_ref(settings, name, "main")
        if not commit:
            continue
        try:
            cached = _from_cache(settings, name, commit)
        except ChecksumError:
            continue
        if cached is not None:
            yield cached
