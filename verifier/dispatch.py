"""Creating verification records and enqueueing their jobs: lives in :mod:`registry.verifications.dispatch`
(the web process uses it too); re-exported here for the verifier's tasks and sweeper."""

from registry.verifications.dispatch import (
    enqueue_verification,
    get_or_create_verification,
    limits_for,
    own_task,
    resend_after_s,
    reset_verification,
    start_own_verification,
)

__all__ = ["enqueue_verification", "get_or_create_verification", "limits_for", "own_task", "reset_verification",
           "resend_after_s", "start_own_verification"]
