"""Probes of representational and initialization claims: X3, X4, A13 (identity part), I4, A12, I5a.

The book's activation-histogram set-up (``ch06/weight_init_activation_histogram.py``): 1000×100
N(0, 1) inputs through 5 bias-free layers of 100 units, weights N(0, std²).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from harness.claims.probes import PROBES, Probe, ProbeResult
from models import ACTIVATIONS, INITIALIZERS, Conv2D, Dense, build_network

__all__ = [
    "ActivationStats",
    "ConvReceptiveField",
    "DenseAsConv1x1",
    "LinearCollapse",
    "XavierVariance",
    "XorGates",
]


@PROBES.register("conv_receptive_field")
class ConvReceptiveField(Probe):
    """X3: ``layers`` stacked k×k convolutions (stride 1, no padding) vs one convolution with the
    same receptive field, on ``channels`` channels.

    The receptive field is *measured*: the zoo's Conv2D stack's gradient of one output pixel with
    respect to a random input, whose non-zero support is a square of side ``receptive_field``.
    Outputs ``receptive_field``, ``expected_field`` (``layers·(k − 1) + 1``), ``field_error``
    (measured − expected), ``param_ratio``
    (weights of the stack / weights of the single equivalent conv: ``layers·k²·C² / (rf²·C²)``,
    biases excluded) and ``mac_ratio`` (multiply-adds per output pixel, same ratio).
    """

    outputs = ("receptive_field", "expected_field", "field_error", "param_ratio", "mac_ratio")

    def __init__(
        self, *, layers: int = 2, kernel: int = 3, channels: int = 4, size: int = 11
    ) -> None:
        self.layers = layers
        self.kernel = kernel
        self.channels = channels
        self.size = size

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("layers", self.layers) + self.positive_int("kernel", self.kernel)
        out += self.positive_int("channels", self.channels)
        need = int(self.layers) * (int(self.kernel) - 1) + 1 if not out else 1
        return out + self.positive_int("size", self.size, need)

    def run(self, rng: np.random.Generator) -> ProbeResult:
        C, k, L, S = int(self.channels), int(self.kernel), int(self.layers), int(self.size)
        convs = []
        shape: tuple[int, ...] = (C, S, S)
        for _ in range(L):
            conv = Conv2D(C, k, init="glorot_normal")
            shape = conv.build(shape, rng=rng, dtype=np.float64)
            convs.append(conv)
        x = rng.normal(size=(1, C, S, S))
        h = x
        for conv in convs:
            h = conv.forward(h)
        dout = np.zeros_like(h)
        dout[0, 0, h.shape[2] // 2, h.shape[3] // 2] = 1.0  # one output pixel
        for conv in reversed(convs):
            dout = conv.backward(dout)
        support = np.abs(dout[0]).sum(axis=0) > 0
        rows, cols = np.nonzero(support)
        rf = int(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)) if rows.size else 0
        expected = L * (k - 1) + 1
        ratio = L * k * k / float(expected * expected)
        return ProbeResult(
            {
                "receptive_field": float(rf),
                "expected_field": float(expected),
                "field_error": float(rf - expected),
                "param_ratio": ratio,
                "mac_ratio": ratio,
            }
        )


@PROBES.register("dense_as_conv1x1")
class DenseAsConv1x1(Probe):
    """X4: a Dense layer applied to every pixel's channel vector equals a 1×1 Conv2D whose
    weights are the Dense weights transposed (float64, seeded weights and inputs).
    Output ``max_abs_diff`` of the outputs."""

    outputs = ("max_abs_diff",)

    def __init__(self, *, channels: int = 8, units: int = 5, size: int = 6, batch: int = 4) -> None:
        self.channels = channels
        self.units = units
        self.size = size
        self.batch = batch

    def validate(self) -> list[tuple[str, Any, str]]:
        return (
            self.positive_int("channels", self.channels)
            + self.positive_int("units", self.units)
            + self.positive_int("size", self.size)
            + self.positive_int("batch", self.batch)
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        C, F, S, N = int(self.channels), int(self.units), int(self.size), int(self.batch)
        dense = Dense(F, init="glorot_normal", bias_init={"name": "normal", "std": 1.0})
        dense.build((C,), rng=rng, dtype=np.float64)
        conv = Conv2D(F, 1)
        conv.build((C, S, S), rng=rng, dtype=np.float64)
        conv.params["W"][...] = dense.params["W"].T.reshape(F, C, 1, 1)
        conv.params["b"][...] = dense.params["b"]
        x = rng.normal(size=(N, C, S, S))
        by_conv = conv.forward(x)  # (N, F, S, S)
        pixels = x.transpose(0, 2, 3, 1).reshape(-1, C)
        by_dense = dense.forward(pixels).reshape(N, S, S, F).transpose(0, 3, 1, 2)
        return ProbeResult({"max_abs_diff": float(np.max(np.abs(by_conv - by_dense)))})


@PROBES.register("linear_collapse")
class LinearCollapse(Probe):
    """A13 (i): a ``depth``-hidden-layer MLP with the identity activation equals the single
    affine map ``x W + b`` with ``W = W₁⋯W_L`` and ``b`` folded through (float64, seeded weights
    and inputs). Output ``max_abs_diff`` and ``relative_diff`` (divided by max |f|); with
    ``activation`` other than identity the same comparison shows how far a nonlinear net is
    from its "collapsed" product."""

    outputs = ("max_abs_diff", "relative_diff")

    def __init__(
        self, *, depth: int = 5, width: int = 32, activation: str = "identity", inputs: int = 256
    ) -> None:
        self.depth = depth
        self.width = width
        self.activation = activation
        self.inputs = inputs

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("depth", self.depth) + self.positive_int("width", self.width)
        if self.activation not in ACTIVATIONS:
            out.append(("activation", self.activation, f"one of {', '.join(ACTIVATIONS.names())}"))
        return out + self.positive_int("inputs", self.inputs)

    def run(self, rng: np.random.Generator) -> ProbeResult:
        net = build_network(
            {
                "name": "mlp",
                "depth": int(self.depth),
                "width": int(self.width),
                "activation": self.activation,
                "init": "glorot_normal",
                "bias_init": {"name": "normal", "std": 0.1},
            },
            input_shape=(16,),
            n_outputs=4,
            rng=rng,
            dtype=np.float64,
        )
        x = rng.normal(size=(int(self.inputs), 16))
        f = net.forward(x, train=False)  # raw outputs: the loss link is not part of f
        W = np.eye(16)
        b = np.zeros(16)
        for layer in net.layers:
            if isinstance(layer, Dense):
                W = W @ layer.params["W"]
                b = b @ layer.params["W"] + layer.params["b"]
        collapsed = x @ W + b
        diff = float(np.max(np.abs(f - collapsed)))
        return ProbeResult({"max_abs_diff": diff, "relative_diff": diff / float(np.max(np.abs(f)))})


@PROBES.register("xavier_variance")
class XavierVariance(Probe):
    """I4: Var(out)/Var(in) of a linear layer (fan_in → fan_out) with weights from ``init``, on
    ``samples`` N(0, 1) inputs (Monte Carlo), and the backward ratio Var(dx)/Var(dout).

    For Glorot, Var(W) = 2/(fan_in + fan_out), so the forward ratio is 2·fan_in/(fan_in + fan_out):
    1 only when fan_in = fan_out. LeCun (1/fan_in) keeps the forward ratio at 1 exactly.
    """

    outputs = ("forward_ratio", "backward_ratio")

    def __init__(
        self,
        *,
        fan_in: int = 256,
        fan_out: int = 256,
        init: Any = "glorot_uniform",
        samples: int = 10_000,
    ) -> None:
        self.fan_in = fan_in
        self.fan_out = fan_out
        self.init = init
        self.samples = samples

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("fan_in", self.fan_in) + self.positive_int("fan_out", self.fan_out)
        name = self.init if isinstance(self.init, str) else (self.init or {}).get("name")
        if name not in INITIALIZERS:
            out.append(("init", self.init, f"one of {', '.join(INITIALIZERS.names())}"))
        return out + self.positive_int("samples", self.samples, 100)

    def run(self, rng: np.random.Generator) -> ProbeResult:
        a, b = int(self.fan_in), int(self.fan_out)
        W = INITIALIZERS.build(self.init)((a, b), rng=rng, dtype=np.float64)
        x = rng.normal(size=(int(self.samples), a))
        dout = rng.normal(size=(int(self.samples), b))
        fwd = float((x @ W).var() / x.var())
        bwd = float((dout @ W.T).var() / dout.var())
        return ProbeResult({"forward_ratio": fwd, "backward_ratio": bwd})


@PROBES.register("activation_stats")
class ActivationStats(Probe):
    """A12, I5a, A2: the book's histogram set-up. ``inputs``×``width`` N(0, 1) data through
    ``layers`` bias-free dense layers of ``width`` units with ``activation``; weights from
    ``init`` (a spec such as ``{name: normal, std: 1.0}`` or ``he_normal``).

    Outputs: ``std_l1`` … (the std of each layer's activations), ``std_ratio_last_first``
    (std of the last layer / std of the first), ``forward_growth`` (geometric mean of the
    per-layer std ratios), ``backward_growth`` (geometric mean per layer of std(dx)/std(dout)
    when a N(0, 1) gradient is sent back from the last layer) and ``saturated_min`` (sigmoid:
    the smallest per-layer fraction of outputs < 0.01 or > 0.99; NaN otherwise). Records: one
    per layer (``step`` = layer index) with its ``act_std`` and ``grad_std``.
    """

    LAYERS = 5
    outputs = (
        *(f"std_l{i}" for i in range(1, LAYERS + 1)),
        "std_ratio_last_first",
        "forward_growth",
        "backward_growth",
        "saturated_min",
    )

    def __init__(
        self, *, activation: str = "sigmoid", init: Any = None, inputs: int = 1000, width: int = 100
    ) -> None:
        self.activation = activation
        self.init = init
        self.inputs = inputs
        self.width = width

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.choice("activation", self.activation, ("sigmoid", "tanh", "relu", "identity"))
        init = self.init if self.init is not None else {"name": "normal", "std": 1.0}
        name = (
            init if isinstance(init, str) else init.get("name") if isinstance(init, dict) else None
        )
        if name not in INITIALIZERS:
            out.append(("init", self.init, f"one of {', '.join(INITIALIZERS.names())}"))
        return (
            out + self.positive_int("inputs", self.inputs) + self.positive_int("width", self.width)
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        n, D = int(self.inputs), int(self.width)
        init = self.init if self.init is not None else {"name": "normal", "std": 1.0}
        x = rng.normal(size=(n, D))
        dense, acts, stds, sat = [], [], [], []
        h = x
        for _ in range(self.LAYERS):
            d = Dense(D, init=init, use_bias=False)
            d.build((D,), rng=rng, dtype=np.float64)
            a = ACTIVATIONS.build(self.activation)
            a.build((D,), rng=rng, dtype=np.float64)
            h = a.forward(d.forward(h)).copy()
            dense.append(d)
            acts.append(a)
            stds.append(float(h.std()))
            if self.activation == "sigmoid":
                sat.append(float(((h < 0.01) | (h > 0.99)).mean()))
        g = rng.normal(size=(n, D))
        gstds = [float(g.std())]
        for d, a in zip(reversed(dense), reversed(acts)):
            g = d.backward(a.backward(g)).copy()
            gstds.append(float(g.std()))
        gstds = gstds[::-1]  # gstds[i]: std of the gradient arriving at layer i's input (i=0: x)

        def geo(ratios: list[float]) -> float:
            ok = [r for r in ratios if r > 0 and math.isfinite(r)]
            return float(np.exp(np.mean(np.log(ok)))) if len(ok) == len(ratios) else math.nan

        fwd = geo([stds[i + 1] / stds[i] for i in range(len(stds) - 1) if stds[i] > 0])
        bwd = geo([gstds[i] / gstds[i + 1] for i in range(len(gstds) - 1) if gstds[i + 1] > 0])
        values = {f"std_l{i + 1}": s for i, s in enumerate(stds)}
        values.update(
            {
                "std_ratio_last_first": stds[-1] / stds[0] if stds[0] > 0 else math.nan,
                "forward_growth": fwd,
                "backward_growth": bwd,
                "saturated_min": min(sat) if sat else math.nan,
            }
        )
        records = [
            {"step": float(i + 1), "act_std": stds[i], "grad_std": gstds[i + 1]}
            for i in range(self.LAYERS)
        ]
        return ProbeResult(values, records)


@PROBES.register("xor_gates")
class XorGates(Probe):
    """X1's deterministic part: the book's ``ch02/xor_gate.py`` network XOR = AND(NAND, OR) of
    hand-set perceptrons, and the best a single perceptron does on XOR.

    ``or_gate``: ``code`` (the book's code, w = (0.5, 0.5), b = −0.2) or ``text`` (seed 001's
    text, w = (1.0, 1.0), b = −0.5); AND is (0.5, 0.5, −0.7) and NAND (−0.5, −0.5, 0.7) in both.
    Outputs ``xor_errors`` (wrong outputs of the two-layer gate network on the 4 inputs) and
    ``single_best_accuracy``: the best accuracy on XOR of ``candidates`` seeded random
    perceptrons step(w·x + b), w, b ~ N(0, 1) (a sign threshold is scale-free), plus the three
    hand-set gates themselves.
    """

    outputs = ("xor_errors", "single_best_accuracy")
    OR_GATES: ClassVar[dict[str, tuple[float, float, float]]] = {
        "code": (0.5, 0.5, -0.2),
        "text": (1.0, 1.0, -0.5),
    }

    def __init__(self, *, or_gate: str = "code", candidates: int = 100_000) -> None:
        self.or_gate = or_gate
        self.candidates = candidates

    def validate(self) -> list[tuple[str, Any, str]]:
        return self.choice("or_gate", self.or_gate, tuple(self.OR_GATES)) + self.positive_int(
            "candidates", self.candidates
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        y = np.array([0, 1, 1, 0])

        def gate(x: np.ndarray, w: tuple[float, float, float]) -> np.ndarray:
            return (x @ np.array(w[:2]) + w[2] > 0).astype(float)

        AND, NAND = (0.5, 0.5, -0.7), (-0.5, -0.5, 0.7)
        hidden = np.stack([gate(X, NAND), gate(X, self.OR_GATES[self.or_gate])], axis=1)
        xor = gate(hidden, AND)
        W = rng.normal(size=(int(self.candidates), 3))
        W = np.vstack([W, [AND, NAND, self.OR_GATES[self.or_gate]]])
        preds = (X @ W[:, :2].T + W[:, 2] > 0).astype(int)  # (4, candidates)
        acc = (preds == y[:, None]).mean(axis=0)
        return ProbeResult(
            {"xor_errors": float(np.sum(xor != y)), "single_best_accuracy": float(acc.max())}
        )
