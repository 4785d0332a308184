"""Per-claim wall time of ``harness reproduce``, split into training and orchestration + tracking.

Runs every claim (or ``--claims``) in a scratch directory (its own MLflow store, Optuna journals,
ledgers and run cache) and prints, per claim: the runs, the wall time, the training time and the
rest. *Training* is the sum of the trials' worker wall times (``wall_time_s`` of each trial in
the study ledgers: building the data and networks, training, evaluating); *orchestration +
tracking* is the claim's wall time minus that (Optuna, MLflow, the verdict, figures and reports).
With ``--jobs 1`` (the default here) the split is exact; with more workers the training column is
the summed worker time divided by the number of workers, an estimate (workers also idle).

Usage::

    python benchmarks/reproduce_times.py                 # every claim, quick budget, 1 worker
    python benchmarks/reproduce_times.py --jobs 2        # the catalogue's wall time on 2 cores
    python benchmarks/reproduce_times.py --no-stack --no-cache   # the same without the speed-ups
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _load() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def _training_seconds(ledger_root: Path, claim_id: str, budget: str) -> tuple[float, int]:
    """Summed trial wall time and number of trials of a claim's studies."""
    total, trials = 0.0, 0
    for study_dir in ledger_root.glob(f"claim-{claim_id}-*-{budget}"):
        for path in study_dir.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict) or "wall_time_s" not in entry:
                continue
            total += float(entry["wall_time_s"])
            trials += 1
    return total, trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", default=None, help="comma-separated claim ids (default all)")
    parser.add_argument("--budget", default="quick", choices=("quick", "full"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-stack", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)

    from harness.claims import list_claims
    from harness.reproduce import reproduce_claim

    claims = args.claims.split(",") if args.claims else list_claims()
    print(f"load average at start: {_load()}; {args.jobs} worker(s), budget {args.budget}")
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        os.chdir(scratch)
        for claim_id in claims:
            t0 = time.perf_counter()
            result = reproduce_claim(
                claim_id,
                budget=args.budget,
                jobs=args.jobs,
                tracking_uri=f"sqlite:///{scratch / 'mlruns' / 'mlflow.db'}",
                reports_dir=scratch / "reports",
                progress=False,
                echo=lambda *a, **k: None,
                stack=False if args.no_stack else None,
                cache=not args.no_cache,
            )
            wall = time.perf_counter() - t0
            train, trials = _training_seconds(scratch / "mlruns" / "ledger", claim_id, args.budget)
            train /= max(args.jobs, 1)
            rows.append((claim_id, result.n_runs, trials, wall, train, wall - train))
            print(f"{claim_id}: {result.n_runs} runs, {wall:.1f} s", flush=True)
    total = time.perf_counter() - t_all
    print(f"load average at end: {_load()}\n")
    print("| claim | runs | trials | wall s | training s | orchestration + tracking s | share |")
    print("|---|---|---|---|---|---|---|")
    for cid, runs, trials, wall, train, rest in rows:
        print(
            f"| {cid} | {runs} | {trials} | {wall:.1f} | {train:.1f} | {rest:.1f} | {rest / wall:.0%} |"
        )
    wall_sum = sum(r[3] for r in rows)
    rest_sum = sum(r[5] for r in rows)
    print(
        f"| all | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | {wall_sum:.1f} | "
        f"{sum(r[4] for r in rows):.1f} | {rest_sum:.1f} | {rest_sum / max(wall_sum, 1e-9):.0%} |"
    )
    print(f"\ntotal wall time {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
