"""The files the Hub protocol generates for a revision: ``verification.json`` and the model card ``README.md``.

``verification.json`` (the finished own verification: policy, decision, runs, seeds) is built **once per
finished verification** and kept in the file storage under :func:`document_key` (the verification's id and a
digest of what may change its bytes: the record's ``updated_at``, which every save moves, its finish time and
the revision's verified accuracy; a stored document is never overwritten). It is written when the verification
finishes (registry.catalog.signals, next to the plots) and, for records that finished before that existed, on
the first request that needs it. Its sha256 and size (the listing's ``siblings``, the resolve ``ETag``) are
kept in Django's cache (Redis in production) under the same key; on a cache miss they are read back from the
stored bytes, never rebuilt. No database column holds them, so no migration.

The model card is registry.catalog.modelcard's (its bytes cached per verification and registry address, its
sha256 and size per revision state and address here). Each revision's file list is a cached *manifest*
(below), so a warm model info, tree or listing page reads no file, verification or run row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.conf import settings
from django.core.cache import BaseCache, cache, caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from registry.catalog.modelcard import (
    CARD_CACHE_SECONDS,
    CARD_FILE,
    CARD_VERSION,
    cached_model_cards,
    model_card,
)
from registry.hub.selectors import HubFile, finished_verifications, stored_files, with_runs
from registry.tickets.models import Revision
from registry.verifications.models import Verification

VERIFICATION_FILE = "verification.json"
#: Bump when the document's layout changes: every document is then built afresh under a new key.
DOCUMENT_VERSION = 1
DOCUMENT_CACHE_SECONDS = 30 * 24 * 3600
#: Verification statuses whose revision also gets a model card.
CARD_STATUSES = frozenset({Verification.Status.VERIFIED, Verification.Status.REJECTED})


class _Meta(TypedDict):
    key: str
    sha256: str
    size: int


def iso(dt: datetime | None) -> str | None:
    """A time as the Hub writes it (UTC, milliseconds, ``Z``)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- verification.json --------------------------------------------------------------------------------


def build_verification_document(revision: Revision, verification: Verification) -> bytes:
    """The finished own verification of ``revision`` as canonical JSON bytes (reads its runs)."""
    runs = [
        {
            "role": run.role, "seed": run.seed, "data_seed": run.data_seed, "control_seed": run.control_seed,
            "final_test_accuracy": run.final_test_accuracy,
            "final_val_accuracy": run.final_val_accuracy, "early_stop_iteration": run.early_stop_iteration,
            "early_stop_test_accuracy": run.early_stop_test_accuracy, "iterations": run.iterations,
            "density": run.density, "device": run.device, "engine": run.engine, "wall_time_s": run.wall_time_s,
        }
        for run in sorted(verification.runs.all(), key=lambda r: (r.role, r.seed))
    ]
    document = {
        "format": "lottery-ticket-verification/v1",
        "ticket": revision.ticket.name,
        "commit": revision.commit,
        "task": verification.task,
        "status": verification.status,
        "verified": verification.status == Verification.Status.VERIFIED,
        "outcome": verification.outcome,
        "winning": verification.winning,
        "matching": verification.matching,
        "beats_controls": verification.beats_controls,
        "seeds": verification.seeds,
        "reason": verification.reason,
        "verified_accuracy": revision.verified_accuracy,
        "claimed_accuracy": verification.claimed_accuracy,
        "claimed_density": verification.claimed_density,
        "measured_density": verification.measured_density,
        "policy": verification.policy,
        "decision": verification.decision,
        "runs": runs,
        "device": verification.device,
        "engine": verification.engine,
        "finished_at": iso(verification.finished_at),
    }
    return json.dumps(document, sort_keys=True, indent=1).encode()


def document_key(revision: Revision, verification: Verification) -> str:
    """Where the document of ``verification`` is stored: a new key whenever its bytes may change (any save of
    the record moves its ``updated_at``), so a stored document is never overwritten and a manifest that names
    one always names the bytes it lists."""
    version = (f"{iso(verification.updated_at)}|{iso(verification.finished_at)}|{revision.verified_accuracy!r}|"
               f"{revision.commit}")
    digest = hashlib.sha256(version.encode()).hexdigest()[:16]
    return f"hub/verifications/v{DOCUMENT_VERSION}/{verification.pk}-{digest}.json"


def _cache_key(storage_key: str) -> str:
    return f"hub:document:{storage_key}"


def _file(meta: _Meta) -> HubFile:
    return HubFile(VERIFICATION_FILE, meta["sha256"], meta["size"], storage_key=meta["key"])


