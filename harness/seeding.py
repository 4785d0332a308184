"""One seed, many independent streams: every random number flows from ``np.random.SeedSequence``.

A run's integer ``seed`` is split into named streams (weight init, data order, dropout masks) by
:func:`run_streams`. A study derives each trial's integer seed from the study seed and stable keys
(the replicate index, a config hash) by :func:`derive_seed`, so a trial's randomness does not
depend on which worker runs it or in which order: ``--jobs 1`` and ``--jobs 2`` give the same
numbers. The global ``np.random`` state is never used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RunStreams", "derive_seed", "run_streams", "stable_hash", "stable_int"]

# 32-bit seeds are what users type and what MLflow shows; SeedSequence widens them internally.
_SEED_BITS = 32


def stable_hash(obj: Any) -> str:
    """SHA-256 hex digest of ``obj`` as canonical JSON (sorted keys): stable across processes.

    Python's ``hash()`` is salted per process, so it must never feed a seed.
    """
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def stable_int(obj: Any) -> int:
    """A non-negative 64-bit integer from ``obj`` (ints pass through, anything else is hashed)."""
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool) and obj >= 0:
        return int(obj)
    return int(stable_hash(obj)[:16], 16)


def derive_seed(base_seed: int, *keys: Any) -> int:
    """A 32-bit seed for ``(base_seed, *keys)``, e.g. ``derive_seed(study_seed, "replicate", 2)``.

    Uses ``SeedSequence(base_seed, spawn_key=keys)``: distinct keys give statistically independent
    streams, and the result depends only on the arguments.
    """
    ss = np.random.SeedSequence(
        entropy=int(base_seed), spawn_key=tuple(stable_int(k) for k in keys)
    )
    return int(ss.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class RunStreams:
    """The independent generators one training run needs.

    Attributes
    ----------
    init : np.random.Generator
        Weight initialization.
    order : np.random.Generator
        Mini-batch shuffling or sampling with replacement.
    dropout : np.random.Generator
        Dropout masks (and any other stochastic layer).
    """

    init: np.random.Generator
    order: np.random.Generator
    dropout: np.random.Generator


def run_streams(seed: int) -> RunStreams:
    """Split a run's seed into its named streams (same seed → bit-identical streams)."""
    init, order, dropout = np.random.SeedSequence(int(seed)).spawn(3)
    return RunStreams(
        init=np.random.default_rng(init),
        order=np.random.default_rng(order),
        dropout=np.random.default_rng(dropout),
    )
