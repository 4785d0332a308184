"""What per-step telemetry costs a trial: ``train.telemetry: true`` against ``"init"`` (issue 13).

``true`` records the per-layer statistics at initialization (epoch 0) and averaged over every
training step; ``"init"`` records epoch 0 only. One ``mse_vs_ce`` trial as the sweep runs it:
6 seeds of the digits MLP 64-100-10 (ReLU, He), SGD lr 0.1, batch 32, stacked
(:class:`harness.train.StackedTrainer`) and one by one, cross-entropy and MSE on the softmax.
The two settings alternate (``--repeats`` pairs, after a warm-up), timed by CPU time
(``time.process_time``, 1 BLAS thread) so that other jobs on a shared machine do not count;
the table shows the median of each and their ratio.

Usage::

    python -m benchmarks.telemetry_cost               # 100 epochs, 2 pairs (about 1 min)
    python -m benchmarks.telemetry_cost --epochs 20   # a quicker look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from threadpoolctl import threadpool_limits

from benchmarks.trial_costs import _config
from harness.experiment import build_run
from harness.train import StackedTrainer

LOSSES: dict[str, Any] = {
    "cross-entropy": "cross_entropy",
    "MSE on the softmax": {"name": "mse", "output": "softmax"},
}
SEEDS = range(6)


def trial_cpu(telemetry: bool | str, loss: Any, epochs: int, *, stacked: bool) -> float:
    """CPU seconds to train the 6 seeds of one trial (building the runs is not timed)."""
    trainers = [build_run(_config(s, loss, epochs, telemetry)).trainer for s in SEEDS]
    t0 = time.process_time()
    if stacked:
        StackedTrainer(trainers).run()
    else:
        for t in trainers:
            t.run()
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating pairs (default 2)")
    args = parser.parse_args(argv)
    print(f"load average at start: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| trial | telemetry: true (CPU s) | init (CPU s) | init / true |")
    print("|---|---:|---:|---:|")
    with threadpool_limits(limits=1):
        trial_cpu(True, "cross_entropy", 2, stacked=True)  # warm-up: data cache, imports
        for stacked in (True, False):
            for name, loss in LOSSES.items():
                times: dict[Any, list[float]] = {True: [], "init": []}
                for _ in range(args.repeats):
                    for telemetry in (True, "init"):
                        times[telemetry].append(
                            trial_cpu(telemetry, loss, args.epochs, stacked=stacked)
                        )
                full, init = statistics.median(times[True]), statistics.median(times["init"])
                how = "stacked" if stacked else "unstacked"
                print(
                    f"| {how}, {name} | {full:.2f} | {init:.2f} | {init / full:.2f} |", flush=True
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
