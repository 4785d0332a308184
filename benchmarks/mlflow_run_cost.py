"""What one MLflow run costs the driver, phase by phase, through the public API on a SQLite store.

A trial of R replicates is 1 + R MLflow runs (every replicate its own run, issue 13), each
created with its tags, sent its params and curves in one ``log_batch`` and terminated. This
times those three calls for ``--runs`` runs like a claim's replicate runs (``--params``
params, ``--metrics`` metric values over ``--series`` series, the curve policy's ~300-400 values
a run), in a scratch store, CPU time (``time.process_time``) and wall time, and prints the
median per run: the per-run floor that the driver pays whatever the training costs.

Usage::

    python benchmarks/mlflow_run_cost.py                 # 200 runs
    python benchmarks/mlflow_run_cost.py --metrics 0     # runs without curves: create + end only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--params", type=int, default=40)
    parser.add_argument("--metrics", type=int, default=350, help="metric values per run")
    parser.add_argument("--series", type=int, default=7, help="metric keys they spread over")
    args = parser.parse_args(argv)

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from harness.tracking import Tracker

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        Tracker(uri)  # the harness's store set-up (WAL, schema), as a sweep opens it
        client = MlflowClient(uri)
        exp = client.create_experiment("cost")
        parent = client.create_run(exp, tags={"harness.kind": "trial"}).info.run_id
        tags = {"mlflow.parentRunId": parent, "seed": "0", "status": "running"}
        params = [Param(f"p.{i}", str(i)) for i in range(args.params)]
        per_key = max(1, args.metrics // max(args.series, 1))
        phases: dict[str, list[tuple[float, float]]] = {
            "create_run": [],
            "log_batch": [],
            "set_terminated": [],
        }

        def timed(name: str, fn):  # type: ignore[no-untyped-def]
            w, c = time.perf_counter(), time.process_time()
            out = fn()
            phases[name].append((time.process_time() - c, time.perf_counter() - w))
            return out

        for r in range(args.runs):
            run_id = timed("create_run", lambda: client.create_run(exp, tags=tags).info.run_id)
            now = int(time.time() * 1000)
            metrics = [
                Metric(f"m{k}", float(s + r), now, s)
                for k in range(args.series if args.metrics else 0)
                for s in reversed(range(per_key))
            ]
            timed("log_batch", partial(client.log_batch, run_id, metrics=metrics, params=params))
            timed("set_terminated", partial(client.set_terminated, run_id, "FINISHED"))

    print(
        f"{args.runs} runs, {args.params} params and {per_key * args.series if args.metrics else 0} "
        f"metric values each (median per run)\n"
    )
    print("| call | CPU ms | wall ms |")
    print("|---|---:|---:|")
    total_c = total_w = 0.0
    for name, xs in phases.items():
        c = statistics.median(x[0] for x in xs) * 1e3
        w = statistics.median(x[1] for x in xs) * 1e3
        total_c, total_w = total_c + c, total_w + w
        print(f"| `{name}` | {c:.1f} | {w:.1f} |")
    print(f"| one run | {total_c:.1f} | {total_w:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
