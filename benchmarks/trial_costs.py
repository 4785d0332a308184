"""What one trial of a claim costs: its stacked training (steps and per-epoch evaluation) and the
driver's work around it (Optuna, MLflow, ledger).

Two measurements of the ``mse_vs_ce`` shape (digits, the 64-100-10 ReLU MLP, SGD batch 32, per-layer
telemetry on, 6 replicate seeds trained stacked):

* **trainer**: CPU time (``time.process_time``, 1 BLAS thread) of one :class:`StackedTrainer` run
  per loss (cross-entropy, MSE on the softmax), ``--epochs`` epochs, best of ``--repeats``;
* **driver**: a 9-trial grid sweep (3 losses × 3 learning rates, ``--epochs`` epochs, ``--jobs
  1``, a scratch MLflow store and journal): the mean wall time per trial of the runner's
  ``_start_trial`` + ``_finish_trial`` (the trial's MLflow run, its 6 replicate runs with their
  curves, Optuna's tell, the ledger), against the trial's own training time (its ``wall_time_s``),
  and the metric values the sweep left in the MLflow store (counted through
  ``MlflowClient.get_metric_history``).

``--curve-points`` sets ``$HARNESS_CURVE_POINTS`` (the MLflow curve policy of
:mod:`harness.tracking`; a tree without it ignores it). ``--skip-trainer`` measures the driver
only.

The script measures whatever ``harness`` and ``models`` it imports, so two trees compare under
one load by alternating runs of this file with ``PYTHONPATH`` set to each (``benchmarks/README.md``).

Usage::

    python benchmarks/trial_costs.py                  # 15-epoch trainer runs, 30-epoch sweep
    PYTHONPATH=/path/to/other/tree python benchmarks/trial_costs.py
    python benchmarks/trial_costs.py --skip-trainer --sweep-epochs 100 --curve-points all
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOSSES: list[Any] = [
    "cross_entropy",
    {"name": "mse", "output": "softmax"},
    {"name": "mse", "output": "identity"},
]


def _config(seed: int, loss: Any, epochs: int, telemetry: bool | str = True) -> dict[str, Any]:
    """The digits MLP trial both this and ``telemetry_cost.py`` time (6 seeds of it a trial)."""
    return {
        "seed": seed,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [100], "activation": "relu", "init": "he_normal"},
        "train": {
            "loss": loss,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "batch_size": 32,
            "epochs": epochs,
            "telemetry": telemetry,
        },
    }


def trainer_seconds(epochs: int, repeats: int) -> list[float]:
    """Best CPU seconds of a 6-replicate StackedTrainer run, per loss (the first two)."""
    from threadpoolctl import threadpool_limits

    from harness.experiment import build_run
    from harness.runconfig import resolve_run_config
    from harness.train import StackedTrainer

    out = []
    with threadpool_limits(limits=1, user_api="blas"):
        for loss in LOSSES[:2]:
            best = float("inf")
            for _ in range(repeats):
                configs = [resolve_run_config(_config(s, loss, epochs)) for s in range(6)]
                trainers = [build_run(c, resolved=True).trainer for c in configs]
                t0 = time.process_time()
                StackedTrainer(trainers).run()
                best = min(best, time.process_time() - t0)
            out.append(best)
    return out


def _timed(spent: dict[str, float], name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0
            spent["cpu"] += time.thread_time() - c0

    return wrapper


def metric_rows(tracking_uri: str) -> tuple[int, int]:
    """(metric values stored, runs) of every run in the store, through the public client."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    rows = n_runs = 0
    for run in client.search_runs(experiments, max_results=10_000):
        n_runs += 1
        rows += sum(len(client.get_metric_history(run.info.run_id, k)) for k in run.data.metrics)
    return rows, n_runs


def driver_seconds(epochs: int) -> tuple[float, float, float, int, int, int]:
    """(driver wall s, driver CPU s, training s: per trial; trials; metric values; runs) of a
    9-trial sweep, jobs 1.

    The driver's CPU time (its thread's, ``time.thread_time``: the MLflow store is SQLite in
    this process) is what a loaded machine distorts least."""
    from harness.study import runner
    from harness.study.spec import parse_study

    raw = {
        "name": "trial_costs",
        "description": "benchmarks/trial_costs.py",
        **{k: v for k, v in _config(0, "cross_entropy", epochs).items() if k != "seed"},
        "seed": 0,
        "objective": {"metric": "val/accuracy", "direction": "maximize", "reduce": "best"},
        "search": {
            "sampler": {"name": "grid"},
            "params": {
                "train.loss": {"type": "categorical", "choices": LOSSES, "role": "scientific"},
                "train.optimizer.lr": {
                    "type": "categorical",
                    "choices": [0.03, 0.1, 0.3],
                    "role": "nuisance",
                },
            },
        },
        "replicates": 6,
    }
    spec = parse_study(raw)
    spent = {"start": 0.0, "finish": 0.0, "cpu": 0.0}
    cls = runner.SweepRunner
    originals = cls._start_trial, cls._finish_trial
    cls._start_trial = _timed(spent, "start", cls._start_trial)  # type: ignore[method-assign]
    cls._finish_trial = _timed(spent, "finish", cls._finish_trial)  # type: ignore[method-assign]
    cwd = os.getcwd()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)
            uri = f"sqlite:///{Path(tmp) / 'mlruns' / 'mlflow.db'}"
            runner.run_sweep(
                spec, jobs=1, log_models="none", progress=False, plots=False, tracking_uri=uri
            )
            rows, n_runs = metric_rows(uri)
            train, trials = 0.0, 0
            for path in Path(tmp, "mlruns", "ledger").rglob("*.json"):
                entry = json.loads(path.read_text())
                if isinstance(entry, dict) and "wall_time_s" in entry:
                    train += float(entry["wall_time_s"])
                    trials += 1
    finally:
        os.chdir(cwd)
        cls._start_trial, cls._finish_trial = originals  # type: ignore[method-assign]
    n = max(trials, 1)
    wall, cpu = (spent["start"] + spent["finish"]) / n, spent["cpu"] / n
    return wall, cpu, train / n, trials, rows, n_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=15, help="trainer epochs (default 15)")
    parser.add_argument("--sweep-epochs", type=int, default=30, help="sweep epochs (default 30)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-trainer", action="store_true", help="the driver sweep only")
    parser.add_argument(
        "--curve-points", default=None, help="sets $HARNESS_CURVE_POINTS (an int or 'all')"
    )
    args = parser.parse_args(argv)
    if args.curve_points is not None:
        os.environ["HARNESS_CURVE_POINTS"] = args.curve_points

    import harness

    tree = str(Path(harness.__file__).resolve().parent.parent)
    print(f"tree: {tree}; load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if not args.skip_trainer:
        ce, mse = trainer_seconds(args.epochs, args.repeats)
        print(
            f"trainer, 6 replicates x {args.epochs} epochs: cross_entropy {ce:.3f} s, "
            f"mse {mse:.3f} s"
        )
    driver, cpu, train, trials, rows, n_runs = driver_seconds(args.sweep_epochs)
    print(
        f"driver, {trials} trials x 6 replicates x {args.sweep_epochs} epochs: "
        f"{driver * 1000:.0f} ms per trial ({cpu * 1000:.0f} ms CPU) around {train:.2f} s of "
        f"training ({driver / (driver + train):.0%}); {rows} metric values in {n_runs} runs "
        f"({rows / max(n_runs, 1):.0f} per run)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
