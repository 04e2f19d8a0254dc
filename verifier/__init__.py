"""Verifier: Celery workers that retrain every submitted ticket before it is published.

Importing this package builds the worker's Celery app (torch-free; torch is imported only inside the job).
The registry's web process never imports it: it enqueues through :mod:`registry.celery_client` and reads the
shared settings and the policy in force from :mod:`registry.verifications.config`.
"""

from verifier.celery import app

__all__ = ["app"]
