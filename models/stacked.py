"""Replicate-stacked training: R copies of one architecture trained as one batched model.

The R seeds of one configuration differ only in their random streams (initial weights, batch
order, dropout masks). :class:`StackedSequential` takes R built :class:`~models.network.Sequential`
networks of the same config and trains them together: every parameter gets a leading replicate
axis (``W`` of a dense layer is ``(R, D, U)``), so a training step is one batched matmul per layer
instead of R small ones. At the zoo's sizes a step is mostly per-call overhead, so R replicates
cost little more than one (``benchmarks/replicates.py``).

Each replicate keeps its own numbers: its inputs are its own batches (``x`` is ``(R, N, ...)``,
row ``r`` the batch replicate ``r`` drew from its own order stream), its dropout masks come from
its own network's generator in the same order, batch-norm statistics are taken per replicate, and
the optimizer is elementwise, so replicate ``r`` follows the trajectory of the unstacked run to
float rounding (``tests/models/test_stacked.py`` checks whole trainings: ≤ 1e-10 relative in
float64, ≤ 1e-5 in float32).

Supported: ``dense``, every activation, ``dropout``, ``batch_norm``, ``flatten``, ``reshape``,
every loss (cross-entropy and MSE vectorized; the others per replicate), every optimizer and
schedule (one optimizer object steps all replicates), L1/L2 and telemetry. Convolution and
pooling layers are not: :func:`stacking_unsupported` says why, and callers train those unstacked.

Evaluation is stacked too: :meth:`StackedSequential.evaluate` runs one evaluation-mode pass of
a data set every replicate sees (the first dense layer broadcasts the shared ``(N, D)`` batch
against the ``(R, D, U)`` weights) and returns each replicate's ``Sequential.evaluate`` numbers
(and its ``predict`` outputs), without touching the training caches.

A replicate that stops (diverges, stops early, is pruned) is removed with :meth:`drop`; the
others go on. :meth:`write_back` copies a replicate's parameters and running statistics into its
own network, which is what evaluation, saving and the caller's records use.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._scratch import Scratch
from .activations import (
    SIGMOID_SATURATION,
    TANH_SATURATION,
    Activation,
    ReLU,
    Sigmoid,
    Tanh,
    sigmoid,
)
from .base import Array, Layer, Optimizer
from .layers import BatchNorm, Dense, Dropout, Flatten, Reshape
from .losses import MeanSquaredError, SoftmaxCrossEntropy
from .network import Sequential, _class_like, _target_labels
from .optimizers import SGD, Momentum, Nesterov, ParamDict
from .regularizers import L1, L2

__all__ = ["StackedSequential", "stacking_pays", "stacking_unsupported"]

_STACKABLE = (Dense, Dropout, BatchNorm, Flatten, Reshape, Activation)

#: Optimizers (exact types) whose step reads the gradient once, to write ``lr·g`` into their
#: "scaled" buffer, and never again: for them the stack lets that buffer be the gradient block
#: itself (:meth:`StackedSequential._scale_gradients_in_place`).
_SCALES_GRADIENT_ONCE = (SGD, Momentum, Nesterov)


def stacking_unsupported(net: Sequential) -> str | None:
    """Why ``net`` cannot train stacked (the first layer that has no stacked form), or None."""
    for layer in net.layers:
        if not isinstance(layer, _STACKABLE):
            return (
                f"layer {layer.name!r} ({type(layer).__name__}) has no stacked form; "
                "its replicates train one by one"
            )
    return None


def _config(net: Sequential) -> dict[str, Any]:
    return net.get_config()


class _StackedLayer:
    """A layer of the stack: ``forward(x (R, N, ...))`` and ``backward(dout (R, N, ...))``."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers  # one per replicate (the replicates' own layer objects)
        self.name = layers[0].name
        self.needs_input_grad = layers[0].needs_input_grad
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.state: dict[str, Array] = {}

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dout: Array) -> Array:
        raise NotImplementedError

    def infer(self, x: Array) -> Array:
        """Evaluation-mode forward of ``x`` (R, N, ...); it may be one batch broadcast over the
        replicates (stride 0 on axis 0). Leaves the training caches alone."""
        return self.forward(x)

    def drop(self, keep: Array) -> None:
        """Keep only the replicates at positions ``keep`` (called after the arrays are sliced)."""
        self.layers = [self.layers[i] for i in keep]


