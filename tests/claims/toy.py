"""A minimal claim and hand-made run tables whose verdicts are known by construction."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from harness.claims import RunTable

SEED_FILE = "000_16e5fcb357a67462.txt"


def toy_claim(**overrides: Any) -> dict[str, Any]:
    """A claim over one scientific parameter ``x`` with one protocol ``a`` and 5 replicates."""
    raw: dict[str, Any] = {
        "id": "toy",
        "title": "Toy claim",
        "source": {
            "seed_file": SEED_FILE,
            "section": "§0",
            "quotes": [
                {
                    "text": "玩具引文,随着 x 增大效果越好。",
                    "gloss": "A toy quote.",
                    "checks": ["C1"],
                }
            ],
        },
        "study": {
            "name": "toy",
            "seed": 0,
            "data": {"name": "digits"},
            "model": {"name": "mlp"},
            "train": {"epochs": 3},
            "search": {
                "params": {
                    "x": {"type": "categorical", "choices": [1, 2, 4, 8], "role": "scientific"}
                }
            },
            "replicates": 5,
        },
        "protocols": {"a": {"description": "protocol a"}},
        "measures": {"m": {"name": "final", "metric": "val/accuracy"}},
        "checks": [
            {
                "id": "C1",
                "claim": "m rises with x",
                "why": "a test rule",
                "statistic": {"name": "spearman", "measure": "m", "x": "x"},
                "rule": {"op": ">=", "value": 0.8},
            }
        ],
        "bootstrap": {"n_boot": 500, "seed": 0},
    }
    raw = copy.deepcopy(raw)
    for k, v in overrides.items():
        raw[k] = v
    return raw


def summary_table(
    protocol: str,
    values: Mapping[Any, Sequence[float]],
    *,
    param: str = "x",
    status: Mapping[tuple[Any, int], str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunTable:
    """Runs whose ``final/val/accuracy`` per replicate is given: ``{x value: [v_r0, v_r1, ...]}``."""
    runs = []
    for trial, (xv, vals) in enumerate(values.items()):
        for r, v in enumerate(vals):
            runs.append(
                {
                    "protocol": protocol,
                    "trial": trial,
                    "replicate": r,
                    "seed": 100 + r,
                    "status": (status or {}).get((xv, r), "completed"),
                    param: xv,
                    "final/val/accuracy": v,
                    **(extra or {}),
                }
            )
    return RunTable.from_records(runs)
