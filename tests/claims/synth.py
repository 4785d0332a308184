"""Synthetic run tables for claim-engine tests: the answer is known by construction.

:func:`grid_tables` enumerates the categorical grid of every protocol a claim runs, calls a
``world(params, replicate, rng)`` function for each run, and assembles :class:`RunTable`\\ s in the
runner's format. The world returns ``{"status": ..., "curve": [{epoch, metric: value}, ...],
**summary}``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.claims import ClaimSpec, RunTable

World = Callable[[dict[str, Any], int, np.random.Generator], Mapping[str, Any]]


def grid(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the categorical choices of a studies-schema ``params`` block."""
    keys = list(params)
    choices = [params[k]["choices"] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]


def grid_tables(claim: ClaimSpec, world: World, seed: int = 0) -> dict[str, RunTable]:
    """One RunTable per protocol with runs of its own."""
    out = {}
    for p in claim.protocols_to_run():
        study = claim.study_for(p)
        configs = grid(study["search"]["params"])
        reps = int(study.get("replicates", 1))
        runs, curves = [], []
        for trial, cfg in enumerate(configs):
            for r in range(reps):
                rng = np.random.default_rng([seed, trial, r])
                res = dict(world(dict(cfg), r, rng))
                curve = res.pop("curve", [])
                status = res.pop("status", "completed")
                runs.append(
                    {
                        "protocol": p,
                        "trial": trial,
                        "replicate": r,
                        "seed": 1000 + r,
                        "status": status,
                        "reason": "",
                        "run_id": f"run-{p}-{trial}-{r}",
                        **cfg,
                        **res,
                    }
                )
                for row in curve:
                    curves.append({"protocol": p, "trial": trial, "replicate": r, **row})
        out[p] = RunTable.from_records(runs, curves)
    return out


def saturating_curve(
    epochs: int, ceiling: float, tau: float, rng: np.random.Generator, noise: float = 0.005
) -> np.ndarray:
    """Accuracy per epoch 0..E rising from 0.1 to ``ceiling`` with time constant ``tau``."""
    e = np.arange(epochs + 1)
    acc = 0.1 + (ceiling - 0.1) * (1 - np.exp(-e / tau))
    return np.clip(acc + rng.normal(0, noise, size=acc.shape), 0, 1)