def _meta(key: str, content: bytes) -> _Meta:
    return {"key": key, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


def store_verification_document(revision: Revision, verification: Verification) -> HubFile:
    """Build the document (reading the runs if not loaded), write it to the storage unless it is there (the
    same key holds the same bytes) and cache its sha256 and size."""
    return _store(revision, verification, build_verification_document(revision, verification))


def _store(revision: Revision, verification: Verification, content: bytes) -> HubFile:
    key = document_key(revision, verification)
    if _read_stored(key) != content:  # absent (or, from a lost write, partial): write it whole
        if default_storage.exists(key):
            default_storage.delete(key)
        key = default_storage.save(key, ContentFile(content))
    meta = _meta(key, content)
    cache.set(_cache_key(key), meta, DOCUMENT_CACHE_SECONDS)
    return _file(meta)


def _read_stored(key: str) -> bytes | None:
    try:
        with default_storage.open(key, "rb") as handle:
            content: bytes = handle.read()
    except (FileNotFoundError, OSError):
        return None
    return content


def verification_documents(pairs: Sequence[tuple[Revision, Verification]]) -> dict[int, HubFile]:
    """The ``verification.json`` of each (revision, finished verification), by verification id: the cached
    sha256 and size (one cache round trip for all); on a miss the stored bytes' (read, not rebuilt); for a
    verification with no stored document yet, built and stored now (all their runs in one query)."""
    keys = {_cache_key(document_key(r, v)): (r, v) for r, v in pairs}
    found: dict[int, HubFile] = {}
    for ckey, meta in cache.get_many(list(keys)).items():
        found[keys[ckey][1].pk] = _file(meta)
    missing: list[tuple[Revision, Verification]] = []
    for ckey, (revision, verification) in keys.items():
        if verification.pk in found:
            continue
        key = document_key(revision, verification)
        content = _read_stored(key)
        if content is None:
            missing.append((revision, verification))
            continue
        meta = _meta(key, content)
        cache.set(ckey, meta, DOCUMENT_CACHE_SECONDS)
        found[verification.pk] = _file(meta)
    with_runs(v for _, v in missing)
    for revision, verification in missing:
        found[verification.pk] = store_verification_document(revision, verification)
    return found


def document_content(revision: Revision, listed: HubFile) -> bytes:
    """The bytes of a listed ``verification.json`` (rebuilt and stored again if the storage lost them)."""
    content = _read_stored(listed.storage_key) if listed.storage_key else None
    if content is None:
        verification = finished_verifications([revision])[revision.pk]
        with_runs([verification])
        content = build_verification_document(revision, verification)
        _store(revision, verification, content)
    return content


# --- every file of a revision: the manifest -----------------------------------------------------------
# What the listing, model info and tree say about a revision's files (paths, sha256, sizes) is kept in the
# cache as a *manifest* per revision state (its id, status, status change time, verified accuracy: a finished
# verification always changes them), and the model card's sha256 and size per state and registry address,
# both read in one cache round trip. A miss reads the files, the verification and the document's sha256
# (queries for all the missing revisions at once) and fills the entries. A finished verification saved again
# (registry.catalog.signals) drops its revision's manifest.

_Entry = tuple[str, str, int, str | None]  # path, sha256, size, storage key

#: Entries (manifests, card sizes) are also kept in the process-local cache ``CACHES["local"]`` for
#: ``settings.TICKETHUB_HUB_MEMO_SECONDS`` (0: off), so a warm model info or resolve makes no cache round trip. An entry
#: never names bytes other than the ones it lists (a document's key changes with every save of its record);
#: what it can be is up to this long behind a finished record saved again, in other processes than the one
#: that saved it.


def _local() -> BaseCache:
    """The process-local cache (settings.CACHES["local"]) in front of the shared one."""
    return caches["local"]


def _memo_seconds() -> float:
    return float(settings.TICKETHUB_HUB_MEMO_SECONDS)


def _recall(keys: Sequence[str]) -> dict[str, Any]:
    """The entries under ``keys``: from the process-local cache, then from the shared cache (one round trip)."""
    found: dict[str, Any] = _local().get_many(list(keys)) if _memo_seconds() > 0 else {}
    rest = [k for k in keys if k not in found]
    if rest:
        fetched = cache.get_many(rest)
        _memorise(fetched)
        found.update(fetched)
    return found


def _memorise(entries: dict[str, Any]) -> None:
    seconds = _memo_seconds()
    if seconds > 0 and entries:
        _local().set_many(entries, seconds)


def clear_memo() -> None:
    """Forget every entry kept in this process (they are still in the shared cache)."""
    _local().clear()


def _remember(entries: dict[str, Any], seconds: int) -> None:
    cache.set_many(entries, seconds)
    _memorise(entries)


class _Manifest(TypedDict):
    files: list[_Entry]
    #: The finished own verification the generated files come from: (id, finish time, status), or None.
    verification: tuple[int, str | None, str] | None


class _CardMeta(TypedDict):
    verification: tuple[int, str | None, str] | None
    sha256: str
    size: int


def _state(revision: Revision) -> str:
    return f"{revision.pk}:{revision.status}:{iso(revision.status_changed_at)}:{revision.verified_accuracy!r}"


def manifest_key(revision: Revision) -> str:
    return f"hub:manifest:v{DOCUMENT_VERSION}:{_state(revision)}"


def _card_meta_key(revision: Revision, base: str) -> str:
    return f"hub:card-meta:v{CARD_VERSION}:{_state(revision)}:{base}"


def _verification_ref(verification: Verification) -> tuple[int, str | None, str]:
    return (verification.pk, iso(verification.finished_at), str(verification.status))


def _entry(f: HubFile) -> _Entry:
    return (f.path, f.sha256, f.size, f.storage_key)


def _manifests(revisions: Sequence[Revision]) -> tuple[dict[int, _Manifest], dict[int, Verification]]:
    """Build the manifests of ``revisions`` (files, verifications: two queries; runs for documents built now)
    and cache them; also returns the verifications loaded, by revision id."""
    stored = stored_files(revisions)
    verifications = finished_verifications(revisions)
    documents = verification_documents([(r, verifications[r.pk]) for r in revisions if r.pk in verifications])
    built: dict[int, _Manifest] = {}
    for revision in revisions:
        verification = verifications.get(revision.pk)
        files = stored[revision.pk] + ([documents[verification.pk]] if verification is not None else [])
        built[revision.pk] = {"files": [_entry(f) for f in files],
                              "verification": _verification_ref(verification) if verification else None}
    _remember({manifest_key(r): built[r.pk] for r in revisions}, DOCUMENT_CACHE_SECONDS)
    return built, verifications


def _cards(revisions: Sequence[Revision], manifests: dict[int, _Manifest], cached: dict[str, _CardMeta],
           verifications: dict[int, Verification], base: str) -> dict[int, HubFile]:
    """The model card's entry of each revision whose verification was verified or rejected, by revision id;
    cards not cached are built now (their verifications and runs in one query each)."""
    carded = [r for r in revisions if (ref := manifests[r.pk]["verification"]) and ref[2] in CARD_STATUSES]
    found: dict[int, HubFile] = {}
    missing: list[Revision] = []
    for revision in carded:
        meta = cached.get(_card_meta_key(revision, base))
        if meta is not None and meta["verification"] == manifests[revision.pk]["verification"]:
            found[revision.pk] = HubFile(CARD_FILE, meta["sha256"], meta["size"])
        else:
            missing.append(revision)
    if not missing:
        return found
    unloaded = [r for r in missing if r.pk not in verifications]
    verifications = {**verifications, **finished_verifications(unloaded)}
    pairs = [(r, verifications[r.pk]) for r in missing if r.pk in verifications]
    cards = cached_model_cards([v for _, v in pairs], base_url=base)
    with_runs(v for _, v in pairs if v.pk not in cards)  # a card built on a miss reads the runs
    metas: dict[str, _CardMeta] = {}
    for revision, verification in pairs:
        card = cards.get(verification.pk) or model_card(revision, verification, base_url=base)
        hub_file = HubFile(CARD_FILE, hashlib.sha256(card).hexdigest(), len(card), card)
        metas[_card_meta_key(revision, base)] = {"verification": _verification_ref(verification),
                                                 "sha256": hub_file.sha256, "size": hub_file.size}
        found[revision.pk] = hub_file
    _remember(dict(metas), CARD_CACHE_SECONDS)
    return found


def files_of(revisions: Sequence[Revision], *, base: str | None) -> dict[int, list[HubFile]]:
    """Every file the protocol serves for each revision, sorted by path, by revision id: the stored ones and
    the generated ones (the model card only when ``base``, the registry's address, is given).

    Warm: one cache round trip and no query for any number of revisions. Cold: files, verifications and (for
    documents or cards built now) runs, one query each for all the revisions."""
    keys = {r.pk: manifest_key(r) for r in revisions}
    card_keys = [_card_meta_key(r, base) for r in revisions] if base is not None else []
    cached = _recall([*keys.values(), *card_keys])
    manifests: dict[int, _Manifest] = {pk: cached[key] for pk, key in keys.items() if key in cached}
    verifications: dict[int, Verification] = {}
    missing = [r for r in revisions if r.pk not in manifests]
    if missing:
        built, verifications = _manifests(missing)
        manifests.update(built)
    files = {pk: [HubFile(path, sha, size, storage_key=key) for path, sha, size, key in manifest["files"]]
             for pk, manifest in manifests.items()}
    if base is not None:
        for pk, card in _cards(revisions, manifests, cached, verifications, base).items():
            files[pk].append(card)
    return {pk: sorted(found, key=lambda f: f.path) for pk, found in files.items()}


def revision_files(revision: Revision, base: str | None = None) -> list[HubFile]:
    """Every file the protocol serves for ``revision`` (see :func:`files_of`)."""
    return files_of([revision], base=base)[revision.pk]


def card_content(revision: Revision, *, base: str) -> bytes | None:
    """The model card's bytes (registry.catalog.modelcard; cached there), for a GET of ``README.md``."""
    verification = finished_verifications([revision]).get(revision.pk)
    if verification is None or verification.status not in CARD_STATUSES:
        return None
    return model_card(revision, verification, base_url=base)


def forget_manifest(revision: Revision) -> None:
    """Drop the cached manifest of ``revision`` as it is now (its verification was saved again)."""
    cache.delete(manifest_key(revision))
    _local().delete(manifest_key(revision))
