"""Per-claim wall time of ``harness reproduce``, split into training and orchestration + tracking.

Runs every claim (or ``--claims``) in a scratch directory (its own MLflow store, Optuna journals,
ledgers and run cache) and prints, per claim: the runs, the wall time and where it went.

* *training*: the summed wall time of the trials in their workers (``wall_time_s`` of each trial
  in the study ledgers: building the data and networks, training, evaluating), divided by the
  number of workers;
* *orchestration + tracking* (the issue's figure): the claim's wall time minus that. With
  ``--jobs 1`` (the default here) the split is exact; with more workers it also holds the time
  a worker sat idle (a sweep's last trial running alone, the driver busy between trials);
* *driver CPU*: the CPU seconds of this process itself, which is the driver (Optuna asks and
  tells, MLflow runs and metrics, verdicts, figures, reports); with ``--jobs 1`` it also holds the
  training, so the column is shown for ``--jobs`` ≥ 2 only;
* *worker CPU*: the trials' summed CPU seconds in their workers (``cpu_time_s`` in the ledgers).

So with 2 workers, *orchestration + tracking* ≈ driver CPU (work that competes with training for
the two cores) + idle worker time (the sweep's shape, not work).

Usage::

    python benchmarks/reproduce_times.py                 # every claim, quick budget, 1 worker
    python benchmarks/reproduce_times.py --jobs 2        # the catalogue's wall time on 2 cores
    python benchmarks/reproduce_times.py --no-stack --no-cache   # the same without the speed-ups
    # the same table from a finished `harness reproduce --all` (its folder: ./reports/index.json
    # and ./mlruns/ledger), without training anything again
    python benchmarks/reproduce_times.py --from-run . --jobs 2
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


def _training_seconds(ledger_root: Path, claim_id: str, budget: str) -> tuple[float, float, int]:
    """Summed trial wall time, summed trial CPU time and number of trials of a claim's studies."""
    total, cpu, trials = 0.0, 0.0, 0
    for study_dir in ledger_root.glob(f"claim-{claim_id}-*-{budget}"):
        for path in study_dir.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict) or "wall_time_s" not in entry:
                continue
            total += float(entry["wall_time_s"])
            cpu += float(entry.get("cpu_time_s", 0.0))
            trials += 1
    return total, cpu, trials


Row = tuple[str, int, int, float, float, float, float, float]


def _rows_from_run(root: Path, jobs: int) -> list[Row]:
    """The table's rows from a finished run's book index and ledgers (budget from the index)."""
    index = json.loads((root / "reports" / "index.json").read_text())
    rows: list[Row] = []
    for c in index["claims"]:
        train, worker_cpu, trials = _training_seconds(
            root / "mlruns" / "ledger", c["claim"], c["budget"]
        )
        train /= max(jobs, 1)
        wall = float(c["wall_time_s"])
        driver = c.get("driver_cpu_s")
        driver = float("nan") if driver is None else float(driver)
        rows.append(
            (c["claim"], int(c["runs"]), trials, wall, train, wall - train, driver, worker_cpu)
        )
    return rows


def _print_table(rows: list[Row], jobs: int) -> int:
    multi = jobs >= 2

    def cpu(v: float) -> str:
        return f"{v:.1f}" if multi else "—"

    print(
        "| claim | runs | trials | wall s | training s | orchestration + tracking s | share "
        "| driver CPU s | driver CPU share | worker CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cid, runs, trials, wall, train, rest, driver, wcpu in rows:
        share = f"{driver / wall:.0%}" if multi else "—"
        print(
            f"| {cid} | {runs} | {trials} | {wall:.1f} | {train:.1f} | {rest:.1f} "
            f"| {rest / wall:.0%} | {cpu(driver)} | {share} | {wcpu:.1f} |"
        )
    wall_sum = sum(r[3] for r in rows)
    rest_sum = sum(r[5] for r in rows)
    driver_sum = sum(r[6] for r in rows)
    share = f"{driver_sum / max(wall_sum, 1e-9):.0%}" if multi else "—"
    print(
        f"| all | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | {wall_sum:.1f} | "
        f"{sum(r[4] for r in rows):.1f} | {rest_sum:.1f} | {rest_sum / max(wall_sum, 1e-9):.0%} "
        f"| {cpu(driver_sum)} | {share} | {sum(r[7] for r in rows):.1f} |"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", default=None, help="comma-separated claim ids (default all)")
    parser.add_argument("--budget", default="quick", choices=("quick", "full"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-stack", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument(
        "--from-run",
        default=None,
        metavar="DIR",
        help="read a finished `harness reproduce` run in DIR (reports/index.json, mlruns/ledger) "
        "instead of running the claims; --jobs must be the run's",
    )
    args = parser.parse_args(argv)
    if args.from_run:
        index = Path(args.from_run) / "reports" / "index.json"
        if not index.is_file():
            parser.error(
                f"--from-run {args.from_run}: no {index} (a `harness reproduce` of several claims writes it)"
            )
        return _print_table(_rows_from_run(Path(args.from_run), args.jobs), args.jobs)

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
            t0, cpu0 = time.perf_counter(), time.process_time()
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
            wall, driver = time.perf_counter() - t0, time.process_time() - cpu0
            ledgers = scratch / "mlruns" / "ledger"
            train, worker_cpu, trials = _training_seconds(ledgers, claim_id, args.budget)
            train /= max(args.jobs, 1)
            rows.append(
                (claim_id, result.n_runs, trials, wall, train, wall - train, driver, worker_cpu)
            )
            print(f"{claim_id}: {result.n_runs} runs, {wall:.1f} s", flush=True)
    total = time.perf_counter() - t_all
    print(f"load average at end: {_load()}\n")
    _print_table(rows, args.jobs)
    print(f"\ntotal wall time {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