class _StackedDense(_StackedLayer):
    def __init__(self, layers: list[Layer]) -> None:
        super().__init__(layers)
        self._scratch = Scratch()  # outputs in reused buffers: a fresh 256 kB array page-faults
        self._eval = Scratch()  # evaluation outputs, by batch size (the train and val splits)

    def forward(self, x: Array) -> Array:
        W = self.params["W"]
        self._x = x
        out = np.matmul(
            x, W, out=self._scratch.empty("out", (x.shape[0], x.shape[1], W.shape[2]), W.dtype)
        )
        if "b" in self.params:
            out += self.params["b"][:, None, :]
        return out

    def infer(self, x: Array) -> Array:
        W = self.params["W"]
        N = x.shape[1]
        out = self._eval.empty(f"out{N}", (W.shape[0], N, W.shape[2]), W.dtype)
        # one batch shared by every replicate: (N, D) @ (R, D, U) broadcasts, one GEMM each
        np.matmul(x[0] if x.strides[0] == 0 else x, W, out=out)
        if "b" in self.params:
            out += self.params["b"][:, None, :]
        return out

    def backward(self, dout: Array) -> Array:
        x, W = self._x, self.params["W"]
        R, N = x.shape[0], x.shape[1]
        if N == 1:
            # batch 1: the weight gradient is an outer product and the bias gradient the row
            # itself. np.matmul has no BLAS path for an inner dimension of 1 (its own loop is
            # ~10x slower than a GEMM), and a broadcast multiply's inner loop is only U long;
            # so both operands get a second row of zeros and one batched K = 2 GEMM does it:
            # each entry is x_i·dout_j + 0·0, exactly the one product (a -0.0 becomes +0.0, as
            # in the unstacked layer's K = 1 GEMM). 3.5x faster than the broadcast at 784×100
            D, U = W.shape[1], W.shape[2]
            xp = self._scratch.empty("x_pad", (R, 2, D), W.dtype)
            xp[:, 0] = x[:, 0]
            xp[:, 1] = 0
            dp = self._scratch.empty("dout_pad", (R, 2, U), W.dtype)
            dp[:, 0] = dout[:, 0]
            dp[:, 1] = 0
            np.matmul(xp.transpose(0, 2, 1), dp, out=self.grads["W"])
            if "b" in self.grads:
                self.grads["b"][...] = dout[:, 0]
        else:
            np.matmul(x.transpose(0, 2, 1), dout, out=self.grads["W"])
        if "b" in self.grads and N > 1:
            # a product with a ones vector, as the unstacked layer: the same rounding
            ones = self._scratch.ones("ones", (R, 1, N), dout.dtype)
            db = np.matmul(ones, dout, out=self._scratch.empty("db", (R, 1, W.shape[2]), W.dtype))
            self.grads["b"][...] = db[:, 0]
        if not self.needs_input_grad:
            return x[:0]
        dx = self._scratch.empty("dx", (R, N, W.shape[1]), W.dtype)
        return np.matmul(dout, W.transpose(0, 2, 1), out=dx)

    def drop(self, keep: Array) -> None:
        super().drop(keep)
        self._scratch.clear()
        self._eval.clear()


