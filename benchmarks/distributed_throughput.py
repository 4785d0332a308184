"""Cooperating drivers on one study, and faults injected into drivers (issue 10).

Part 1, throughput: the same study (a quasi-random design of ``--trials`` short trials) run by
1, 2 and 4 ``harness sweep`` processes started together on one PostgreSQL storage (each with
``--jobs 1``, so N drivers are N trial processes), into one MLflow SQLite store. Prints trials/s
of the whole study (trials / wall time from the first start to the last exit), the ratio to one
driver, and checks the record: every design point once, none interrupted, one parent run.

Part 2, faults (``--faults K``): K times, a sweep on a journal file is SIGKILLed (the driver
and its workers) at a random moment of its run, then resumed; after the resume it counts
records lost (a design point without a COMPLETE trial, a FINISHED run and a ledger entry) and
double-counted (a design point with more than one), and runs left RUNNING.

Usage: ``python benchmarks/distributed_throughput.py [--trials 24] [--epochs 30] [--drivers 1 2 4]
[--faults 10] [--kill-window 40] [--storage postgresql://postgres@127.0.0.1:5432/test]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def study_raw(name: str, n_trials: int, epochs: int) -> dict:
    return {
        "name": name,
        "seed": 0,
        "data": {"name": "moons", "n_samples": 400},
        "model": {"name": "mlp", "hidden": [32, 32], "activation": "tanh"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": epochs},
        "objective": {"metric": "val/accuracy", "direction": "maximize"},
        "search": {
            "sampler": {"name": "qmc"},
            "n_trials": n_trials,
            "params": {
                "train.optimizer.lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True}
            },
        },
    }


def sweep_cmd(path: Path, root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "sweep",
        str(path),
        "--tracking-uri",
        f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        "--no-progress",
        "--no-plots",
        "--log-models",
        "none",
        *extra,
    ]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def record_counts(root: Path, name: str, storage: str, n_trials: int) -> dict[str, int]:
    """Design points lost / double-counted across Optuna, MLflow and the ledger."""
    import optuna
    from mlflow import MlflowClient

    from harness.study.storage import make_storage

    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    trials = [t for t in study.get_trials() if not t.user_attrs.get("interrupted")]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=10000)
    finished = {r.info.run_id for r in runs if r.info.status == "FINISHED"}
    ledger_dir = root / "mlruns" / "ledger" / name
    entries = [json.loads(p.read_text()) for p in ledger_dir.glob("trial-*.json")]
    by_point: dict[int, int] = {}
    full: dict[int, int] = {}
    ledger_runs = {e["run_id"] for e in entries if e.get("replicates")}
    for t in complete:
        i = int(t.user_attrs["design_index"])
        by_point[i] = by_point.get(i, 0) + 1
        if t.user_attrs.get("mlflow_run_id") in finished & ledger_runs:
            full[i] = full.get(i, 0) + 1
    return {
        "lost": sum(1 for i in range(n_trials) if full.get(i, 0) == 0),
        "double": sum(1 for i in range(n_trials) if by_point.get(i, 0) > 1),
        "interrupted": len(study.get_trials()) - len(trials),
        "running_runs": sum(1 for r in runs if r.info.status == "RUNNING"),
        "parents": sum(1 for r in runs if r.data.tags.get("harness.kind") == "study"),
    }


def throughput(drivers: int, n_trials: int, epochs: int, storage: str) -> dict:
    import optuna

    name = f"bench-drivers-{drivers}-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        root = Path(tmp)
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(study_raw(name, n_trials, epochs)))
        cmd = sweep_cmd(path, root, "--jobs", "1", "--storage", storage)
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                cmd,
                cwd=root,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(drivers)
        ]
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t0
        bad = [o for p, o in zip(procs, outs) if p.returncode != 0]
        if bad:
            raise SystemExit(f"a driver failed:\n{bad[0]}")
        counts = record_counts(root, name, storage, n_trials)
        optuna.delete_study(study_name=name, storage=storage)
    return {"drivers": drivers, "wall_s": wall, "trials_per_s": n_trials / wall, **counts}


def faults(k: int, n_trials: int, epochs: int, seed: int, window: float) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(k):
        name = f"bench-fault-{i}"
        with tempfile.TemporaryDirectory(prefix="bench-fault-") as tmp:
            root = Path(tmp)
            path = root / f"{name}.yaml"
            path.write_text(yaml.safe_dump(study_raw(name, n_trials, epochs)))
            cmd = sweep_cmd(path, root, "--jobs", "2")
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            delay = rng.uniform(1.0, window)  # some kills land in the start-up, some in wrap-up
            try:
                proc.wait(timeout=delay)
                killed = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
            resume = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True)
            from harness.study.storage import default_storage_url

            counts = record_counts(root, name, default_storage_url(name, root=root), n_trials)
            rows.append(
                {"kill_at_s": delay, "killed": killed, "resume_rc": resume.returncode, **counts}
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--drivers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--faults", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kill-window", type=float, default=40.0, help="kill at uniform(1, this) seconds"
    )
    parser.add_argument("--storage", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.drivers:
        rows = [throughput(d, args.trials, args.epochs, args.storage) for d in args.drivers]
        base = rows[0]["trials_per_s"]
        print(f"\n{args.trials} trials, {args.epochs} epochs each, storage {args.storage}")
        print(
            f"{'drivers':>7} {'wall s':>7} {'trials/s':>9} {'x 1':>5} {'lost':>5} {'double':>6} {'interr.':>7} {'parents':>7}"
        )
        for r in rows:
            print(
                f"{r['drivers']:>7} {r['wall_s']:>7.1f} {r['trials_per_s']:>9.2f} "
                f"{r['trials_per_s'] / base:>5.2f} {r['lost']:>5} {r['double']:>6} "
                f"{r['interrupted']:>7} {r['parents']:>7}"
            )
    if args.faults:
        rows = faults(args.faults, args.trials, args.epochs, args.seed, args.kill_window)
        print(f"\n{args.faults} SIGKILLs of a --jobs 2 driver at a random moment, then a resume")
        print(
            f"{'kill at s':>9} {'killed':>6} {'resume':>6} {'lost':>5} {'double':>6} {'interr.':>7} {'RUNNING':>7}"
        )
        for r in rows:
            print(
                f"{r['kill_at_s']:>9.1f} {r['killed']!s:>6} {r['resume_rc']:>6} {r['lost']:>5} "
                f"{r['double']:>6} {r['interrupted']:>7} {r['running_runs']:>7}"
            )
        print(
            f"total: {sum(r['killed'] for r in rows)} kills, "
            f"{sum(r['lost'] for r in rows)} records lost, "
            f"{sum(r['double'] for r in rows)} double-counted, "
            f"{sum(r['running_runs'] for r in rows)} runs left RUNNING"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
