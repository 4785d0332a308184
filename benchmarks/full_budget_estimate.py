"""An estimate (not a measurement) of ``harness reproduce --all --budget full``'s wall time.

The full budget of the whole catalogue cannot be run on 2 shared cores in a session, so this
script scales a *measured* quick run by the work each budget asks for. Per claim and budget it
counts, from the resolved specs (:func:`harness.claims.load_claim`), every protocol's

    runs × samples trained per run  (runs = grid points or random trials × replicate seeds;
    samples = min(epochs × training-set size, max_steps × batch size))

and estimates ``full time = measured quick time × work(full) / work(quick)``. Probe protocols
(no training) count their evaluations only, as one sample each. What it ignores, so the
estimate is rough: runs that stop early (targets, divergence), model sizes that differ between
protocols of one claim (protocols are weighted by samples, not by multiply-adds), per-run
overhead (a full budget has more runs of the same length) and stacking (more seeds per trial
stack better, so full is, if anything, over-estimated there). The measured quick times come
from a reproduction's ``reports/index.json`` (``harness reproduce --all``).

Usage::

    python benchmarks/full_budget_estimate.py reports/index.json
    python benchmarks/full_budget_estimate.py reports/index.json --claims batch_norm mse_vs_ce
    python benchmarks/full_budget_estimate.py run1/index.json run2/index.json   # merged
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from harness.claims import list_claims, load_claim
from harness.study.space import SearchSpace

_SIZES: dict[str, int] = {}


def _train_size(data: dict[str, Any]) -> int:
    from harness.data import load_dataset

    key = json.dumps(data, sort_keys=True, default=str)
    if key not in _SIZES:
        _SIZES[key] = int(load_dataset(data).train.n)
    return _SIZES[key]


def protocol_work(study: dict[str, Any]) -> tuple[int, float]:
    """``(runs, samples trained in all of them)`` of one protocol's resolved study."""
    search = study.get("search") or {}
    params = search.get("params") or {}
    reps = int(study.get("replicates", 1))
    if "probe" in study:  # probe.* keys: a categorical grid the study schema does not parse
        runs = math.prod(len(p["choices"]) for p in params.values()) * reps
        return runs, float(runs)
    n_trials = search.get("n_trials")
    grid = SearchSpace.from_yaml(params).grid_size()
    runs = (int(n_trials) if n_trials else int(grid or 1)) * reps
    train = study["train"]
    per_epoch = _train_size(dict(study["data"]))
    samples = float(train["epochs"]) * per_epoch
    if train.get("max_steps"):
        samples = min(samples, float(train["max_steps"]) * int(train["batch_size"]))
    return runs, runs * samples


def claim_work(claim_id: str, budget: str) -> tuple[int, float]:
    claim = load_claim(claim_id, budget=budget)
    runs, work = 0, 0.0
    for p in claim.protocols_to_run():
        r, w = protocol_work(claim.study_for(p))
        runs, work = runs + r, work + w
    return runs, work


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "index", type=Path, nargs="+", help="index.json of quick-budget reproductions (merged)"
    )
    ap.add_argument("--claims", nargs="*", default=None, help="claim ids (default: every claim)")
    args = ap.parse_args(argv)
    measured: dict[str, float] = {}
    for path in args.index:
        book = json.loads(path.read_text(encoding="utf-8"))
        measured.update(
            {c["claim"]: float(c["wall_time_s"]) for c in book["claims"] if c["budget"] == "quick"}
        )
    print(
        "| claim | quick runs | full runs | work full / quick | quick measured (s) | "
        "full estimated (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    tot_q = tot_f = 0.0
    ids = args.claims or list_claims()
    n_measured = 0
    for cid in ids:
        rq, wq = claim_work(cid, "quick")
        rf, wf = claim_work(cid, "full")
        ratio = wf / wq if wq else math.nan
        tq = measured.get(cid, math.nan)
        tf = tq * ratio
        if math.isfinite(tf):
            tot_q, tot_f, n_measured = tot_q + tq, tot_f + tf, n_measured + 1
        print(f"| {cid} | {rq} | {rf} | {ratio:.2f} | {tq:.0f} | {tf:.0f} |")
    print(
        f"| **the {n_measured} of {len(ids)} claims with a measured quick time** | | | "
        f"**{tot_f / tot_q if tot_q else math.nan:.2f}** | **{tot_q:.0f}** | "
        f"**{tot_f:.0f}** (≈ {tot_f / 3600:.1f} h, an estimate) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
