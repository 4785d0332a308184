"""Cost of the zoo's accurate sigmoid against the former ``0.5·(1 + tanh(x/2))`` form (issue 14).

The tanh form loses relative precision below x ≈ −20 (1 + tanh cancels); the zoo now computes
``1 / (1 + exp(−x))``, accurate to ~2 ulp over float64's whole range. This script measures what
that costs, in one run, so that the ratios share the machine's state:

* the sigmoid alone on activation-sized arrays (float32 and float64);
* a whole training step of a sigmoid MLP 784-100-100-100-100-10 (softmax cross-entropy, SGD,
  float32, 1 BLAS thread), with the layers' sigmoid swapped between the implementations.

Implementations alternate in timed blocks (``--repeats`` rounds), so a slow drift of a shared
machine hits them alike; the tables show the best block of each (the cost without interference,
the steadiest statistic on a machine shared with other jobs) and the median in brackets. ``exp+clip`` is the variant without ``np.errstate`` (it clips
−x at log(max float) instead, which maps x below −709 to ~1e-308 rather than 0); it is shown
because ``np.errstate`` costs a few µs per call.

Usage::

    python benchmarks/sigmoid_cost.py            # about 30 s
    python benchmarks/sigmoid_cost.py --quick    # about 10 s
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import models.activations as activations
from models import OPTIMIZERS, build_network

Sigmoid = Callable[..., np.ndarray]


def sigmoid_tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The zoo's sigmoid before issue 14: ``0.5·(1 + tanh(x/2))``."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_exp_clip(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(min(−x, log(max))))``: no overflow, no errstate."""
    out = np.negative(x, out=out)
    np.minimum(out, np.log(np.finfo(out.dtype).max), out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


IMPLEMENTATIONS: dict[str, Sigmoid] = {
    "tanh (before)": sigmoid_tanh,
    "exp (zoo now)": activations.sigmoid,
    "exp+clip": sigmoid_exp_clip,
}


def _block_time(fn: Callable[[], object], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def bench_elementwise(repeats: int) -> None:
    print("\nsigmoid alone (µs per call: best block [median]):\n")
    names = list(IMPLEMENTATIONS)
    header = "| dtype | shape | " + " | ".join(names) + " | now / before |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for shape in ((32, 100), (128, 100), (512, 100), (1257, 100)):
            x = rng.normal(0, 4, shape).astype(dtype)
            out = np.empty_like(x)
            number = max(20, 200_000 // x.size)
            times: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(repeats):
                for name, fn in IMPLEMENTATIONS.items():
                    times[name].append(
                        _block_time(lambda fn=fn, x=x, out=out: fn(x, out=out), number)
                    )
            best = {n: min(v) * 1e6 for n, v in times.items()}
            med = {n: statistics.median(v) * 1e6 for n, v in times.items()}
            cells = " | ".join(f"{best[n]:.1f} [{med[n]:.1f}]" for n in names)
            ratio = best["exp (zoo now)"] / best["tanh (before)"]
            print(f"| {np.dtype(dtype).name} | {shape[0]}×{shape[1]} | {cells} | {ratio:.2f} |")


def bench_train_step(repeats: int, batches: list[int]) -> None:
    print(
        "\nsigmoid MLP 784-100-100-100-100-10 train step, float32, 1 thread "
        "(samples/s: best block [median]):\n"
    )
    names = list(IMPLEMENTATIONS)
    header = "| batch | " + " | ".join(names) + " | now / before (time) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    rng = np.random.default_rng(0)
    x_all = rng.normal(size=(8192, 784)).astype(np.float32)
    t_all = rng.integers(0, 10, size=8192)
    original = activations.sigmoid
    try:
        for batch in batches:
            net = build_network(
                {"name": "mlp", "hidden": [100] * 4, "activation": "sigmoid"},
                input_shape=(784,),
                n_outputs=10,
                rng=np.random.default_rng(1),
            )
            opt = OPTIMIZERS.build({"name": "sgd", "lr": 0.01})
            steps = max(10, 8192 // batch)

            def block(
                steps: int = steps, batch: int = batch, net: Any = net, opt: Any = opt
            ) -> None:
                for i in range(steps):
                    s = (i * batch) % (8192 - batch)
                    net.train_step(x_all[s : s + batch], t_all[s : s + batch], opt)

            rate: dict[str, list[float]] = {n: [] for n in names}
            for fn in IMPLEMENTATIONS.values():  # warm-up
                activations.sigmoid = fn
                block()
            for _ in range(repeats):
                for name, fn in IMPLEMENTATIONS.items():
                    activations.sigmoid = fn
                    t0 = time.perf_counter()
                    block()
                    rate[name].append(steps * batch / (time.perf_counter() - t0))
            best = {n: max(v) for n, v in rate.items()}
            med = {n: statistics.median(v) for n, v in rate.items()}
            cells = " | ".join(f"{best[n]:,.0f} [{med[n]:,.0f}]" for n in names)
            ratio = best["tanh (before)"] / best["exp (zoo now)"]
            print(f"| {batch} | {cells} | {ratio:.3f} |")
    finally:
        activations.sigmoid = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and batch sizes")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 15)")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 15)
    batches = [32, 128] if args.quick else [32, 128, 512]
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with threadpool_limits(limits=1, user_api="blas"):
        bench_elementwise(repeats)
        bench_train_step(repeats, batches)
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
