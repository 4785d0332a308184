"""Sweep throughput and orchestration overhead (issue: studies).

Runs the same 20-trial study (quasi-random design, so both runs train exactly the same trials)
with ``--jobs 1`` and ``--jobs 2`` in one process, each into a fresh temporary MLflow store and
Optuna journal, and prints:

- throughput: trials per minute and the jobs-2 / jobs-1 speed-up (target >= 1.8x on 2 cores);
- overhead per trial: in the jobs-1 run, where nothing overlaps, the trial loop's wall time minus
  the trials' own training time (measured inside the trial), divided by the number of trials:
  asking Optuna, creating and filling the MLflow runs, telling Optuna, the ledger, dispatch.
  Shown as a share of the mean trial time (target < 5 % of a 2-second trial). The one-off costs
  of a sweep (set-up: data check, MLflow experiment and parent run, the design; wrap-up: trial
  table, summary) are printed separately.

Usage: ``python benchmarks/sweep_throughput.py [--trials 20] [--epochs 56]``
(``--epochs`` sets the trial length; the default gives about 2 s per trial on one core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def study_raw(n_trials: int, epochs: int) -> dict:
    return {
        "name": "bench_sweep",
        "seed": 0,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [256, 256], "activation": "relu"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.05}, "batch_size": 32, "epochs": epochs},
        "objective": {"metric": "val/accuracy", "direction": "maximize"},
        "search": {
            "sampler": {"name": "qmc"},
            "n_trials": n_trials,
            "params": {
                "train.optimizer.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
                "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
            },
        },
    }


def run(jobs: int, n_trials: int, epochs: int, root: Path) -> dict:
    from harness.study.runner import run_sweep
    from harness.study.spec import parse_study

    spec = parse_study(study_raw(n_trials, epochs))
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    result = run_sweep(
        spec,
        jobs=jobs,
        storage=f"journal://{root / 'study.journal'}",
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        ledger_dir=root / "ledger",
        progress=False,
        plots=False,
        log_models="none",
    )
    wall = time.perf_counter() - t0
    trial_times = [e["wall_time_s"] for e in result.entries]
    return {
        "jobs": jobs,
        "wall": wall,
        "timings": result.timings,
        "trials": len(result.entries),
        "trial_mean": statistics.mean(trial_times),
        "trial_sum": sum(trial_times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=56)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("HARNESS_DATA_DIR", str(Path(tmp) / "data"))
        # warm the MLflow schema creation and imports outside the timed runs
        from harness.tracking import Tracker

        Tracker(f"sqlite:///{Path(tmp) / 'warm.db'}").experiment("warm")
        one = run(1, args.trials, args.epochs, Path(tmp) / "jobs1")
        two = run(2, args.trials, args.epochs, Path(tmp) / "jobs2")
    cores = os.cpu_count()
    print(f"sweep of {args.trials} trials ({args.epochs} epochs each) on {cores} cores")
    print()
    print("| jobs | wall (s) | trials/min | mean trial (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for r in (one, two):
        speed = one["wall"] / r["wall"]
        print(
            f"| {r['jobs']} | {r['wall']:.1f} | {60 * r['trials'] / r['wall']:.1f} "
            f"| {r['trial_mean']:.2f} | {speed:.2f}x |"
        )
    t = one["timings"]
    overhead = (t["trials_s"] - one["trial_sum"]) / one["trials"]
    share = overhead / one["trial_mean"]
    print()
    print(
        f"orchestration + tracking overhead per trial (jobs 1): {overhead * 1000:.0f} ms "
        f"= {100 * share:.1f} % of a {one['trial_mean']:.2f} s trial (target < 5 %); "
        f"of which driver bookkeeping {1000 * t['driver_s'] / one['trials']:.0f} ms"
    )
    print(
        f"one-off per sweep: set-up {t['setup_s']:.1f} s, wrap-up {t['wrapup_s']:.1f} s "
        "(not per trial)"
    )
    print(f"speed-up jobs 2 / jobs 1: {one['wall'] / two['wall']:.2f}x (target >= 1.8x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
