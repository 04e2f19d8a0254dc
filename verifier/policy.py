"""The verification policy in force on this deployment (torch-free: the web process imports it).

The policy itself (roles, statistics, tolerances, the decision) lives in :mod:`ticketclient.policy`, so
that users can evaluate a verification record with exactly the hub's rule; this module builds it from the
verifier's settings (``VERIFIER_SEEDS``, ``VERIFIER_STATISTIC``, ``VERIFIER_TOLERANCES``, ...).
"""

from __future__ import annotations

from ticketclient.policy import (  # noqa: F401 - re-exported names of the policy
    CONTROLS,
    DENSE,
    RANDOM_MASK,
    REINIT,
    ROLES,
    STATISTICS,
    SUPERMASK,
    TICKET,
    TRAINED_CONTROLS,
    TRAINED_ROLES,
    Decision,
    VerificationPolicy,
    draw_seeds,
    spread,
    trimmed_mean,
)

# The policy in force is built from the shared verification settings (the web process builds it there too).
from registry.verifications.config import current_policy, policy_from_settings  # noqa: F401