class _StackedActivation(_StackedLayer):
    """An elementwise (or row-wise) activation applied to the R·N rows at once."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__(layers)
        self.layer = copy.deepcopy(layers[0])  # a private instance: its caches are (R·N, ...)
        # evaluation instances by input shape, so that the training caches and each split's
        # work arrays stay put
        self._eval_layers: dict[tuple[int, ...], Layer] = {}
        self._probe: Layer | None = None  # one replicate's view, for telemetry statistics

    def forward(self, x: Array) -> Array:
        self._in_shape = x.shape
        self._x = x
        out = self.layer.forward(x.reshape(-1, *x.shape[2:]), train=True)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])

    def infer(self, x: Array) -> Array:
        layer = self._eval_layers.get(x.shape)
        if layer is None:
            layer = self._eval_layers[x.shape] = copy.deepcopy(self.layers[0])
        out = layer.forward(x.reshape(-1, *x.shape[2:]), train=False)
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])

    def drop(self, keep: Array) -> None:
        super().drop(keep)
        self._eval_layers.clear()

    def backward(self, dout: Array) -> Array:
        dx = self.layer.backward(dout.reshape(-1, *dout.shape[2:]))
        return dx.reshape(self._in_shape)

    def statistics(self, out: Array) -> list[dict[str, float]]:
        """Each replicate's activation statistics (saturation, dead fraction), as unstacked,
        for the last training forward pass; ``out`` is its output (R, N, ...)."""
        R, N = out.shape[:2]
        layer = self.layer
        kind = type(layer)
        if kind.statistics is Activation.statistics:  # type: ignore[attr-defined]
            return [{} for _ in range(R)]
        # the common ones on all rows at once: fractions of 0/1 counts, exact as unstacked
        if kind is ReLU:
            dead = (out <= 0).all(axis=1).reshape(R, -1).mean(axis=1)
            return [{"dead_fraction": v} for v in dead.tolist()]
        if kind is Sigmoid:
            flags = (out < SIGMOID_SATURATION) | (out > 1.0 - SIGMOID_SATURATION)
            return [{"saturation": v} for v in flags.reshape(R, -1).mean(axis=1).tolist()]
        if kind is Tanh:
            flags = np.abs(out) > TANH_SATURATION
            return [{"saturation": v} for v in flags.reshape(R, -1).mean(axis=1).tolist()]
        # any other: a probe instance whose per-sample caches are replicate r's rows of the
        # stacked instance's (the caches of an elementwise layer are elementwise too)
        if self._probe is None:
            self._probe = copy.deepcopy(layer)
        probe = self._probe
        cached = {
            name: value.reshape(R, N, *value.shape[1:])
            for name, value in vars(layer).items()
            if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == R * N
        }
        stats = []
        for r in range(R):
            for name, value in cached.items():
                setattr(probe, name, value[r])
            stats.append(probe.statistics(out[r]))  # type: ignore[attr-defined]
        return stats


class _StackedDropout(_StackedLayer):
    def forward(self, x: Array) -> Array:
        layer = self.layers[0]
        rate = float(layer.rate)  # type: ignore[attr-defined]
        if rate == 0.0:
            self._mask = None
            return x
        draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        u = np.empty(x.shape, dtype=draw_dtype)
        for r, rep in enumerate(self.layers):
            rep._rng.random(dtype=draw_dtype, out=u[r])  # type: ignore[attr-defined]
        keep = u >= rate
        scale = 1.0 / (1.0 - rate) if layer.mode == "inverted" else 1.0  # type: ignore[attr-defined]
        self._mask = np.multiply(keep, scale, dtype=x.dtype)
        return x * self._mask

    def backward(self, dout: Array) -> Array:
        return dout if self._mask is None else dout * self._mask

    def infer(self, x: Array) -> Array:
        layer = self.layers[0]
        rate = float(layer.rate)  # type: ignore[attr-defined]
        if rate and layer.mode == "scale_at_test":  # type: ignore[attr-defined]
            return x * (1.0 - rate)
        return x


class _StackedBatchNorm(_StackedLayer):
    def forward(self, x: Array) -> Array:
        layer = self.layers[0]
        R, C = x.shape[0], x.shape[2]
        self._axes = (1, *range(3, x.ndim))
        self._bshape = (R, 1, C) + (1,) * (x.ndim - 3)
        gamma = self.params["gamma"].reshape(self._bshape)
        beta = self.params["beta"].reshape(self._bshape)
        mu = x.mean(axis=self._axes, keepdims=True)
        xc = x - mu
        var = np.mean(xc * xc, axis=self._axes, keepdims=True)
        self._inv_std = 1.0 / np.sqrt(var + layer.eps)  # type: ignore[attr-defined]
        m = float(layer.momentum)  # type: ignore[attr-defined]
        rm, rv = self.state["running_mean"], self.state["running_var"]
        rm *= m
        rm += (1.0 - m) * mu.reshape(R, C)
        rv *= m
        rv += (1.0 - m) * var.reshape(R, C)
        self._xhat = xc * self._inv_std
        return self._xhat * gamma + beta

    def infer(self, x: Array) -> Array:
        # the running statistics of each replicate, in the unstacked layer's order of operations
        R, C = self.params["gamma"].shape
        bshape = (R, 1, C) + (1,) * (x.ndim - 3)
        xc = x - self.state["running_mean"].reshape(bshape)
        eps = self.layers[0].eps  # type: ignore[attr-defined]
        inv_std = 1.0 / np.sqrt(self.state["running_var"].reshape(bshape) + eps)
        return (xc * inv_std) * self.params["gamma"].reshape(bshape) + self.params["beta"].reshape(
            bshape
        )

    def backward(self, dout: Array) -> Array:
        axes, xhat = self._axes, self._xhat
        R, C = xhat.shape[0], xhat.shape[2]
        self.grads["beta"][...] = np.sum(dout, axis=axes).reshape(R, C)
        self.grads["gamma"][...] = np.sum(dout * xhat, axis=axes).reshape(R, C)
        dxhat = dout * self.params["gamma"].reshape(self._bshape)
        M = xhat[0].size // C
        dx = M * dxhat
        dx -= dxhat.sum(axis=axes, keepdims=True)
        dx -= xhat * np.sum(dxhat * xhat, axis=axes, keepdims=True)
        dx *= self._inv_std / M
        return dx


class _StackedReshape(_StackedLayer):
    def forward(self, x: Array) -> Array:
        layer = self.layers[0]
        assert layer.output_shape is not None
        return x.reshape(x.shape[0], x.shape[1], *layer.output_shape)

    def backward(self, dout: Array) -> Array:
        layer = self.layers[0]
        assert layer.input_shape is not None
        return dout.reshape(dout.shape[0], dout.shape[1], *layer.input_shape)


def _stacked_layer(layers: list[Layer]) -> _StackedLayer:
    first = layers[0]
    if isinstance(first, Dense):
        return _StackedDense(layers)
    if isinstance(first, Dropout):
        return _StackedDropout(layers)
    if isinstance(first, BatchNorm):
        return _StackedBatchNorm(layers)
    if isinstance(first, (Flatten, Reshape)):
        return _StackedReshape(layers)
    if isinstance(first, Activation):
        return _StackedActivation(layers)
    raise TypeError(f"layer {first.name!r} ({type(first).__name__}) has no stacked form")


# -- losses ------------------------------------------------------------------------------------
def _softmax_last(y: Array) -> Array:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class _StackedLoss:
    """Per-replicate batch-mean losses of ``y`` (R, N, K): ``forward`` returns shape (R,).

    Any loss works: by default each replicate's own loss object runs on its own rows (exact by
    construction). Subclasses vectorize the common losses in :meth:`_fast_forward`, which
    returns None for inputs it leaves to the per-replicate path (and its error messages).
    """

    def __init__(self, losses: list[Any]) -> None:
        self.losses = losses
        self.loss = losses[0]
        self._fast = False

    def drop(self, keep: Array) -> None:
        self.losses = [self.losses[i] for i in keep]

    def forward(self, y: Array, t: Array) -> Array:
        t = np.asarray(t)
        fast = self._fast_forward(y, t)
        self._fast = fast is not None
        if fast is not None:
            return fast
        return np.array([loss.forward(y[r], t[r]) for r, loss in enumerate(self.losses)])

    def backward(self) -> Array:
        if self._fast:
            return self._fast_backward()
        return np.stack([loss.backward() for loss in self.losses])

    def _fast_forward(self, y: Array, t: Array) -> Array | None:
        return None

    def _fast_backward(self) -> Array:
        raise NotImplementedError


class _StackedCrossEntropy(_StackedLoss):
    def _fast_forward(self, y: Array, t: Array) -> Array | None:
        R, N, K = y.shape
        if K < 2:
            return None
        if t.shape == (R, N):
            if t.dtype.kind not in "iu" or (t.size and (t.min() < 0 or t.max() >= K)):
                return None
        elif t.shape != y.shape:
            return None
        # all R·N rows at once, with the unstacked loss's tricks: the row maxima down the
        # columns of a transposed copy and the row sums as a GEMV (NumPy's axis reductions over
        # K ~ 10 columns loop per row)
        y2 = y.reshape(R * N, K)
        row_max = np.maximum.reduce(np.ascontiguousarray(y2.T), axis=0)
        z = y2 - row_max[:, None]
        e = np.exp(z)
        s = np.dot(e, np.ones(K, dtype=y.dtype))[:, None]
        log_s = np.log(s)
        if t.shape == (R, N):
            self._idx = (np.arange(R * N), t.reshape(-1))
            self._T: Array | None = None
            picked = z[self._idx].reshape(R, N)
            loss = (log_s.reshape(R, N).sum(axis=1) - picked.sum(axis=1)) / N
        else:
            self._T = t.reshape(R * N, K).astype(y.dtype, copy=False)
            z -= log_s
            loss = -np.sum((self._T * z).reshape(R, N * K), axis=1) / N
            self._t_sum = np.dot(self._T, np.ones(K, dtype=y.dtype))[:, None]
        e /= s
        self._p = e
        self._shape = (R, N, K)
        return np.asarray(loss, dtype=np.float64)

    def _fast_backward(self) -> Array:
        p = self._p
        if self._T is None:
            g = p.copy()
            g[self._idx] -= 1
        else:  # p·Σ_k t_k − t, which is p − t bit for bit when the rows sum to 1
            g = p * self._t_sum
            g -= self._T
        g *= 1.0 / self._shape[1]
        return g.reshape(self._shape)


class _StackedMSE(_StackedLoss):
    def _fast_forward(self, y: Array, t: Array) -> Array | None:
        out = self.loss.output
        R, N, K = y.shape
        if t.shape == (R, N) and K > 1 and t.dtype.kind in "iu":
            if t.size and (t.min() < 0 or t.max() >= K):
                return None  # the loss's own error message
            # class indices: one-hot rows, as the unstacked loss builds them
            onehot = np.zeros((R * N, K), dtype=y.dtype)
            onehot[np.arange(R * N), t.reshape(-1)] = 1
            t = onehot.reshape(R, N, K)
        if t.shape != y.shape or out not in MeanSquaredError.OUTPUTS:
            return None  # other targets, a bad output name: the loss's own path
        if out == "softmax":
            self._p = _softmax_last(y)
        elif out == "sigmoid":
            self._p = sigmoid(y)
        else:
            self._p = y
        self._diff = self._p - t.astype(y.dtype, copy=False)
        d = self._diff
        return 0.5 * np.sum(d * d, axis=(1, 2), dtype=np.float64) / y.shape[1]

    def _fast_backward(self) -> Array:
        p, g = self._p, self._diff / self._diff.shape[1]
        if self.loss.output == "softmax":
            return p * (g - np.sum(g * p, axis=-1, keepdims=True))
        if self.loss.output == "sigmoid":
            return g * p * (1 - p)
        return g


def _stacked_loss(losses: list[Any]) -> _StackedLoss:
    if type(losses[0]) is SoftmaxCrossEntropy:
        return _StackedCrossEntropy(losses)
    if type(losses[0]) is MeanSquaredError:
        return _StackedMSE(losses)
    return _StackedLoss(losses)


def _penalties(regularizers: Sequence[Any], W: Array) -> Array:
    """Each replicate's total penalty on its weights ``W`` (R, n)."""
    total = np.zeros(W.shape[0])
    for reg in regularizers:
        if type(reg) is L2:
            total += 0.5 * reg._strength() * np.einsum("ij,ij->i", W, W)
        elif type(reg) is L1:
            total += reg._strength() * np.sum(np.abs(W), axis=1)
        else:
            total += np.array([reg.penalty(W[r]) for r in range(W.shape[0])])
    return total


