"""Where a stacked step of the 784-100×4-10 MLP spends its time, and the speed-up bound it implies.

For R replicates at each batch size, in alternating timed blocks of one run (CPU time, 1 BLAS
thread, as ``benchmarks/replicates.py``):

* ``unstacked`` and ``stacked``: the two steps of ``replicates.py``;
* ``kernels``: the stacked step's BLAS and ufunc calls alone, on arrays of the step's shapes
  (5 forward GEMMs, 5 weight-gradient GEMMs, 4 input-gradient GEMMs, the SGD update's two
  passes); any stacked step that keeps one GEMM per replicate and layer pays at least this;
* ``calls``: the stacked step of a toy MLP of the same depth (16-16×4-10), i.e. the step's
  NumPy calls with next to no arithmetic;
* ``chunks of c``: the R replicates as R/c separate stacks of c, stepped one after the other
  (the cache-locality idea: a chunk's weights and gradients fit in L2).

``unstacked / (kernels + calls)`` bounds the speed-up of a stacked step built from these calls.

Usage::

    python -m benchmarks.stack_floor                 # R = 10, batch 1 and 8
    python -m benchmarks.stack_floor --batches 1 --chunks 1,2,5
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

import models
from benchmarks.replicates import MODELS, N_CLASSES, _net, compare, steppers

MODEL = "MLP 784-100x4-10"
LR = 1e-3  # small, so that repeated updates of the kernel arrays stay finite


def kernel_step(R: int, batch: int) -> Callable[[int], None]:
    """The stacked step's GEMMs and SGD update on arrays of its shapes (float32)."""
    d_in, hidden = MODELS[MODEL]
    dims = [d_in, *hidden, N_CLASSES]
    rng = np.random.default_rng(0)
    n_w = sum(a * b for a, b in itertools.pairwise(dims))
    P = rng.standard_normal((R, n_w), dtype=np.float32) * 0.01
    G = np.zeros_like(P)
    Ws, Gs, o = [], [], 0
    for a, b in itertools.pairwise(dims):
        Ws.append(P[:, o : o + a * b].reshape(R, a, b))
        Gs.append(G[:, o : o + a * b].reshape(R, a, b))
        o += a * b
    n = max(4 * batch, 512)
    X = rng.standard_normal((R, n, d_in), dtype=np.float32)
    hs = [rng.standard_normal((R, batch, a), dtype=np.float32) for a in dims[1:-1]]
    ds = [rng.standard_normal((R, batch, b), dtype=np.float32) * 1e-3 for b in dims[1:]]
    outs = [np.empty((R, batch, b), np.float32) for b in dims[1:]]
    dxs = [np.empty((R, batch, a), np.float32) for a in dims[1:-1]]
    # batch 1: the stacked layer's padded K = 2 GEMM (models/stacked.py)
    xp = [np.zeros((R, 2, a), np.float32) for a in dims[:-1]]
    dp = [np.zeros((R, 2, b), np.float32) for b in dims[1:]]
    starts = list(range(0, n - batch + 1, batch))

    def run(steps: int) -> None:
        for k in range(steps):
            a = starts[k % len(starts)]
            ins = [X[:, a : a + batch], *hs]
            for W, x, out in zip(Ws, ins, outs):
                np.matmul(x, W, out=out)
            for i, (g, x, d) in enumerate(zip(Gs, ins, ds)):
                if batch == 1:
                    xp[i][:, 0] = x[:, 0]
                    dp[i][:, 0] = d[:, 0]
                    np.matmul(xp[i].transpose(0, 2, 1), dp[i], out=g)
                else:
                    np.matmul(x.transpose(0, 2, 1), d, out=g)
            for W, d, dx in zip(Ws[1:], ds[1:], dxs):
                np.matmul(d, W.transpose(0, 2, 1), out=dx)
            np.multiply(G, LR, out=G)
            np.subtract(P, G, out=P)

    return run


def chunked_step(R: int, batch: int, chunk: int) -> Callable[[int], None]:
    """R replicates as separate stacks of ``chunk``, stepped one after the other."""
    d_in, hidden = MODELS[MODEL]
    rng = np.random.default_rng(0)
    n = max(4 * batch, 512)
    X = rng.standard_normal((R, n, d_in), dtype=np.float32)
    T = rng.integers(0, N_CLASSES, size=(R, n))
    groups = [range(a, min(a + chunk, R)) for a in range(0, R, chunk)]
    stacks = [models.stacked.StackedSequential([_net(d_in, hidden, s) for s in g]) for g in groups]
    opts = [models.OPTIMIZERS.build({"name": "sgd", "lr": 0.01}) for _ in groups]
    rows = [slice(g[0], g[-1] + 1) for g in groups]
    starts = list(range(0, n - batch + 1, batch))

    def run(steps: int) -> None:
        for k in range(steps):
            a = starts[k % len(starts)]
            for stack, opt, sl in zip(stacks, opts, rows):
                stack.train_step(X[sl, a : a + batch], T[sl, a : a + batch], opt)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicates", type=int, default=10, help="R (default 10)")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--chunks", default="1,2,3,5", help="chunk sizes to time ('' for none)")
    parser.add_argument("--repeats", type=int, default=7, help="alternating block rounds")
    args = parser.parse_args(argv)
    R = args.replicates
    if R < 1:
        parser.error(f"--replicates: {R} is not a positive integer")
    try:
        batches = [int(b) for b in args.batches.split(",")]
        chunks = [int(c) for c in args.chunks.split(",")] if args.chunks else []
    except ValueError:
        parser.error("--batches/--chunks: not comma-separated integers")
    if min(batches) < 1 or (chunks and not 1 <= min(chunks) <= max(chunks) <= R):
        parser.error(f"--batches must be >= 1 and --chunks between 1 and R = {R}")
    d_in, hidden = MODELS[MODEL]
    with threadpool_limits(limits=1):
        for batch in batches:
            runs = steppers(d_in, hidden, R, batch)
            runs["kernels"] = kernel_step(R, batch)
            runs["calls"] = steppers(16, [16] * len(hidden), R, batch)["stacked"]
            for c in chunks:
                runs[f"chunks of {c}"] = chunked_step(R, batch, c)
            med = compare(runs, max(3, 1024 // batch), args.repeats)
            print(f"{MODEL}, R = {R}, batch {batch} (µs per step of all R replicates):")
            for key, sec in med.items():
                print(f"  {key:>14}: {sec * 1e6:8.0f} µs  {R * batch / sec:10,.0f} samples/s")
            floor = med["kernels"] + med["calls"]
            print(
                f"  stacked / unstacked {med['unstacked'] / med['stacked']:.2f}x; bound "
                f"unstacked / (kernels + calls) = {med['unstacked'] / floor:.2f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
