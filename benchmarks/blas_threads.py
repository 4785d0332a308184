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

For every shape, 1-thread and 2-thread blocks alternate (``--repeats`` rounds after a warm-up), so a
slow drift of a shared machine hits both alike; the table shows the best block of each (the cost
without interference) and the speed-up t(1 thread) / t(2 threads). It is measured twice: quiet,
and with a competing CPU-bound process (a pure-Python busy loop in a child process this script
starts, bounded by a deadline and stopped when the measurement ends), i.e. a laptop with other work
running. The crossover is the smallest size from which 2 threads are faster at every larger size
in the table.

Usage::

    python benchmarks/blas_threads.py            # about 1-2 minutes
    python benchmarks/blas_threads.py --quick    # fewer shapes and rounds (~20 s)

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
QUICK_SHAPES = ((32, 64, 100), (1257, 64, 100), (256, 256, 256), (2048, 784, 100))
#: each timed block lasts about this long on one thread
BLOCK_S = 0.02


@dataclass
class Row:
    batch: int
    n_in: int
    n_out: int
    t1: float  # best block time per layer step (3 GEMMs), 1 thread, seconds
    t2: float
    m1: float  # median block times
    m2: float

    @property
    def macs(self) -> int:
        return self.batch * self.n_in * self.n_out

    @property
    def speedup(self) -> float:
        return self.t1 / self.t2


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


def _block(
    reps: int, x: np.ndarray, W: np.ndarray, dout: np.ndarray, bufs: Sequence[np.ndarray]
) -> float:
    """Seconds per layer step, over ``reps`` steps."""
    t0 = time.perf_counter()
    for _ in range(reps):
        _layer_step(x, W, dout, bufs)
    return (time.perf_counter() - t0) / reps


def measure(
    shapes: Sequence[tuple[int, int, int]], repeats: int, controller: ThreadpoolController
) -> list[Row]:
    rng = np.random.default_rng(0)
    rows = []
    for batch, n_in, n_out in shapes:
        x = rng.standard_normal((batch, n_in), dtype=np.float32)
        W = rng.standard_normal((n_in, n_out), dtype=np.float32)
        dout = rng.standard_normal((batch, n_out), dtype=np.float32)
        bufs = (
            np.empty((batch, n_out), np.float32),
            np.empty((n_in, n_out), np.float32),
            np.empty((batch, n_in), np.float32),
        )

        with controller.limit(limits=1, user_api="blas"):
            one = _block(3, x, W, dout, bufs)
            reps = max(1, int(BLOCK_S / max(one, 1e-7)))
        times: dict[int, list[float]] = {1: [], 2: []}
        for threads in (1, 2):  # warm-up (thread pool start, caches)
            with controller.limit(limits=threads, user_api="blas"):
                _block(reps, x, W, dout, bufs)
        for _ in range(repeats):
            for threads in (1, 2):
                with controller.limit(limits=threads, user_api="blas"):
                    times[threads].append(_block(reps, x, W, dout, bufs))
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
    return sorted(rows, key=lambda r: r.macs)


def crossover(rows: Sequence[Row]) -> int | None:
    """The smallest size (MACs) from which 2 threads are faster at this and every larger size."""
    found = None
    for row in reversed(rows):  # from the largest size down
        if row.speedup <= 1.0:
            break
        found = row.macs
    return found


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(f"\n{title}\n")
    print(
        "| batch × in × out | MACs per GEMM | 1 thread µs | 2 threads µs | speed-up 1t/2t "
        "| medians µs (1t / 2t) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.batch} × {r.n_in} × {r.n_out} | {r.macs:,} | {r.t1 * 1e6:,.0f} | "
            f"{r.t2 * 1e6:,.0f} | {r.speedup:.2f} | {r.m1 * 1e6:,.0f} / {r.m2 * 1e6:,.0f} |"
        )
    x = crossover(rows)
    where = f"{x:,} MACs" if x is not None else "none in the table (2 threads never win)"
    print(f"\ncrossover ({title.split(':')[0]}): {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 shapes, 3 rounds")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7)")
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeats = args.repeats or (3 if args.quick else 7)
    controller = ThreadpoolController()
    blas = [i for i in controller.info() if i.get("user_api") == "blas"]
    lib = f"{blas[0]['internal_api']} {blas[0].get('version')}" if blas else "no BLAS found"
    print(
        f"{os.cpu_count()} cores, NumPy {np.__version__}, {lib}; one dense layer's training GEMMs "
        "(forward, dW, dx) in float32, time per layer step"
    )
    print(f"load average before the quiet run: {_loadavg()}")
    quiet = measure(shapes, repeats, controller)
    print(f"load average after the quiet run: {_loadavg()}")
    # bounded: the child stops by itself even if this process is killed
    with competing_process(seconds=600):
        busy = measure(shapes, repeats, controller)
        print(f"load average at the end of the busy run: {_loadavg()}")
    print_table("quiet: no other process started by this benchmark", quiet)
    print_table("busy: one competing CPU-bound process", busy)


if __name__ == "__main__":
    main()
