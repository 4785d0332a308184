"""Probes of numerical and implementation claims: U1–U5, L2, R6 (erratum E5), A5.

Each probe draws its inputs from the generator it is given (one seeded batch per replicate) and
returns the worst case over that batch where the claim is a "for every input" statement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from harness.claims.probes import PROBES, Probe, ProbeResult
from models import ACTIVATIONS, LOSSES, build_network
from models.gradcheck import numerical_gradient, relative_error
from models.layers import Dropout
from models.losses import softmax

__all__ = [
    "ActivationTiming",
    "DropoutScaling",
    "FiniteDifference",
    "FusedCrossEntropy",
    "GradientCheck",
    "MassShift",
    "SaturatedOutputGradient",
    "SigmoidSlope",
    "SoftmaxArgmax",
    "SoftmaxOverflow",
]


#: Repeats of the timed backprop pass of :class:`GradientCheck` (the numerical one runs once).
BACKPROP_REPEATS = 7


def _naive_softmax(z: np.ndarray) -> np.ndarray:
    """The seed's (S4, erratum E7) softmax: no max subtraction."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


@PROBES.register("finite_difference")
class FiniteDifference(Probe):
    """U2: the error of a finite-difference derivative of the book's ``f(x) = 0.01x² + 0.1x`` at
    ``x`` (exact derivative ``0.02x + 0.1``) for step ``h``, central or forward.

    Outputs ``abs_error`` (|numeric − exact|) and ``float32_underflow`` (1 when
    ``np.float32(1e-50) == 0``: the seed's "too small a value becomes 0"). Deterministic: the
    generator is unused (every seed gives the same number).
    """

    outputs = ("abs_error", "log10_abs_error", "float32_underflow")

    def __init__(self, *, h: float = 1e-4, scheme: str = "central", x: float = 5.0) -> None:
        self.h = h
        self.scheme = scheme
        self.x = x

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.choice("scheme", self.scheme, ("central", "forward"))
        if not isinstance(self.h, (int, float)) or not self.h > 0:
            out.append(("h", self.h, "a number > 0"))
        return out

    def run(self, rng: np.random.Generator) -> ProbeResult:
        def f(x: float) -> float:
            return 0.01 * x**2 + 0.1 * x

        x, h = float(self.x), float(self.h)
        exact = 0.02 * x + 0.1
        num = (f(x + h) - f(x - h)) / (2 * h) if self.scheme == "central" else (f(x + h) - f(x)) / h
        err = abs(num - exact)
        return ProbeResult(
            {
                "abs_error": err,
                "log10_abs_error": math.log10(err) if err > 0 else -17.0,
                "float32_underflow": float(np.float32(1e-50) == 0),
            }
        )