# -- the stacked network ---------------------------------------------------------------------
class StackedSequential:
    """R built networks of one architecture, trained as one model with a leading replicate axis.

    Parameters
    ----------
    nets : sequence of Sequential
        Built networks with identical configs (layers, loss, regularizers, dtype); they differ in
        their weights and random streams. Each stays the replicate's own network:
        :meth:`write_back` copies the trained parameters into it.

    Raises ValueError (naming the first difference, or the unsupported layer) when the networks
    cannot be stacked.
    """

    def __init__(self, nets: Sequence[Sequential]) -> None:
        nets = list(nets)
        if not nets:
            raise ValueError("StackedSequential needs at least one network")
        for i, net in enumerate(nets):
            if not net.built:
                raise ValueError(f"network {i} is not built")
            why = stacking_unsupported(net)
            if why:
                raise ValueError(why)
        config = _config(nets[0])
        for i, net in enumerate(nets[1:], start=1):
            if _config(net) != config:
                raise ValueError(f"network {i} has a different config from network 0")
            if net.telemetry != nets[0].telemetry:
                raise ValueError(f"network {i} has telemetry={net.telemetry}, network 0 not")
        self.nets = nets
        self.members = list(range(len(nets)))  # stack row -> index into ``nets``
        self.dtype = nets[0].dtype
        self.telemetry = nets[0].telemetry
        self.regularizers = nets[0].regularizers
        self.last_telemetry: list[dict[str, float]] = []
        self.non_finite: dict[int, str] = {}
        self._n_decay = nets[0]._decay_params.size
        self._decay_keys = nets[0].params.decay_keys or frozenset()
        # a network's ParamDict lists its parameters in the order of its flat array
        self._offsets: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for name, arr in nets[0].params.items():
            self._offsets[name] = (offset, arr.shape)
            offset += arr.size
        # two contiguous (R, n) blocks, weights ("decay") and the rest ("other"): the optimizer
        # then runs on contiguous arrays, as it does unstacked on a network's flat groups
        flat = np.stack([net._flat_params for net in nets])  # (R, total)
        self._decay = np.ascontiguousarray(flat[:, : self._n_decay])
        self._other = np.ascontiguousarray(flat[:, self._n_decay :])
        self.layers = [
            _stacked_layer([net.layers[i] for net in nets]) for i in range(len(nets[0].layers))
        ]
        for i, sl in enumerate(self.layers):
            for key in nets[0].layers[i].state:
                sl.state[key] = np.stack([net.layers[i].state[key] for net in nets])
        self._bind_views()
        self.loss = _stacked_loss([net.loss for net in nets])
        # evaluation has loss objects of its own: their caches are not the training step's
        self._eval_loss = _stacked_loss([copy.deepcopy(net.loss) for net in nets])
        first = nets[0]._backward_layers
        self._backward_layers = [
            sl for sl, layer in zip(self.layers, nets[0].layers) if any(layer is f for f in first)
        ][::-1]

    def _bind_views(self) -> None:
        """Point every stacked layer's params/grads at (R, *shape) views of the group blocks."""
        R, n = self._decay.shape[0], self._n_decay
        self._gdecay = np.zeros_like(self._decay)
        self._gother = np.zeros_like(self._other)
        for sl, layer in zip(self.layers, self.nets[0].layers):
            for key in layer.params:
                o, shape = self._offsets[f"{layer.name}.{key}"]
                size = math.prod(shape)
                p, g = (self._decay, self._gdecay) if o < n else (self._other, self._gother)
                o = o if o < n else o - n
                sl.params[key] = p[:, o : o + size].reshape(R, *shape)
                sl.grads[key] = g[:, o : o + size].reshape(R, *shape)
        self._group_params = ParamDict(
            {k: v for k, v in (("decay", self._decay), ("other", self._other)) if v.shape[1]}
        )
        self._group_params.decay_keys = frozenset({"decay"})
        self._group_grads = {
            k: v for k, v in (("decay", self._gdecay), ("other", self._gother)) if v.shape[1]
        }

    @property
    def n_replicates(self) -> int:
        return len(self.members)

    # -- training --------------------------------------------------------------------------------
    def compute_loss(self, x: Array, t: Array) -> Array:
        """Training-mode forward, loss and penalty of every replicate: ``x`` (R, N, ...),
        ``t`` (R, N) or (R, N, K) -> losses (R,) (the quantities :meth:`backward` differentiates)."""
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self._input = x
        self._outputs: list[Array] = []
        outputs = self._outputs
        h = x
        for layer in self.layers:
            h = layer.forward(h)
            outputs.append(h)
        losses = self.loss.forward(h, t)
        if self.regularizers:
            losses = losses + _penalties(self.regularizers, self._decay)
        return np.asarray(losses, dtype=np.float64)

    def backward(self) -> None:
        """Fill every replicate's gradients (and the penalty terms) for the last compute_loss."""
        dout = self.loss.backward()
        for layer in self._backward_layers:
            dout = layer.backward(dout)
        for reg in self.regularizers:
            reg.add_gradient(self._decay, self._gdecay)

    def train_step(self, x: Array, t: Array, optimizer: Optimizer) -> Array:
        """One update of every replicate: ``x`` (R, N, ...), ``t`` (R, N, ...) -> losses (R,).

        A replicate whose loss is not finite gets no update from this step (as unstacked, its
        parameters stay those before the step); its entry in :attr:`non_finite` names the first
        non-finite value, like :meth:`Sequential.train_step`'s error, and the caller drops it.
        The others are updated as usual.
        """
        losses = self.compute_loss(x, t)
        self.non_finite = {}
        bad = ~np.isfinite(losses)
        if bad.any():
            for r in np.flatnonzero(bad):
                self.non_finite[int(r)] = self._non_finite_report(
                    int(r), float(losses[r]), self._input, self._outputs
                )
            before = (self._decay[bad], self._other[bad])  # fancy indexing copies
        self.backward()
        if self.telemetry:
            stats = self._activation_statistics(self._outputs)
            self._gradient_norms(stats)
            snapshot = self._decay.copy()
        self._scale_gradients_in_place(optimizer)
        optimizer.update(self._group_params, self._group_grads)
        if self.telemetry:
            self._update_norms(stats, snapshot)
            self.last_telemetry = stats
        if bad.any():
            self._decay[bad], self._other[bad] = before
        return losses

    def _scale_gradients_in_place(self, optimizer: Optimizer) -> None:
        """Make the "scaled" buffer of an SGD-type optimizer the gradient block it scales.

        Its step is ``scaled = lr·g`` and then only ``scaled`` is used, so writing ``lr·g`` over
        ``g`` gives the same numbers bit for bit. It saves the pass through a separate
        weight-sized buffer that nothing else touches: for 10 replicates of the 784-100×4-10 MLP
        that buffer is 4.4 MB, which the step's forward and backward passes evict, and the SGD
        update went from about 520 to 280 µs of a ~900 µs batch-1 step (1 BLAS thread).
        The gradient blocks then hold ``lr·g`` after the update (each step overwrites them).
        The first update creates the optimizer's state; from the next one on the buffer is the
        gradient (after :meth:`drop`, which slices both into new arrays, it is re-pointed).
        """
        if type(optimizer) not in _SCALES_GRADIENT_ONCE:
            return
        state = optimizer.__dict__.get("_state", {})
        for key, g in self._group_grads.items():
            slots = state.get(key)
            if (
                slots is not None
                and slots.get("scaled") is not g
                and slots["scaled"].shape == g.shape
            ):
                slots["scaled"] = g

    # -- evaluation --------------------------------------------------------------------------
    def infer(self, x: Array) -> Array:
        """Evaluation-mode raw outputs of every replicate for one batch ``x`` (N, ...) that all
        of them see: shape (R, N, K). As ``Sequential.forward(x, train=False)`` per replicate
        (dropout off, batch norm on running statistics); the training caches stay as they were.
        """
        net = self.nets[0]
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if x.shape[1:] != net.input_shape:
            net.layers[0].check_input(x)  # raises ValueError naming layer and shapes
        h = np.broadcast_to(x, (self.n_replicates, *x.shape))
        for layer in self.layers:
            h = layer.infer(h)
        return h

    def evaluate(
        self, x: Array, t: Array, *, batch_size: int | None = None, predictions: bool = False
    ) -> tuple[list[dict[str, float]], Array | None]:
        """Each replicate's ``Sequential.evaluate(x, t, batch_size=...)`` from one stacked
        evaluation-mode pass per batch: ``({"loss": ..., "accuracy": ...} per stack row, preds)``.

        ``preds`` (with ``predictions=True``, else None) are the replicates'
        ``Sequential.predict`` outputs from the same pass, shape (R, N, K).
        """
        x, t = np.asarray(x), np.asarray(t)
        if len(x) != len(t):
            raise ValueError(f"x has {len(x)} samples but t has {len(t)}")
        R = self.n_replicates
        net = self.nets[0]
        total = np.zeros(R)
        correct = np.zeros(R, dtype=np.int64)
        n = 0
        classify: bool | None = None
        parts: list[Array] = []
        for sl in net._batches(len(x), batch_size):
            y = self.infer(x[sl])
            tb = t[sl]
            K = y.shape[2]
            total += self._eval_loss.forward(y, np.broadcast_to(tb, (R, *tb.shape))) * len(tb)
            n += len(tb)
            if classify is None:
                classify = net.loss.task == "classification" or _class_like(tb, K)
            if classify:
                if K > 1:  # every loss's predicted label (and Sequential's default): the argmax
                    labels = y.argmax(axis=2)
                else:
                    labels = np.stack(
                        [self.nets[m]._predict_labels(y[r]) for r, m in enumerate(self.members)]
                    )
                correct += np.sum(labels == _target_labels(tb, K), axis=1)
            if predictions:
                flat = y.reshape(R * y.shape[1], K)
                pred = self._eval_loss.loss.link(flat)
                parts.append(np.array(pred).reshape(y.shape))  # a copy: y is a reused buffer
        results = []
        for r in range(R):
            result = {"loss": float(total[r]) / max(n, 1)}
            if classify:
                result["accuracy"] = int(correct[r]) / max(n, 1)
            results.append(result)
        preds = None
        if predictions:
            preds = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return results, preds

    @property
    def group_params(self) -> dict[str, Array]:
        """Every replicate's parameters in two blocks, one row per replicate: ``"decay"`` (the
        weights, (R, n_decay)) and ``"other"`` (biases, batch-norm gamma/beta); updated in place."""
        return dict(self._group_params)

    @property
    def group_grads(self) -> dict[str, Array]:
        """The gradients of :attr:`group_params`, same keys and shapes (after a
        :meth:`train_step` with SGD, momentum or Nesterov they hold ``lr·g``: the update scales
        them in place)."""
        return dict(self._group_grads)

    def _non_finite_report(self, r: int, loss: float, x: Array, outputs: list[Array]) -> str:
        where = "the loss itself (every layer output is finite)"
        if not np.all(np.isfinite(x[r])):
            where = "the input batch"
        else:
            names = list(self.nets[0].params)
            bad_params = [k for k in names if not np.all(np.isfinite(self._param_view(k)[r]))]
            bad_outputs = [
                sl.name for sl, out in zip(self.layers, outputs) if not np.all(np.isfinite(out[r]))
            ]
            if bad_params:
                where = f"parameter {bad_params[0]!r}"
            elif bad_outputs:
                where = f"the output of layer {bad_outputs[0]!r}"
        return f"loss is {loss} (not finite); first non-finite value: {where}"

    def _param_view(self, qualified: str) -> Array:
        lname, key = qualified.rsplit(".", 1)
        layer = next(sl for sl in self.layers if sl.name == lname)
        return layer.params[key]

    # -- telemetry (per replicate, the keys of models.telemetry) --------------------------------
    def _activation_statistics(self, outputs: list[Array]) -> list[dict[str, float]]:
        R = self.n_replicates
        stats: list[dict[str, float]] = [{} for _ in range(R)]
        for sl, layer, out in zip(self.layers, self.nets[0].layers, outputs):
            is_activation = isinstance(layer, Activation)
            if is_activation or layer.decay_params:
                flat = out.reshape(R, -1)
                mean = flat.sum(axis=1) / flat.shape[1]
                centered = flat - mean[:, None].astype(flat.dtype)
                std = np.sqrt(np.einsum("ij,ij->i", centered, centered) / flat.shape[1])
                k_mean, k_std = f"act_mean/{sl.name}", f"act_std/{sl.name}"
                for r, (m, sd) in enumerate(zip(mean.tolist(), std.tolist())):
                    stats[r][k_mean] = m
                    stats[r][k_std] = sd
            if is_activation:
                assert isinstance(sl, _StackedActivation)
                for r, extra in enumerate(sl.statistics(out)):
                    for key, value in extra.items():
                        stats[r][f"{key}/{sl.name}"] = value
        return stats

    def _weight_views(self) -> list[tuple[str, Array, Array]]:
        out = []
        for sl, layer in zip(self.layers, self.nets[0].layers):
            for key in layer.params:
                if f"{layer.name}.{key}" in self._decay_keys:
                    out.append((f"{layer.name}.{key}", sl.params[key], sl.grads[key]))
        return out

    def _gradient_norms(self, stats: list[dict[str, float]]) -> None:
        R = self.n_replicates
        for name, _, g in self._weight_views():
            gf = g.reshape(R, -1)
            norms = np.sqrt(np.einsum("ij,ij->i", gf, gf))
            key = f"grad_norm/{name}"
            for r, v in enumerate(norms.tolist()):
                stats[r][key] = v

    def _update_norms(self, stats: list[dict[str, float]], snapshot: Array) -> None:
        delta_all = self._decay - snapshot
        for name, W, _ in self._weight_views():
            o, _ = self._offsets[name]
            size = W[0].size
            d = delta_all[:, o : o + size]
            norms = np.sqrt(np.einsum("ij,ij->i", d, d))
            key = f"update_norm/{name}"
            for r, v in enumerate(norms.tolist()):
                stats[r][key] = v

    # -- replicates in and out ------------------------------------------------------------------
    def write_back(self, rows: Sequence[int] | None = None) -> None:
        """Copy parameters and running statistics of stack rows ``rows`` (default: all) into
        their replicates' own networks."""
        for row in range(self.n_replicates) if rows is None else rows:
            net = self.nets[self.members[row]]
            np.copyto(net._flat_params[: self._n_decay], self._decay[row])
            np.copyto(net._flat_params[self._n_decay :], self._other[row])
            for sl, layer in zip(self.layers, net.layers):
                for key, arr in sl.state.items():
                    np.copyto(layer.state[key], arr[row])

    def drop(self, rows: Sequence[int], optimizer: Optimizer | None = None) -> None:
        """Remove stack rows ``rows`` (their networks keep what :meth:`write_back` gave them).

        ``optimizer`` (the one passed to :meth:`train_step`) has its per-parameter state sliced
        the same way, so the remaining replicates keep their momenta.
        """
        drop = {int(r) for r in rows}
        keep = np.array([r for r in range(self.n_replicates) if r not in drop], dtype=np.intp)
        if len(keep) == self.n_replicates:
            return
        self.members = [self.members[i] for i in keep]
        self._decay = np.ascontiguousarray(self._decay[keep])
        self._other = np.ascontiguousarray(self._other[keep])
        for sl in self.layers:
            for key in list(sl.state):
                sl.state[key] = np.ascontiguousarray(sl.state[key][keep])
            sl.drop(keep)
        self._bind_views()
        self.loss.drop(keep)
        self._eval_loss.drop(keep)
        if optimizer is not None:
            state = optimizer.__dict__.get("_state", {})
            for slots in state.values():
                for name in slots:
                    slots[name] = np.ascontiguousarray(slots[name][keep])


