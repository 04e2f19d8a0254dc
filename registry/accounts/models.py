"""API tokens: a user holds several named tokens, each stored as a sha256 of its key.

The key is shown once, when the token is created (like GitHub or Hugging Face tokens). A request carries
it as ``Authorization: Bearer <key>`` (what huggingface_hub sends) or ``Authorization: Token <key>``.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

#: Every key starts with this, so a leaked key is recognisable (secret scanners, logs).
KEY_PREFIX = "tkh_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64, help_text="What the token is for, e.g. 'laptop' or 'ci'.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    #: The first characters of the key, shown in listings so a user can tell tokens apart.
    key_hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="unique_active_token_name_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.key_hint}...)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
