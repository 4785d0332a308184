"""Training-step throughput of the NumPy zoo against PyTorch CPU eager, on identical data and weights.

Models (float32, softmax cross-entropy, plain SGD):

* MLP 784-100-100-100-100-10 with ReLU (target: zoo/torch >= 1.0 at every batch size);
* the book's ``simple_conv_net`` on 1×28×28 inputs (target >= 0.5).

For every batch size and thread count the two frameworks run alternating timed blocks of train
steps (``--repeats`` pairs after a warm-up), so slow drifts of a shared machine hit both alike;
the table shows the median samples/s of each and their ratio. Both start from the same weights
and, before timing, must produce the same losses for the first steps (a check that the two
models really are the same). GFLOP/s counts the multiply-adds of the forward pass, the weight
gradients and every input gradient except the first layer's (neither framework computes it),
and is printed next to the machine's measured large-GEMM peak (np.dot of 2048×2048 float32),
with the zoo's fraction of that peak (issue 13 asks for it at batch 512).
A last table shows the cost of the zoo's telemetry (on vs off).

Usage::

    python benchmarks/zoo_vs_torch.py            # full run, 2 and 1 threads (a few minutes)
    python benchmarks/zoo_vs_torch.py --quick    # fewer repeats and sizes (about a minute)

Needs the optional ``bench`` extra (``torch==2.13.0``, CPU build).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from models import OPTIMIZERS, Sequential, build_network

try:
    import torch
except ImportError:  # pragma: no cover - the bench extra is optional
    sys.exit("this benchmark needs PyTorch: pip install -e '.[bench]' (torch==2.13.0, CPU build)")

MLP_HIDDEN = [100, 100, 100, 100]
IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10
LR = 0.01
# each timed block processes about this many samples (keeps blocks ~0.1-0.5 s)
BLOCK_SAMPLES = {"mlp": 16384, "conv": 1536}


@dataclass
class Pair:
    """A zoo network and the equivalent PyTorch module, initialised with the same weights."""

    name: str
    zoo: Sequential
    torch_model: Any
    flops_per_sample: float


def _dense_layers(net: Sequential) -> list[Any]:
    return [layer for layer in net.layers if "W" in layer.params]


def make_mlp(seed: int) -> Pair:
    zoo = build_network(
        {"name": "mlp", "hidden": MLP_HIDDEN, "activation": "relu"},
        input_shape=(784,),
        n_outputs=N_CLASSES,
        rng=np.random.default_rng(seed),
    )
    modules: list[Any] = []
    sizes = [784, *MLP_HIDDEN, N_CLASSES]
    for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes)):
        modules.append(torch.nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, dense in zip(linears, _dense_layers(zoo)):
            lin.weight.copy_(torch.from_numpy(dense.params["W"].T.copy()))
            lin.bias.copy_(torch.from_numpy(dense.params["b"]))
    macs = [a * b for a, b in itertools.pairwise(sizes)]
    # forward + dW for every layer, dx for all but the first
    flops = 2 * (2 * sum(macs) + sum(macs[1:]))
    return Pair("mlp", zoo, model, flops)


def make_conv(seed: int) -> Pair:
    zoo = build_network(
        "simple_conv_net",
        input_shape=IMAGE_SHAPE,
        n_outputs=N_CLASSES,
        rng=np.random.default_rng(seed),
    )
    conv_zoo, fc1_zoo, fc2_zoo = _dense_layers(zoo)
    F, C, kh, kw = conv_zoo.params["W"].shape
    oh = IMAGE_SHAPE[1] - kh + 1
    pooled = F * (oh // 2) ** 2
    conv = torch.nn.Conv2d(C, F, (kh, kw))
    fc1 = torch.nn.Linear(pooled, fc1_zoo.units)
    fc2 = torch.nn.Linear(fc1_zoo.units, N_CLASSES)
    relu, pool, flatten = torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten()
    model = torch.nn.Sequential(conv, relu, pool, flatten, fc1, torch.nn.ReLU(), fc2)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(conv_zoo.params["W"]))
        assert conv.bias is not None
        conv.bias.copy_(torch.from_numpy(conv_zoo.params["b"]))
        for lin, dense in ((fc1, fc1_zoo), (fc2, fc2_zoo)):
            lin.weight.copy_(torch.from_numpy(dense.params["W"].T.copy()))
            lin.bias.copy_(torch.from_numpy(dense.params["b"]))
    conv_macs = F * C * kh * kw * oh * oh
    fc_macs = [pooled * fc1_zoo.units, fc1_zoo.units * N_CLASSES]
    # conv: forward + dW (its dx is not needed); dense: forward + dW + dx
    flops = 2 * (2 * conv_macs + 3 * sum(fc_macs))
    return Pair("conv", zoo, model, flops)


def zoo_stepper(pair: Pair, x: np.ndarray, t: np.ndarray) -> Callable[[int, int], float]:
    opt = OPTIMIZERS.build({"name": "sgd", "lr": LR})
    net = pair.zoo

    def run(start: int, batch: int) -> float:
        return net.train_step(x[start : start + batch], t[start : start + batch], opt)

    return run


def torch_stepper(pair: Pair, x: np.ndarray, t: np.ndarray) -> Callable[[int, int], float]:
    model = pair.torch_model
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    loss_fn = torch.nn.functional.cross_entropy

    def run(start: int, batch: int) -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[start : start + batch]), tt[start : start + batch])
        loss.backward()
        opt.step()
        return float(loss.detach())

    return run


def check_same_model(pair: Pair, x: np.ndarray, t: np.ndarray, steps: int = 3) -> float:
    """Train both for a few steps from the shared weights; return the largest relative loss gap."""
    zoo_run, torch_run = zoo_stepper(pair, x, t), torch_stepper(pair, x, t)
    worst = 0.0
    for i in range(steps):
        a, b = zoo_run(i * 16, 16), torch_run(i * 16, 16)
        worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    if worst > 1e-3:
        raise SystemExit(
            f"{pair.name}: zoo and torch losses differ by {worst:.2e}: not the same model"
        )
    return worst


def time_block(run: Callable[[int, int], float], batch: int, steps: int, n_data: int) -> float:
    """Samples per second over ``steps`` train steps (consecutive batches, wrapping around)."""
    n_batches = n_data // batch
    start = time.perf_counter()
    for i in range(steps):
        run((i % n_batches) * batch, batch)
    return steps * batch / (time.perf_counter() - start)


def compare(
    runs: dict[str, Callable[[int, int], float]], batch: int, steps: int, repeats: int, n: int
) -> dict[str, float]:
    """Median samples/s per framework over alternating blocks (after one warm-up block each)."""
    for run in runs.values():
        time_block(run, batch, max(2, steps // 4), n)
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            samples[key].append(time_block(run, batch, steps, n))
    return {k: statistics.median(v) for k, v in samples.items()}


def gemm_peak(repeats: int = 5) -> float:
    """GFLOP/s of np.dot on 2048×2048 float32 (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    np.dot(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.dot(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best / 1e9


def _load() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument(
        "--threads", default="2,1", help="comma-separated thread counts (default 2,1)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="alternating block pairs per cell"
    )
    parser.add_argument(
        "--models", default="mlp,conv,telemetry", help="which tables (default mlp,conv,telemetry)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    threads = [int(s) for s in args.threads.split(",")]
    tables = set(args.models.split(","))
    repeats = args.repeats or (3 if args.quick else 7)
    mlp_batches = [8, 32, 128, 512]
    conv_batches = [8, 32, 128] if args.quick else [8, 32, 128, 512]
    block_scale = 0.5 if args.quick else 1.0

    rng = np.random.default_rng(args.seed)
    n_data = 4096
    x_flat = rng.standard_normal((n_data, 784), dtype=np.float32)
    x_img = x_flat.reshape(n_data, *IMAGE_SHAPE)
    t = rng.integers(0, N_CLASSES, n_data)

    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}")
    print(f"load average at start: {_load()} (other processes on the machine skew the timings)")
    print(f"machine: {platform.machine()} {platform.processor() or ''}".rstrip())
    for info in threadpool_info():
        print(
            f"threadpool: {info.get('internal_api')} {info.get('version') or ''} "
            f"({info.get('prefix')}), {info.get('num_threads')} threads by default"
        )

    mlp_rows: list[list[str]] = []
    conv_rows: list[list[str]] = []
    tele_rows: list[list[str]] = []
    for n_threads in threads:
        with threadpool_limits(limits=n_threads):
            torch.set_num_threads(n_threads)
            peak = gemm_peak()
            print(
                f"\n{n_threads} thread(s): numpy BLAS threads "
                f"{[i['num_threads'] for i in threadpool_info()]}, torch.get_num_threads() = "
                f"{torch.get_num_threads()}, large-GEMM peak {peak:.1f} GFLOP/s"
            )
            for kind, batches, data, rows in (
                ("mlp", mlp_batches, x_flat, mlp_rows),
                ("conv", conv_batches, x_img, conv_rows),
            ):
                if kind not in tables:
                    continue
                pair = make_mlp(args.seed) if kind == "mlp" else make_conv(args.seed)
                gap = check_same_model(pair, data, t)
                print(f"  {kind}: first-step losses agree with torch to {gap:.1e} (relative)")
                runs = {"zoo": zoo_stepper(pair, data, t), "torch": torch_stepper(pair, data, t)}
                for batch in batches:
                    steps = max(3, int(BLOCK_SAMPLES[kind] * block_scale) // batch)
                    med = compare(runs, batch, steps, repeats, n_data)
                    ratio = med["zoo"] / med["torch"]
                    gflops = [med[k] * pair.flops_per_sample / 1e9 for k in ("zoo", "torch")]
                    rows.append(
                        [
                            str(n_threads),
                            str(batch),
                            f"{med['zoo']:,.0f}",
                            f"{med['torch']:,.0f}",
                            f"{ratio:.2f}",
                            f"{gflops[0]:.1f}",
                            f"{gflops[1]:.1f}",
                            f"{peak:.0f}",
                            f"{gflops[0] / peak:.0%}",
                        ]
                    )
                    if batch == 512:
                        print(
                            f"  {kind} batch 512: zoo {gflops[0]:.1f} GFLOP/s = "
                            f"{gflops[0] / peak:.0%} of the measured GEMM peak ({peak:.1f})"
                        )
                    print(
                        f"  {kind} batch {batch:>4}: zoo {med['zoo']:>9,.0f}/s  torch "
                        f"{med['torch']:>9,.0f}/s  ratio {ratio:.2f}",
                        flush=True,
                    )
            if "telemetry" not in tables:
                continue
            # telemetry cost: the same zoo MLP with telemetry on vs off
            off, on = make_mlp(args.seed), make_mlp(args.seed)
            on.zoo.telemetry = True
            tele_runs = {"off": zoo_stepper(off, x_flat, t), "on": zoo_stepper(on, x_flat, t)}
            for batch in (32, 128):
                steps = max(3, int(BLOCK_SAMPLES["mlp"] * block_scale) // batch)
                med = compare(tele_runs, batch, steps, repeats, n_data)
                tele_rows.append(
                    [
                        str(n_threads),
                        str(batch),
                        f"{med['off']:,.0f}",
                        f"{med['on']:,.0f}",
                        f"{med['off'] / med['on'] - 1:+.0%}",
                        str(len(on.zoo.last_telemetry)),
                    ]
                )

    header = [
        "threads",
        "batch",
        "zoo samples/s",
        "torch samples/s",
        "zoo/torch",
        "zoo GFLOP/s",
        "torch GFLOP/s",
        "GEMM peak GFLOP/s",
        "zoo / peak",
    ]
    print(f"\nload average at end: {_load()}")
    titles = {
        "mlp": "MLP 784-100-100-100-100-10, ReLU, softmax CE, SGD, float32 (target ratio >= 1.0)",
        "conv": "simple_conv_net on 1x28x28 (conv 30x5x5, ReLU, pool 2, 100, 10) (target >= 0.5)",
    }
    for kind, rows in (("mlp", mlp_rows), ("conv", conv_rows)):
        if rows:
            print_table(titles[kind], header, rows)
    if tele_rows:
        print_table(
            "zoo MLP telemetry cost (train_step with telemetry=True vs off)",
            ["threads", "batch", "off samples/s", "on samples/s", "extra time", "keys"],
            tele_rows,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