#: Above this many multiply-adds per replicate and step (batch × weights), a step is GEMM-bound:
#: stacking gains nothing there and its batch gathers cost memory traffic. Measured with
#: ``benchmarks/replicates.py``: the 784-100×4-10 MLP (109 k weights) gained at batch 32 and
#: broke even or lost from batch 128; the digits MLP (7.4 k weights) gained up to batch 512.
#: Re-measured after the batch-1 gradient GEMM and the in-place SGD scaling (R = 3 and 10,
#: ``--quick``): the 784 MLP 1.19-1.30× at batch 32, 1.01-1.06× from batch 128 (within the
#: run-to-run spread, so those still train unstacked); the digits MLP 1.06-2.42× up to 512.
STACK_MAX_MACS = 4_000_000


def stacking_pays(n_replicates: int, batch_size: int, widths: Sequence[int]) -> bool:
    """Whether training ``n_replicates`` stacked is expected to be faster than one by one, for
    an MLP of layer widths ``widths`` (input first) at ``batch_size``.

    A step of the zoo's small networks is mostly per-call overhead, which stacking shares; a
    large step is GEMM-bound (see :data:`STACK_MAX_MACS`). The harness stacks where this says
    so and trains unstacked elsewhere, so stacking is never the slower choice.
    """
    weights = sum(a * b for a, b in itertools.pairwise(widths))
    return n_replicates >= 2 and batch_size * weights <= STACK_MAX_MACS
