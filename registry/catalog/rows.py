"""Rendered list rows of the catalog, home, "my tickets" and leaderboard pages, cached by what they show
(registry/common/rowcache.py): the key is a digest of every value the row's template reads, of the
template's source and of the row's rank, so a cached row is never stale."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache as memoize
from typing import Any

from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from registry.common.rowcache import cached_rows, row_key, row_values

#: What a list row shows (``selectors.with_verification_columns`` annotates the verification's columns).
LIST_ROW_VALUES = (
    "pk", "updated_at", "name", "owner.username", "task.name", "family", "status", "density",
    "verified_accuracy", "claimed_accuracy", "downloads", "winning", "v_status", "v_outcome", "dense_accuracy",
    "reinit_accuracy", "random_mask_accuracy",
)


@memoize
def _template_digest(template_name: str) -> str:
    """A digest of the template's source: an edited row template has new keys (read once per process)."""
    source = getattr(getattr(get_template(template_name), "template", None), "source", template_name)
    return hashlib.sha256(str(source).encode()).hexdigest()[:16]


def render_rows(rows: Sequence[Any], template_name: str, *, first_rank: int | None = None) -> SafeString:
    """The rows rendered with ``template_name`` (context: ``t`` the row and, when ``first_rank`` is given,
    ``rank``), each from the cache when the same values were rendered before."""
    rows = list(rows)
    template = get_template(template_name)
    digest = _template_digest(template_name)

    def rank(i: int) -> int | None:
        return None if first_rank is None else first_rank + i

    keys = [row_key(f"html:{template_name}", (digest, rank(i), row_values(row, LIST_ROW_VALUES)))
            for i, row in enumerate(rows)]
    html = cached_rows(keys, lambda i: str(template.render({"t": rows[i], "rank": rank(i)})))
    return mark_safe("".join(html))  # noqa: S308 - each part is a rendered, autoescaped template
