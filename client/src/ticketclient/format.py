"""The ticket format v1 (docs/ticket-format.md) in one import (no torch): a façade, re-exports only.

- :mod:`ticketclient.recipe`: :class:`Recipe`, how a ticket is trained;
- :mod:`ticketclient.config`: :class:`TicketConfig` (``config.json``) with :class:`Claims` and
  :class:`Provenance`, strict: unknown keys, wrong types and values out of range raise
  :class:`~ticketclient.errors.BundleError` naming the field (``recipe.lr``);
- :mod:`ticketclient.safetensors_io`: the checked safetensors codec (:func:`read_header`,
  :func:`load_safetensors`, :func:`save_safetensors`); nothing is ever unpickled;
- :mod:`ticketclient.bundle`: :class:`TicketBundle` (config + ``init`` + ``mask`` as numpy arrays) and
  :func:`measure_density`, the kept fraction of prunable weights, overall and per tensor;
- :mod:`ticketclient.checks` and :mod:`ticketclient.strict_json`: the strict checks of untrusted values.
"""

from __future__ import annotations

from ticketclient.bundle import (
    BUNDLE_FILES,
    BUNDLE_PARTS,
    CONFIG_FILE,
    INIT_FILE,
    MASK_FILE,
    TicketBundle,
    measure_density,
)
from ticketclient.checks import TICKET_NAME, bad_character, check_ticket_name
from ticketclient.config import (
    FORMAT,
    MAX_CLAIM_RUNS,
    STRATEGIES,
    TASK_NAME,
    Claims,
    Provenance,
    TicketConfig,
)
from ticketclient.recipe import (
    AUGMENTS,
    LR_SCHEDULES,
    MAX_ITERATIONS_HARD,
    MAX_MILESTONES,
    OPTIMIZERS,
    Recipe,
)
from ticketclient.safetensors_io import (
    DEFAULT_MAX_HEADER_BYTES,
    DTYPES,
    NUMPY_TO_ST,
    SafetensorsHeader,
    load_safetensors,
    read_header,
    save_safetensors,
    sniff,
)
from ticketclient.strict_json import MAX_INT_DIGITS, check_json_tree, strict_json_loads

__all__ = [
    "FORMAT", "BUNDLE_FILES", "BUNDLE_PARTS", "CONFIG_FILE", "INIT_FILE", "MASK_FILE", "Recipe", "Claims", "Provenance",
    "TicketConfig", "TicketBundle", "SafetensorsHeader", "measure_density", "read_header", "load_safetensors",
    "save_safetensors", "sniff", "strict_json_loads", "check_json_tree", "check_ticket_name", "bad_character",
    "TICKET_NAME", "DTYPES", "NUMPY_TO_ST", "DEFAULT_MAX_HEADER_BYTES", "MAX_INT_DIGITS", "MAX_CLAIM_RUNS",
    "STRATEGIES", "TASK_NAME", "AUGMENTS", "LR_SCHEDULES", "MAX_ITERATIONS_HARD", "MAX_MILESTONES", "OPTIMIZERS",
]
