"""``manage.py demo_account --credentials PATH``: the local run's ``demo`` superuser and its API token.

The password and the token are kept in the credentials file (JSON, mode 0600): run again on the same state
folder, the command keeps both, so a stored ``ticket login`` keeps working; a token that is missing or no
longer active is replaced by a new one and the account's older tokens of that name are revoked. Prints
the token.
"""

from __future__ import annotations

import json
import os
import secrets
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from registry.accounts.models import ApiToken, hash_key
from registry.accounts.services import create_token, revoke_token


def ensure_demo_account(*, username: str, password: str, token_name: str, token: str | None) -> str:
    """The superuser ``username`` with ``password``, and its active token: ``token`` if it is still active
    under ``token_name``, else a new one (the older ones revoked). Returns the token's key."""
    with transaction.atomic():
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        active = ApiToken.objects.filter(user=user, name=token_name, revoked_at__isnull=True)
        if token and active.filter(key_hash=hash_key(token)).exists():
            return token
        for old in active:
            revoke_token(token=old)
        return create_token(user=user, name=token_name).key


def write_credentials(path: Path, credentials: dict[str, str]) -> None:
    """Write the credentials file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)


class Command(BaseCommand):
    help = "Create or update the local run's demo superuser and its API token, kept in a credentials file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--credentials", type=Path, required=True,
                            help="JSON file keeping the username, password and token across runs")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--token-name", default="scripts-run")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["credentials"]
        stored = json.loads(path.read_text()) if path.exists() else {}
        password = stored.get("password") or secrets.token_urlsafe(12)
        token = ensure_demo_account(username=options["username"], password=password,
                                    token_name=options["token_name"], token=stored.get("token"))
        write_credentials(path, {"username": options["username"], "password": password, "token": token})
        self.stdout.write(token)