@PROBES.register("softmax_overflow")
class SoftmaxOverflow(Probe):
    """U3: softmax of large logits, ``naive`` (exp without max subtraction, the seed S4's code)
    vs ``stable`` (the zoo's, max-subtracted).

    Row 0 is the book's ``[1010, 1000, 990]``; the other ``rows − 1`` rows are seeded logits
    ``offset + N(0, 10²)`` with offsets uniform in [800, 1200] (beyond exp's float64 range, e^709).
    Outputs ``nonfinite_fraction`` (rows with a NaN/inf) and ``book_row_error`` (max abs error of
    row 0 against the exact ``[0.99995, 4.54e-5, 2.06e-9]``, computed in closed form; NaN when the
    row is not finite).
    """

    outputs = ("nonfinite_fraction", "book_row_error")
    VARIANTS = ("naive", "stable")

    def __init__(self, *, variant: str = "stable", rows: int = 1000) -> None:
        self.variant = variant
        self.rows = rows

    def validate(self) -> list[tuple[str, Any, str]]:
        return self.choice("variant", self.variant, self.VARIANTS) + self.positive_int(
            "rows", self.rows
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        z = rng.uniform(800, 1200, size=(self.rows, 1)) + rng.normal(0, 10, size=(self.rows, 3))
        z[0] = [1010.0, 1000.0, 990.0]
        p = _naive_softmax(z) if self.variant == "naive" else softmax(z)
        finite = np.all(np.isfinite(p), axis=1)
        # exact row 0: softmax is shift-invariant, so use the gaps 0, -10, -20 directly
        e = np.exp(np.array([0.0, -10.0, -20.0]))
        exact = e / e.sum()
        err = float(np.max(np.abs(p[0] - exact))) if finite[0] else math.nan
        return ProbeResult({"nonfinite_fraction": float(1 - finite.mean()), "book_row_error": err})


@PROBES.register("fused_cross_entropy")
class FusedCrossEntropy(Probe):
    """U4: cross-entropy of logits with a ``gap``-unit spread, computed ``naive`` (log of the
    naive softmax) or ``fused`` (the zoo's softmax + CE, log-sum-exp).

    Outputs ``nonfinite`` (1 when the loss is inf/NaN) and, for ``fused``, ``grad_error``: the
    max abs difference between the zoo's backward and ``(p − t)/N`` with ``p`` computed
    independently as ``exp(z − logsumexp(z))``.
    """

    outputs = ("nonfinite", "grad_error")
    VARIANTS = ("naive", "fused")

    def __init__(
        self, *, variant: str = "fused", gap: float = 1000.0, rows: int = 64, classes: int = 10
    ) -> None:
        self.variant = variant
        self.gap = gap
        self.rows = rows
        self.classes = classes

    def validate(self) -> list[tuple[str, Any, str]]:
        return (
            self.choice("variant", self.variant, self.VARIANTS)
            + self.positive_int("rows", self.rows)
            + self.positive_int("classes", self.classes, 2)
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        N, K = int(self.rows), int(self.classes)
        z = rng.normal(0, 1, size=(N, K))
        t = rng.integers(0, K, size=N)
        # the wrong class leads by `gap`: the correct class's probability underflows to 0
        wrong = (t + 1 + rng.integers(0, K - 1, size=N)) % K
        z[np.arange(N), wrong] += float(self.gap)
        if self.variant == "naive":
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                loss = float(-np.mean(np.log(_naive_softmax(z)[np.arange(N), t])))
            return ProbeResult(
                {"nonfinite": float(not math.isfinite(loss)), "grad_error": math.nan}
            )
        ce = LOSSES.build("cross_entropy")
        loss = ce.forward(z, t)
        g = ce.backward()
        m = z.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        p = np.exp(z - lse)
        T = np.eye(K)[t]
        err = float(np.max(np.abs(g - (p - T) / N)))
        return ProbeResult({"nonfinite": float(not math.isfinite(loss)), "grad_error": err})


@PROBES.register("softmax_argmax")
class SoftmaxArgmax(Probe):
    """U5: the argmax of softmax(z) equals the argmax of z. Seeded logits ``N(0, scale²)`` of
    shape (rows, classes); output ``mismatch_fraction``."""

    outputs = ("mismatch_fraction",)

    def __init__(self, *, rows: int = 100_000, classes: int = 10, scale: float = 1.0) -> None:
        self.rows = rows
        self.classes = classes
        self.scale = scale

    def validate(self) -> list[tuple[str, Any, str]]:
        return self.positive_int("rows", self.rows) + self.positive_int("classes", self.classes, 2)

    def run(self, rng: np.random.Generator) -> ProbeResult:
        z = rng.normal(0, float(self.scale), size=(int(self.rows), int(self.classes)))
        same = np.argmax(softmax(z), axis=1) == np.argmax(z, axis=1)
        return ProbeResult({"mismatch_fraction": float(1 - same.mean())})


@PROBES.register("mass_shift")
class MassShift(Probe):
    """L2: move probability mass between the wrong classes, keeping the correct class's
    probability fixed, and measure how much a loss changes.

    Seeded probability rows (Dirichlet) with random targets; the shift moves a random fraction
    of the wrong-class mass from one wrong class to another. ``loss`` is ``cross_entropy``
    (the zoo's ``nll`` on probabilities, the book's ``cross_entropy_error``) or ``mse`` (the zoo's
    squared error against one-hot targets). Output ``abs_change``: the max over rows of |Δloss|.
    """

    outputs = ("abs_change",)
    LOSS_NAMES: ClassVar[dict[str, str]] = {"cross_entropy": "nll", "mse": "mse"}

    def __init__(self, *, loss: str = "cross_entropy", rows: int = 1000, classes: int = 10) -> None:
        self.loss = loss
        self.rows = rows
        self.classes = classes

    def validate(self) -> list[tuple[str, Any, str]]:
        return (
            self.choice("loss", self.loss, tuple(self.LOSS_NAMES))
            + self.positive_int("rows", self.rows)
            + self.positive_int("classes", self.classes, 3)
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        N, K = int(self.rows), int(self.classes)
        p = rng.dirichlet(np.ones(K), size=N)
        t = rng.integers(0, K, size=N)
        a = (t + 1 + rng.integers(0, K - 1, size=N)) % K  # a wrong class
        b = (a + 1 + rng.integers(0, K - 1, size=N)) % K  # another class...
        b = np.where(b == t, (b + 1) % K, b)  # ...that is not the target either
        b = np.where(b == a, (a + 1) % K, b)
        b = np.where(b == t, (b + 1) % K, b)
        q = p.copy()
        rows = np.arange(N)
        moved = p[rows, a] * rng.uniform(0.1, 1.0, size=N)
        q[rows, a] -= moved
        q[rows, b] += moved
        loss = LOSSES.build(self.LOSS_NAMES[self.loss])
        T = np.eye(K)[t]
        change = max(
            abs(loss.forward(p[i : i + 1], T[i : i + 1]) - loss.forward(q[i : i + 1], T[i : i + 1]))
            for i in range(N)
        )
        return ProbeResult({"abs_change": float(change)})


@PROBES.register("dropout_scaling")
class DropoutScaling(Probe):
    """R6 (and erratum E5): the expected training output of dropout vs its test output.

    ``mode``: ``inverted`` and ``scale_at_test`` are the zoo's :class:`~models.layers.Dropout`
    modes (the book's is ``scale_at_test``: × (1 − rate) at test); ``seed_text`` is seed 001's
    sentence "multiply by the drop ratio at test" (× rate, erratum E5). Input: one seeded row of
    ``units`` values; the training output is averaged over ``draws`` masks. Output ``rel_diff``:
    max over units of |E_train − test| / |test|.
    """

    outputs = ("rel_diff",)
    MODES = ("inverted", "scale_at_test", "seed_text")

    def __init__(
        self,
        *,
        mode: str = "scale_at_test",
        rate: float = 0.5,
        draws: int = 100_000,
        units: int = 20,
    ) -> None:
        self.mode = mode
        self.rate = rate
        self.draws = draws
        self.units = units

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.choice("mode", self.mode, self.MODES) + self.positive_int("draws", self.draws)
        if not isinstance(self.rate, (int, float)) or not 0 < self.rate < 1:
            out.append(("rate", self.rate, "a number in (0, 1)"))
        return out + self.positive_int("units", self.units)

    def run(self, rng: np.random.Generator) -> ProbeResult:
        x_row = rng.uniform(0.5, 2.0, size=(1, int(self.units)))
        x = np.repeat(x_row, int(self.draws), axis=0)  # every row sees its own mask
        layer_mode = "inverted" if self.mode == "inverted" else "scale_at_test"
        layer = Dropout(float(self.rate), layer_mode)
        layer.build((int(self.units),), rng=rng, dtype=np.float64)
        train_mean = layer.forward(x, train=True).mean(axis=0)
        if self.mode == "seed_text":
            test = x_row[0] * float(self.rate)
        else:
            test = layer.forward(x_row, train=False)[0]
        return ProbeResult({"rel_diff": float(np.max(np.abs(train_mean - test) / np.abs(test)))})


@PROBES.register("activation_timing")
class ActivationTiming(Probe):
    """A5: wall time of sigmoid vs ReLU on ``size`` float64 elements, forward or forward +
    backward. ``impl``: ``zoo`` (the zoo's activation layers) or ``numpy`` (bare
    ``1/(1 + exp(−x))`` vs ``maximum(x, 0)``). The two are timed alternately, ``repeats`` times,
    so that a load change on a shared machine hits both; ``time_ratio`` is the median of the
    per-repeat ratios t(sigmoid)/t(relu). NumPy's element-wise kernels run on one thread.
    """

    outputs = ("time_ratio", "sigmoid_s", "relu_s")

    def __init__(
        self,
        *,
        passes: str = "forward",
        impl: str = "zoo",
        size: int = 1_000_000,
        repeats: int = 20,
    ) -> None:
        self.passes = passes
        self.impl = impl
        self.size = size
        self.repeats = repeats

    def validate(self) -> list[tuple[str, Any, str]]:
        return (
            self.choice("passes", self.passes, ("forward", "forward_backward"))
            + self.choice("impl", self.impl, ("zoo", "numpy"))
            + self.positive_int("size", self.size, 1000)
            + self.positive_int("repeats", self.repeats, 3)
        )

    def _pass(self, name: str, x: np.ndarray, dout: np.ndarray) -> Callable[[], Any]:
        back = self.passes == "forward_backward"
        if self.impl == "numpy":
            if name == "sigmoid":

                def sig() -> Any:
                    s = 1.0 / (1.0 + np.exp(-x))
                    return dout * s * (1.0 - s) if back else s

                return sig

            def relu() -> Any:
                out = np.maximum(x, 0.0)
                return dout * (x > 0) if back else out

            return relu
        layer = ACTIVATIONS.build(name)
        layer.build(x.shape[1:], rng=np.random.default_rng(0), dtype=np.float64)

        def zoo() -> Any:
            out = layer.forward(x)
            return layer.backward(dout) if back else out

        return zoo

    def run(self, rng: np.random.Generator) -> ProbeResult:
        n = int(self.size)
        x = rng.normal(size=(n // 1000, 1000))
        dout = rng.normal(size=x.shape)
        fs, fr = self._pass("sigmoid", x, dout), self._pass("relu", x, dout)
        fs(), fr()  # warm the scratch buffers: time the arithmetic, not the allocation
        ts, tr = [], []
        for _ in range(int(self.repeats)):
            t0 = time.perf_counter()
            fs()
            t1 = time.perf_counter()
            fr()
            t2 = time.perf_counter()
            ts.append(t1 - t0)
            tr.append(t2 - t1)
        ratios = np.array(ts) / np.array(tr)
        return ProbeResult(
            {
                "time_ratio": float(np.median(ratios)),
                "sigmoid_s": float(np.median(ts)),
                "relu_s": float(np.median(tr)),
            }
        )


@PROBES.register("gradient_check")
class GradientCheck(Probe):
    """U1: backprop vs the numerical (central-difference, h = 1e-4 as in the book) gradient of a
    64-``width``-10 MLP on ``samples`` digits images (float64), and their cost.

    Outputs ``max_rel_error`` (over all parameters, relative with floor 1e-4, the zoo's
    :func:`~models.gradcheck.relative_error`), ``mean_abs_diff``, ``time_ratio`` = t(numerical) /
    t(backprop) and ``n_params``. Digits are from scikit-learn (bundled, offline).
    """

    outputs = ("max_rel_error", "mean_abs_diff", "time_ratio", "n_params")

    def __init__(
        self, *, activation: str = "sigmoid", width: int = 50, samples: int = 3, h: float = 1e-4
    ) -> None:
        self.activation = activation
        self.width = width
        self.samples = samples
        self.h = h

    def validate(self) -> list[tuple[str, Any, str]]:
        return (
            self.choice("activation", self.activation, ("sigmoid", "tanh", "relu"))
            + self.positive_int("width", self.width)
            + self.positive_int("samples", self.samples)
        )

    def run(self, rng: np.random.Generator) -> ProbeResult:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        idx = rng.choice(len(X), size=int(self.samples), replace=False)
        x, t = X[idx] / 16.0, y[idx]
        net = build_network(
            {"name": "mlp", "depth": 1, "width": int(self.width), "activation": self.activation},
            input_shape=(64,),
            n_outputs=10,
            rng=rng,
            dtype=np.float64,
        )
        bp_times = []
        for _ in range(BACKPROP_REPEATS):  # one backward pass is ~0.1 ms: take a median
            t0 = time.perf_counter()
            net.compute_loss(x, t, train=True)
            net.backward()
            bp_times.append(time.perf_counter() - t0)
        t_bp = float(np.median(bp_times))
        analytic = {k: g.copy() for k, g in net.grads.items()}

        def loss(_: np.ndarray) -> float:
            return net.compute_loss(x, t, train=True)

        t0 = time.perf_counter()
        numeric = {k: numerical_gradient(loss, p, float(self.h)) for k, p in net.params.items()}
        t_num = time.perf_counter() - t0
        rel = max(float(relative_error(analytic[k], numeric[k]).max()) for k in analytic)
        diffs = np.concatenate([np.abs(analytic[k] - numeric[k]).ravel() for k in analytic])
        return ProbeResult(
            {
                "max_rel_error": rel,
                "mean_abs_diff": float(diffs.mean()),
                "time_ratio": t_num / max(t_bp, 1e-9),
                "n_params": float(net.n_params),
            }
        )


@PROBES.register("sigmoid_slope")
class SigmoidSlope(Probe):
    """A1's deterministic part and seed 001's "h(1.0) = 0.731, h(2.0) = 0.880": the zoo's sigmoid
    and its backward pass on ``points`` evenly spaced z in [−span, span] (0 included).

    Outputs ``max_slope`` (max σ'(z) on the grid, from the layer's backward with dout = 1),
    ``argmax_abs_z`` (|z| where it is reached), ``sigmoid_at_1`` and ``sigmoid_at_2``.
    Deterministic: the generator is unused.
    """

    outputs = ("max_slope", "argmax_abs_z", "sigmoid_at_1", "sigmoid_at_2")

    def __init__(self, *, span: float = 10.0, points: int = 200_001) -> None:
        self.span = span
        self.points = points

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("points", self.points, 3)
        if not isinstance(self.span, (int, float)) or not self.span > 0:
            out.append(("span", self.span, "a number > 0"))
        return out

    def run(self, rng: np.random.Generator) -> ProbeResult:
        n = int(self.points) | 1  # odd: the grid contains z = 0
        z = np.linspace(-float(self.span), float(self.span), n)[None, :]
        layer = ACTIVATIONS.build("sigmoid")
        layer.build(z.shape[1:], rng=rng, dtype=np.float64)
        layer.forward(z)
        slope = layer.backward(np.ones_like(z))[0]
        pair = ACTIVATIONS.build("sigmoid")
        pair.build((2,), rng=rng, dtype=np.float64)
        at = pair.forward(np.array([[1.0, 2.0]]))[0]
        i = int(np.argmax(slope))
        return ProbeResult(
            {
                "max_slope": float(slope[i]),
                "argmax_abs_z": float(abs(z[0, i])),
                "sigmoid_at_1": float(at[0]),
                "sigmoid_at_2": float(at[1]),
            }
        )


@PROBES.register("saturated_output_gradient")
class SaturatedOutputGradient(Probe):
    """L3's deterministic part: |∂L/∂z| of one sigmoid output with logit ``z`` and target 1, for
    ``binary_cross_entropy`` (the zoo's fused sigmoid + CE: σ(z) − 1) or ``mse_sigmoid`` (the
    zoo's ½(σ(z) − 1)² through the sigmoid: (σ − 1)·σ(1 − σ)). Output ``abs_grad``."""

    outputs = ("abs_grad",)
    LOSS_SPECS: ClassVar[dict[str, Any]] = {
        "binary_cross_entropy": "binary_cross_entropy",
        "mse_sigmoid": {"name": "mse", "output": "sigmoid"},
    }

    def __init__(self, *, loss: str = "binary_cross_entropy", z: float = -10.0) -> None:
        self.loss = loss
        self.z = z

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.choice("loss", self.loss, tuple(self.LOSS_SPECS))
        if not isinstance(self.z, (int, float)) or isinstance(self.z, bool):
            out.append(("z", self.z, "a number"))
        return out

    def run(self, rng: np.random.Generator) -> ProbeResult:
        loss = LOSSES.build(self.LOSS_SPECS[self.loss])
        loss.forward(np.array([[float(self.z)]]), np.array([[1.0]]))
        return ProbeResult({"abs_grad": float(abs(loss.backward()[0, 0]))})
