"""Replicate-stacked training against one-by-one training: samples/s per replicate seed.

R seeds of one configuration train either one after the other (R networks, R small train steps per
batch position) or stacked (:class:`models.stacked.StackedSequential`: one network with a leading
replicate axis, one batched matmul per layer). For each model, R ∈ {1, 3, 10} and batch size ∈
{1, 8, 32, 128, 512}, the two run in alternating timed blocks (``--repeats`` pairs after a
warm-up) so that a shared machine's drifts hit both alike; the table shows the median samples/s
(over all R replicates) of each and their ratio. Time is the process's CPU time
(``time.process_time``, 1 BLAS thread), not wall time: on a machine shared with other jobs a
block's wall time is its own cost plus whatever the scheduler gave to others, which depends on
the block's length (a short block more often runs undisturbed) and would favour the shorter one.

Models (float32, ReLU, softmax cross-entropy, SGD; random inputs, 10 classes):

* the digits MLP 64-100-10;
* the MLP 784-100-100-100-100-10 of ``benchmarks/zoo_vs_torch.py``.

Target (issue 13): stacked ≥ 2.5× at batch ≤ 8 with R = 10, and never slower than unstacked. The
"harness" column is what a sweep does: it stacks only when :func:`models.stacked.stacking_pays`
says so (R ≥ 2 and the per-step work small enough), and trains unstacked otherwise (ratio 1 by
construction).

Usage::

    python benchmarks/replicates.py            # full table (a few minutes)
    python benchmarks/replicates.py --quick    # fewer repeats
    python benchmarks/replicates.py --quick --models "MLP 784-100x4-10" --replicates 10 --batches 1,8
    git worktree add --detach ../base main   # then, before and after in one run:
    python benchmarks/replicates.py --quick --replicates 10 --batches 1,8 --baseline ../base

``--baseline ROOT`` loads ``ROOT/models`` (another checkout's model code) as a second package and
times its stacked step too, in the same alternating blocks: a change's before and after measured
under the same load.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import models
import models.stacked
from models.stacked import stacking_pays

MODELS = {"digits MLP 64-100-10": (64, [100]), "MLP 784-100x4-10": (784, [100, 100, 100, 100])}
REPLICATES = (1, 3, 10)
BATCHES = (1, 8, 32, 128, 512)
N_CLASSES = 10
# each timed block trains about this many samples per replicate (blocks of ~0.1-0.5 s)
BLOCK_SAMPLES = {"digits MLP 64-100-10": 4096, "MLP 784-100x4-10": 2048}


def _net(d_in: int, hidden: list[int], seed: int, pkg: ModuleType = models) -> Any:
    """The benchmark's MLP, built with package ``pkg`` (``models`` or a baseline's copy)."""
    layers = []
    for width in hidden:
        layers += [pkg.LAYERS.build({"name": "dense", "units": width}), pkg.LAYERS.build("relu")]
    layers.append(pkg.LAYERS.build({"name": "dense", "units": N_CLASSES}))
    return pkg.Sequential(layers).build((d_in,), rng=np.random.default_rng(seed), dtype=np.float32)


def load_baseline(root: Path) -> ModuleType:
    """``root/models`` imported as the package ``models_baseline`` (its imports are relative)."""
    init = root / "models" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "models_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None
    assert spec.loader is not None
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["models_baseline"] = pkg
    spec.loader.exec_module(pkg)
    importlib.import_module("models_baseline.stacked")
    return pkg


def steppers(
    d_in: int, hidden: list[int], R: int, batch: int, baseline: ModuleType | None = None
) -> dict[str, Callable[[int], None]]:
    """``{"unstacked": f, "stacked": f}`` (and ``"baseline"``, the baseline package's stacked
    step, when given): ``f(steps)`` trains every replicate ``steps`` steps."""
    rng = np.random.default_rng(0)
    n = max(4 * batch, 512)
    X = rng.standard_normal((R, n, d_in), dtype=np.float32)
    T = rng.integers(0, N_CLASSES, size=(R, n))
    nets = [_net(d_in, hidden, s) for s in range(R)]
    opts = [models.OPTIMIZERS.build({"name": "sgd", "lr": 0.01}) for _ in range(R)]
    stack = models.stacked.StackedSequential([_net(d_in, hidden, s) for s in range(R)])
    sopt = models.OPTIMIZERS.build({"name": "sgd", "lr": 0.01})
    starts = list(range(0, n - batch + 1, batch))

    def unstacked(steps: int) -> None:
        for k in range(steps):
            a = starts[k % len(starts)]
            for r in range(R):
                nets[r].train_step(X[r, a : a + batch], T[r, a : a + batch], opts[r])

    def stacked(steps: int) -> None:
        for k in range(steps):
            a = starts[k % len(starts)]
            stack.train_step(X[:, a : a + batch], T[:, a : a + batch], sopt)

    runs: dict[str, Callable[[int], None]] = {"unstacked": unstacked, "stacked": stacked}
    if baseline is not None:
        bnets = [_net(d_in, hidden, s, baseline) for s in range(R)]
        bstack = baseline.stacked.StackedSequential(bnets)
        bopt = baseline.OPTIMIZERS.build({"name": "sgd", "lr": 0.01})

        def baseline_stacked(steps: int) -> None:
            for k in range(steps):
                a = starts[k % len(starts)]
                bstack.train_step(X[:, a : a + batch], T[:, a : a + batch], bopt)

        runs["baseline"] = baseline_stacked
    return runs


def compare(runs: dict[str, Callable[[int], None]], steps: int, repeats: int) -> dict[str, float]:
    """Median CPU seconds per step of each run, from alternating blocks after a warm-up."""
    for run in runs.values():
        run(max(2, steps // 4))
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            t0 = time.process_time()
            run(steps)
            times[key].append((time.process_time() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def _load() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def _positive_ints(parser: argparse.ArgumentParser, flag: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        parser.error(f"{flag}: {text!r} is not a comma-separated list of positive integers")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5 repeats, half-size blocks")
    parser.add_argument("--repeats", type=int, default=None, help="alternating block pairs")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    parser.add_argument(
        "--replicates", default=",".join(map(str, REPLICATES)), help="comma-separated R values"
    )
    parser.add_argument(
        "--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a checkout root whose models/ is also timed stacked (before/after in one run)",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "models" / "__init__.py").is_file():
        parser.error(f"--baseline: {str(args.baseline)!r} has no models/__init__.py")
    names = args.models.split(",")
    for name in names:
        if name not in MODELS:
            parser.error(f"--models: unknown model {name!r}; choose from {', '.join(MODELS)}")
    replicates = _positive_ints(parser, "--replicates", args.replicates)
    batches = _positive_ints(parser, "--batches", args.batches)
    repeats = args.repeats or (5 if args.quick else 9)
    scale = 0.5 if args.quick else 1.0
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {args.threads} BLAS thread(s)"
    )
    print(f"load average at start: {_load()} (other processes on the machine skew the timings)")
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    rows = []
    with threadpool_limits(limits=args.threads):
        for name in names:
            d_in, hidden = MODELS[name]
            for batch in batches:
                for R in replicates:
                    runs = steppers(d_in, hidden, R, batch, baseline)
                    steps = max(3, int(BLOCK_SAMPLES[name] * scale) // batch)
                    med = compare(runs, steps, repeats)
                    ratio = med["unstacked"] / med["stacked"]
                    pays = stacking_pays(R, batch, [d_in, *hidden, N_CLASSES])
                    rows.append(
                        [
                            name,
                            str(R),
                            str(batch),
                            f"{R * batch / med['unstacked']:,.0f}",
                            f"{R * batch / med['stacked']:,.0f}",
                            f"{ratio:.2f}",
                            "stacked" if pays else "unstacked",
                            f"{ratio if pays else 1.0:.2f}",
                        ]
                    )
                    if baseline is not None:
                        base = med["unstacked"] / med["baseline"]
                        rows[-1] += [f"{R * batch / med['baseline']:,.0f}", f"{base:.2f}"]
                    print(" | ".join(rows[-1]), flush=True)
    print(f"load average at end: {_load()}\n")
    header = [
        "model",
        "R",
        "batch",
        "unstacked samples/s",
        "stacked samples/s",
        "stacked/unstacked",
        "harness trains",
        "harness speed-up",
    ]
    if baseline is not None:
        header += ["baseline stacked samples/s", "baseline stacked/unstacked"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
