"""The JSON bodies of the Hub protocol: a model dict (huggingface_hub's ``ModelInfo``) and tree entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.hub.documents import iso
from registry.hub.selectors import HubFile
from registry.tickets.models import Revision, Status, Ticket

#: Size of a git-lfs pointer file; huggingface_hub requires the field in ``lfs`` entries.
LFS_POINTER_SIZE = 134


def ticket_record(ticket: Ticket, revision: Revision) -> dict[str, Any]:
    """Our own fields, under ``ticket`` in every model dict (huggingface_hub keeps unknown keys)."""
    return {
        "name": ticket.name,
        "task": ticket.task.name,
        "family": revision.family or ticket.family,
        "status": str(ticket.status),
        "published": revision.status == Status.VERIFIED and not ticket.is_withdrawn,
        "revision": revision.number,
        "revision_status": str(revision.status),
        "commit": revision.commit,
        "density": revision.density,
        "layer_densities": revision.layer_densities,
        "num_parameters": revision.num_parameters,
        "claimed_accuracy": revision.claimed_accuracy,
        "verified_accuracy": revision.verified_accuracy,
        "downloads": ticket.downloads,
        "revision_downloads": revision.downloads,
        "owner": ticket.owner.get_username(),
        "created_at": iso(revision.created_at),
        "withdrawn": ticket.is_withdrawn,
        "withdrawn_reason": ticket.withdrawn_reason or None,
    }


def model_dict(ticket: Ticket, revision: Revision, files: Iterable[HubFile]) -> dict[str, Any]:
    """``GET /api/models/<name>``'s body, and each entry of the listing."""
    record = ticket_record(ticket, revision)
    tags = ["lottery-ticket", "ticketclient", f"task:{record['task']}", f"status:{record['status']}"]
    if record["family"]:
        tags.append(f"family:{record['family']}")
    return {
        "_id": f"ticket-{ticket.pk}",
        "id": ticket.name,
        "modelId": ticket.name,
        "author": record["owner"],
        "sha": revision.commit,
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": ticket.downloads,
        "likes": 0,
        "library_name": "ticketclient",
        "tags": tags,
        "createdAt": iso(ticket.created_at),
        "lastModified": iso(revision.created_at),
        "siblings": [
            {"rfilename": f.path, "size": f.size,
             "lfs": {"sha256": f.sha256, "size": f.size, "pointerSize": LFS_POINTER_SIZE}}
            for f in files
        ],
        "cardData": {
            "library_name": "ticketclient", "tags": tags, "task": record["task"], "density": record["density"],
            "verified_accuracy": record["verified_accuracy"],
        },
        "ticket": record,
    }


def tree_entries(files: Iterable[HubFile]) -> list[dict[str, Any]]:
    """``GET /api/models/<name>/tree/<rev>``'s body: every file (a revision has no folders)."""
    return [
        {"type": "file", "path": f.path, "oid": f.sha256, "size": f.size,
         "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": LFS_POINTER_SIZE}}
        for f in files
    ]
