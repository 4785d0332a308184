"""1 against 2 BLAS threads for the GEMMs of our MLP layers, quiet and next to a busy process.

Why (issue 14): ``harness sweep --jobs 1`` used to give its single worker ``cores // jobs`` = 2
OpenBLAS threads, and for the digits MLP two threads made the matmuls slower, up to 14× on a
machine with other work running. This script measures where a second thread starts to pay off,
which is the crossover :mod:`harness.threads` uses (``SINGLE_THREAD_BELOW_MACS``).

What is timed: one dense layer's training GEMMs at float32 (the zoo's default dtype) — the forward
``x·W`` (batch × in)·(in × out), the weight gradient ``xᵀ·dout`` and the input gradient
``dout·Wᵀ``. All three have the same size m·k·n = batch·in·out multiply-adds ("MACs"), the
number the thread choice looks at. The shapes are those of our studies' layers (digits 64-100-10,
MNIST-1D 40-256-256, MNIST 784-100 and 784-1000) at training batches 32-512 and at the evaluation
batches (1257 = all of digits' training split, 2048 = ``eval_batch_size``).

For every shape the thread count switches between single steps (1, 2, 2, 1, ... for about
``--budget`` seconds per shape), each step timed on its own, so the load of a shared machine hits
both counts alike. The table shows the median step time of each count, their ratio t(1 thread) /
t(2 threads) (> 1: the second thread pays off), and the best step of each (the cost without
interference). It is measured twice: quiet, and with a competing CPU-bound process (a pure-Python
busy loop in a child process this script starts, bounded by a deadline and stopped when the
measurement ends), i.e. a laptop with other work running. The crossover is the smallest size
from which 2 threads are faster (ratio >= 1.05) at every larger size in the table; it is printed
from the median steps (typical, including the machine's other load) and from the best steps (the
cost without interference: the quiet crossover a dedicated machine has).

Usage::

    python benchmarks/blas_threads.py            # about 1.5 minutes
    python benchmarks/blas_threads.py --quick    # 4 shapes, 1 s each (~10 s)

Timings on a machine shared with other jobs are noisy: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

#: (batch, in, out) of the layers our studies train, at training and evaluation batch sizes
SHAPES: tuple[tuple[int, int, int], ...] = (
    (32, 40, 100),  # MNIST-1D, first layer, batch 32
    (32, 64, 100),  # digits, first layer, batch 32
    (32, 100, 100),  # digits, a hidden layer, batch 32
    (128, 64, 100),
    (128, 100, 100),
    (32, 784, 100),  # MNIST, first layer, batch 32
    (512, 100, 100),
    (1257, 64, 100),  # digits, first layer, evaluation of the whole training split (issue 14)
    (128, 784, 100),
    (256, 256, 256),  # MNIST-1D [256, 256], batch 256
    (512, 784, 100),
    (2048, 256, 256),  # MNIST-1D, evaluation batch
    (2048, 784, 100),  # MNIST, evaluation batch
    (512, 784, 1000),
)
#: a median ratio t(1 thread) / t(2 threads) from which the second thread counts as a win
#: (below it the two are within this benchmark's noise, and 1 thread is the safer choice)
WIN = 1.05
QUICK_SHAPES = ((32, 64, 100), (1257, 64, 100), (256, 256, 256), (2048, 784, 100))


@dataclass
class Row:
    batch: int
    n_in: int
    n_out: int
    t1: float  # best step time (3 GEMMs), 1 thread, seconds
    t2: float
    m1: float  # median step times
    m2: float

    @property
    def macs(self) -> int:
        return self.batch * self.n_in * self.n_out

    @property
    def speedup(self) -> float:
        """Median t(1 thread) / t(2 threads)."""
        return self.m1 / self.m2


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


@contextmanager
def competing_process(seconds: float) -> Iterator[None]:
    """A CPU-bound child process (busy loop) for the duration of the block, at most ``seconds``."""
    code = (
        "import time\n"
        f"end = time.monotonic() + {seconds!r}\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.2)  # let it get on a core
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _layer_step(x: np.ndarray, W: np.ndarray, dout: np.ndarray, bufs: Sequence[np.ndarray]) -> None:
    out, dW, dx = bufs
    np.dot(x, W, out=out)
    np.dot(x.T, dout, out=dW)
    np.dot(dout, W.T, out=dx)


def measure(
    shapes: Sequence[tuple[int, int, int]], budget_s: float, controller: ThreadpoolController
) -> list[Row]:
    """Time every shape on 1 and 2 threads, switching the thread count between single steps.

    Steps alternate in the pattern 1, 2, 2, 1 (so a linear drift of the machine's load cancels)
    for about ``budget_s`` seconds per shape (between 4 and 200 steps per thread count);
    each step is timed on its own.
    """
    (blas,) = controller.select(user_api="blas").lib_controllers[:1]
    original = blas.num_threads
    rng = np.random.default_rng(0)
    rows = []
    try:
        for batch, n_in, n_out in shapes:
            x = rng.standard_normal((batch, n_in), dtype=np.float32)
            W = rng.standard_normal((n_in, n_out), dtype=np.float32)
            dout = rng.standard_normal((batch, n_out), dtype=np.float32)
            bufs = (
                np.empty((batch, n_out), np.float32),
                np.empty((n_in, n_out), np.float32),
                np.empty((batch, n_in), np.float32),
            )
            times: dict[int, list[float]] = {1: [], 2: []}
            for threads in (1, 2, 1, 2):  # warm-up: thread pool, caches
                blas.set_num_threads(threads)
                t0 = time.perf_counter()
                _layer_step(x, W, dout, bufs)
                times[threads].append(time.perf_counter() - t0)
            per_step = min(times[1])
            rounds = int(min(100, max(2, budget_s / (4 * max(per_step, 1e-6)))))
            times = {1: [], 2: []}
            for _ in range(rounds):
                for threads in (1, 2, 2, 1):
                    blas.set_num_threads(threads)
                    t0 = time.perf_counter()
                    _layer_step(x, W, dout, bufs)
                    times[threads].append(time.perf_counter() - t0)
            rows.append(
                Row(
                    batch,
                    n_in,
                    n_out,
                    t1=min(times[1]),
                    t2=min(times[2]),
                    m1=statistics.median(times[1]),
                    m2=statistics.median(times[2]),
                )
            )
    finally:
        blas.set_num_threads(original)
    return sorted(rows, key=lambda r: r.macs)


def crossover(rows: Sequence[Row], *, best: bool = False) -> int | None:
    """The smallest size (MACs) from which 2 threads win (ratio >= WIN) at it and every larger
    size, by median step times (or by best ones); None when the largest size is not a win."""
    found = None
    for row in reversed(rows):  # from the largest size down
        ratio = row.t1 / row.t2 if best else row.speedup
        if ratio < WIN:
            break
        found = row.macs
    return found


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(f"\n{title}\n")
    print(
        "| batch × in × out | MACs per GEMM | 1 thread µs | 2 threads µs | 1t / 2t "
        "| best µs (1t / 2t) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.batch} × {r.n_in} × {r.n_out} | {r.macs:,} | {r.m1 * 1e6:,.0f} | "
            f"{r.m2 * 1e6:,.0f} | {r.speedup:.2f} | {r.t1 * 1e6:,.0f} / {r.t2 * 1e6:,.0f} |"
        )
    label = title.split(":")[0]
    for stat, best in (("median", False), ("best", True)):
        x = crossover(rows, best=best)
        where = f"{x:,} MACs" if x is not None else "none (2 threads do not win at the largest)"
        print(f"crossover ({label}, {stat} steps): {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 shapes, 1 s each")
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds per shape and condition (default 3)"
    )
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    budget = args.budget or (1.0 if args.quick else 3.0)
    controller = ThreadpoolController()
    blas = [i for i in controller.info() if i.get("user_api") == "blas"]
    lib = f"{blas[0]['internal_api']} {blas[0].get('version')}" if blas else "no BLAS found"
    print(
        f"{os.cpu_count()} cores, NumPy {np.__version__}, {lib}; one dense layer's training GEMMs "
        "(forward, dW, dx) in float32, time per layer step"
    )
    print(f"load average before the quiet run: {_loadavg()}")
    quiet = measure(shapes, budget, controller)
    print(f"load average after the quiet run: {_loadavg()}")
    # bounded: the child stops by itself even if this process is killed
    with competing_process(seconds=600):
        busy = measure(shapes, budget, controller)
        print(f"load average at the end of the busy run: {_loadavg()}")
    print_table("quiet: no other process started by this benchmark", quiet)
    print_table("busy: one competing CPU-bound process", busy)


if __name__ == "__main__":
    main()
