"""``manage.py resume_verifications``: resend what the local run's last worker left unfinished.

For a single-worker deployment that restarts (``scripts/run`` on its own locked state folder): no worker is
alive at start-up, so every unfinished verification is released and sent again (the job keeps the runs it
finished). Prints how many were resent.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registry.verifications.services import resume_unfinished


class Command(BaseCommand):
    help = "Release and resend every unfinished verification (only when no verifier worker is running)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(str(len(resume_unfinished())))
