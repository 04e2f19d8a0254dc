"""Verifier settings: the ``VERIFIER_*`` variables are read in :mod:`registry.verifications.config` (shared with
the web process, which must not import this package); this module re-exports them and adds what only a
worker needs (torch-free).
"""

from __future__ import annotations

import os
from pathlib import Path

from registry.verifications.config import VerifierSettings, get_settings

__all__ = ["VerifierSettings", "get_settings", "gpu_count"]


def gpu_count() -> int:
    """Number of NVIDIA GPUs this process may use, without importing torch or CUDA."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0
