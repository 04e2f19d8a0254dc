"""Verifier: Celery workers that retrain every submitted ticket before it is published.

Importing this package is torch-free (the registry's web process imports :data:`app` to enqueue jobs);
torch is imported only inside the job, in the worker.
"""

from verifier.celery import app

__all__ = ["app"]
