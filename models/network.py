"""The network container: :class:`Sequential`, a stack of layers with a loss.

Parameters are walked by qualified name (``"dense_0.W"``). After :meth:`Sequential.build`, every
parameter (and its gradient) is a view into one contiguous array per group ("decay": weights that
regularizers and AdamW decay; "other": biases, batch-norm gamma/beta), so an optimizer step is a
handful of NumPy calls whatever the depth. ``net.params`` still maps each qualified name to the
very array its layer reads and writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import telemetry as telemetry_mod
from ._checks import check_int
from .base import Array, Layer, Loss, NonFiniteError, Optimizer, Shape
from .layers import LAYERS
from .losses import LOSSES, BaseLoss
from .optimizers import ParamDict
from .registry import Spec, SpecError
from .regularizers import REGULARIZERS, Regularizer

__all__ = ["Sequential"]

_PARAMS_PREFIX = "params/"
_STATE_PREFIX = "state/"
_CONFIG_KEY = "__config__"


class Sequential:
    """A stack of layers trained on one loss, with optional weight penalties and telemetry.

    Parameters
    ----------
    layers : list of Layer
        Unbuilt layers, applied in order. Each gets the name ``"<registry name>_<index>"``.
    loss : Loss or spec
        The loss on the last layer's raw outputs (it owns the output link).
    regularizers : sequence of Regularizer or spec
        Penalties on every layer's ``decay_params`` (e.g. ``[{"name": "l2", "weight_decay": 0.1}]``).
    telemetry : bool
        When True, each :meth:`train_step` fills :attr:`last_telemetry` (see :mod:`models.telemetry`).

    Examples
    --------
    >>> import numpy as np
    >>> from models import Sequential, LAYERS, OPTIMIZERS
    >>> net = Sequential([LAYERS.build({"name": "dense", "units": 8}), LAYERS.build("relu"),
    ...                   LAYERS.build({"name": "dense", "units": 3})]).build(
    ...     (4,), rng=np.random.default_rng(0))
    >>> loss = net.train_step(np.ones((2, 4)), np.array([0, 2]), OPTIMIZERS.build("sgd"))
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: Loss | Spec = "cross_entropy",
        regularizers: Sequence[Regularizer | Spec] = (),
        telemetry: bool = False,
    ) -> None:
        self.layers: list[Layer] = list(layers)
        self.loss: Loss = loss if isinstance(loss, Loss) else LOSSES.build(loss)
        self.regularizers: list[Regularizer] = [
            r if isinstance(r, Regularizer) else REGULARIZERS.build(r) for r in regularizers
        ]
        self.telemetry = bool(telemetry)
        self.last_telemetry: dict[str, float] = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.dtype: np.dtype[Any] = np.dtype(np.float32)
        self.built = False
        self.params: ParamDict = ParamDict()
        self.grads: dict[str, Array] = {}
        self._outputs: list[Array] = []
        self._layer_rngs: list[np.random.Generator] = []

    # -- construction -----------------------------------------------------------------------
    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Sequential:
        """Create every layer's parameters for per-sample inputs of ``input_shape``.

        Weights are drawn from ``rng`` layer by layer; each stochastic layer (dropout) then gets
        its own generator spawned from ``rng``, so the same ``rng`` seed gives bit-identical
        initial weights *and* dropout masks. Returns ``self``.
        """
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is not a Layer: {layer!r}")
            if any(layer is other for other in self.layers[:i]):
                raise ValueError(f"layer {i} ({layer!r}) appears twice; create a new instance")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        shape: Shape = tuple(int(d) for d in input_shape)
        self.input_shape = shape
        for i, layer in enumerate(self.layers):
            layer.name = (
                f"{getattr(type(layer), 'registry_name', type(layer).__name__.lower())}_{i}"
            )
            try:
                shape = tuple(layer.build(shape, rng=rng, dtype=dtype))
            except SpecError:
                raise  # already names the component and lists the valid choices
            except ValueError as exc:
                raise ValueError(f"building layer {layer.name!r} on input {shape}: {exc}") from exc
        if len(shape) != 1:
            raise ValueError(
                f"the last layer {self.layers[-1].name!r} outputs per-sample shape {shape}; the "
                "loss needs (K,): add a 'flatten' (or 'global_avg_pool') and a 'dense' layer"
            )
        self.output_shape = shape
        self.dtype = dtype
        self.set_rng(rng)
        self._pack_parameters()
        trainable = [i for i, layer in enumerate(self.layers) if layer.params]
        first = trainable[0] if trainable else len(self.layers)
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = i != first
        self._backward_layers = self.layers[first:][::-1]
        self.built = True
        return self

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give each stochastic layer a generator spawned from ``rng`` (in layer order)."""
        stochastic = [layer for layer in self.layers if layer.stochastic]
        self._layer_rngs = rng.spawn(len(stochastic)) if stochastic else []
        for layer, child in zip(stochastic, self._layer_rngs):
            layer.set_rng(child)

    def _pack_parameters(self) -> None:
        """Move every parameter and gradient into one flat array per group; layers get views."""
        entries = [
            (layer, key, key in layer.decay_params) for layer in self.layers for key in layer.params
        ]
        entries.sort(key=lambda e: not e[2])  # stable: decayed weights first, in layer order
        total = sum(layer.params[key].size for layer, key, _ in entries)
        n_decay = sum(layer.params[key].size for layer, key, decay in entries if decay)
        self._flat_params = np.zeros(total, dtype=self.dtype)
        self._flat_grads = np.zeros(total, dtype=self.dtype)
        self.params = ParamDict()
        self.grads = {}
        offset = 0
        for layer, key, _ in entries:
            arr = layer.params[key]
            view = self._flat_params[offset : offset + arr.size].reshape(arr.shape)
            gview = self._flat_grads[offset : offset + arr.size].reshape(arr.shape)
            view[...] = arr
            layer.params[key], layer.grads[key] = view, gview
            qualified = f"{layer.name}.{key}"
            self.params[qualified], self.grads[qualified] = view, gview
            offset += arr.size
        self.params.decay_keys = frozenset(
            f"{layer.name}.{key}" for layer, key, decay in entries if decay
        )
        self._decay_params = self._flat_params[:n_decay]
        self._decay_grads = self._flat_grads[:n_decay]
        groups = {"decay": (0, n_decay), "other": (n_decay, total)}
        self._group_params = ParamDict(
            {k: self._flat_params[a:b] for k, (a, b) in groups.items() if b > a}
        )
        self._group_params.decay_keys = frozenset({"decay"})
        self._group_grads = {k: self._flat_grads[a:b] for k, (a, b) in groups.items() if b > a}

    # -- forward / backward -------------------------------------------------------------------
    def _require_built(self) -> None:
        if not self.built:
            raise RuntimeError("call build(input_shape, rng=...) before using the network")

    def _prepare_input(self, x: Any) -> Array:
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        assert self.input_shape is not None
        if x.shape[1:] != self.input_shape:
            self.layers[0].check_input(x)  # raises ValueError naming layer and shapes
        return x

    def _forward(self, x: Any, train: bool) -> Array:
        self._require_built()
        x = self._prepare_input(x)
        self._input = x
        outputs = self._outputs = []
        for layer in self.layers:
            x = layer.forward(x, train=train)
            outputs.append(x)
        return x

    @property
    def layer_outputs(self) -> list[tuple[Layer, Array]]:
        """``(layer, output)`` pairs of the last forward pass (buffers: valid until the next one)."""
        return list(zip(self.layers, self._outputs))

    def forward(self, x: Any, *, train: bool = True) -> Array:
        """Raw outputs (logits) for a batch ``x`` of shape ``(N, *input_shape)``: ``(N, K)``."""
        return self._forward(x, train).copy()

    def compute_loss(self, x: Any, t: Any, *, train: bool = True) -> float:
        """Forward pass, loss and regularization penalty (the quantity ``backward`` differentiates)."""
        y = self._forward(x, train)
        loss = self.loss.forward(y, t)
        for reg in self.regularizers:
            loss += reg.penalty(self._decay_params)
        return loss

    def backward(self) -> None:
        """Fill every layer's ``grads`` (and the regularization terms) for the last compute_loss."""
        dout = self.loss.backward()
        for layer in self._backward_layers:
            dout = layer.backward(dout)
        for reg in self.regularizers:
            reg.add_gradient(self._decay_params, self._decay_grads)

    def train_step(self, x: Any, t: Any, optimizer: Optimizer) -> float:
        """One update: ``compute_loss(train=True)``, ``backward``, ``optimizer.update``.

        The optimizer receives the flat parameter groups (keys ``"decay"`` and ``"other"``), so
        its state is per group. Raises :class:`~models.base.NonFiniteError` before any update
        when the loss is NaN or infinite, naming the first layer whose output is not finite.
        """
        loss = self.compute_loss(x, t, train=True)
        if not math.isfinite(loss):
            raise NonFiniteError(self._non_finite_report(loss))
        self.backward()
        if self.telemetry:
            stats = telemetry_mod.activation_statistics(self)
            stats.update(telemetry_mod.gradient_norms(self))
            before = telemetry_mod.snapshot_weights(self)
        optimizer.update(self._group_params, self._group_grads)
        if self.telemetry:
            stats.update(telemetry_mod.update_norms(self, before))
            self.last_telemetry = stats
        return loss

    def _non_finite_report(self, loss: float) -> str:
        where = "the loss itself (every layer output is finite)"
        if not np.all(np.isfinite(self._input)):
            where = "the input batch"
        else:
            bad_params = [k for k, v in self.params.items() if not np.all(np.isfinite(v))]
            bad_outputs = [
                layer.name
                for layer, out in zip(self.layers, self._outputs)
                if not np.all(np.isfinite(out))
            ]
            if bad_params:
                where = f"parameter {bad_params[0]!r}"
            elif bad_outputs:
                where = f"the output of layer {bad_outputs[0]!r}"
        return f"loss is {loss} (not finite); first non-finite value: {where}"

    # -- inference ----------------------------------------------------------------------------
    def _batches(self, n: int, batch_size: int | None) -> Iterator[slice]:
        if batch_size is None:
            yield slice(0, n)
            return
        check_int("predict/evaluate", "batch_size", batch_size)
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))

    def predict(self, x: Any, *, batch_size: int | None = None) -> Array:
        """Evaluation-mode predictions with the loss's link applied (probabilities or values)."""
        x = np.asarray(x)
        parts = []
        for sl in self._batches(len(x), batch_size):
            y = self._forward(x[sl], train=False)
            pred = self.loss.link(y)
            parts.append(pred.copy() if pred is y else pred)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def evaluate(self, x: Any, t: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Evaluation-mode ``{"loss": ..., "accuracy": ...}`` (data loss, without penalties).

        ``accuracy`` is reported for classification losses, and for ``mse`` when the targets are
        class indices or one-hot rows.
        """
        x, t = np.asarray(x), np.asarray(t)
        if len(x) != len(t):
            raise ValueError(f"x has {len(x)} samples but t has {len(t)}")
        total, correct, n = 0.0, 0, 0
        classify: bool | None = None
        for sl in self._batches(len(x), batch_size):
            y = self._forward(x[sl], train=False)
            tb = t[sl]
            total += self.loss.forward(y, tb) * len(tb)
            n += len(tb)
            if classify is None:
                classify = self.loss.task == "classification" or _class_like(tb, y.shape[1])
            if classify:
                correct += int(np.sum(self._predict_labels(y) == _target_labels(tb, y.shape[1])))
        result = {"loss": total / max(n, 1)}
        if classify:
            result["accuracy"] = correct / max(n, 1)
        return result

    def _predict_labels(self, y: Array) -> Array:
        if isinstance(self.loss, BaseLoss):
            return self.loss.predict_labels(y)
        if y.shape[1] == 1:
            return (self.loss.link(y)[:, 0] > 0.5).astype(np.intp)
        return np.asarray(y.argmax(axis=1))

    def activations(self, x: Any) -> dict[str, Array]:
        """Evaluation-mode forward; every layer's output (a copy) keyed by layer name."""
        self._forward(x, train=False)
        return {layer.name: out.copy() for layer, out in zip(self.layers, self._outputs)}

    # -- parameters, state, persistence -------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(layer.n_params for layer in self.layers))

    def state(self) -> dict[str, Array]:
        """Non-trainable arrays (batch-norm running statistics) by qualified name."""
        return {
            f"{layer.name}.{key}": arr for layer in self.layers for key, arr in layer.state.items()
        }

    @contextmanager
    def preserving_state(self) -> Iterator[None]:
        """Run a block, then restore running statistics and dropout generators (not grads)."""
        saved = {k: v.copy() for k, v in self.state().items()}
        rng_states = [g.bit_generator.state for g in self._layer_rngs]
        try:
            yield
        finally:
            for key, arr in self.state().items():
                np.copyto(arr, saved[key])
            for g, s in zip(self._layer_rngs, rng_states):
                g.bit_generator.state = s

    def save_weights(self, path: str | Path) -> None:
        """Write parameters, layer state and the config to a ``.npz`` file."""
        self._require_built()
        arrays = {_PARAMS_PREFIX + k: v for k, v in self.params.items()}
        arrays.update({_STATE_PREFIX + k: v for k, v in self.state().items()})
        arrays[_CONFIG_KEY] = np.array(json.dumps(self.get_config(), default=repr))
        savez: Any = np.savez  # its stub mistakes **arrays for the allow_pickle flag
        with open(path, "wb") as fh:  # a file object keeps np.savez from appending ".npz"
            savez(fh, **arrays)

    def load_weights(self, path: str | Path) -> None:
        """Copy parameters and state from a file written by :meth:`save_weights` (in place)."""
        self._require_built()
        targets = {_PARAMS_PREFIX + k: v for k, v in self.params.items()}
        targets.update({_STATE_PREFIX + k: v for k, v in self.state().items()})
        with np.load(path) as data:
            stored = set(data.files) - {_CONFIG_KEY}
            missing, unexpected = sorted(set(targets) - stored), sorted(stored - set(targets))
            if missing or unexpected:
                raise ValueError(
                    f"{path}: weights do not match this network: missing {missing}, "
                    f"unexpected {unexpected}"
                )
            for key, target in targets.items():
                value = data[key]
                if value.shape != target.shape:
                    raise ValueError(
                        f"{path}: {key} has shape {value.shape}, the network expects {target.shape}"
                    )
                np.copyto(target, value, casting="same_kind")

    def get_config(self) -> dict[str, Any]:
        """The architecture as plain data; :meth:`from_config` rebuilds it."""
        return {
            "layers": [layer.get_config() for layer in self.layers],
            "loss": self.loss.get_config(),
            "regularizers": [r.get_config() for r in self.regularizers],
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, rng: np.random.Generator, telemetry: bool = False
    ) -> Sequential:
        """Rebuild (and build) the network described by :meth:`get_config`."""
        net = cls(
            [LAYERS.build(spec) for spec in config["layers"]],
            loss=config["loss"],
            regularizers=config.get("regularizers", ()),
            telemetry=telemetry,
        )
        if config.get("input_shape") is None:
            return net
        return net.build(
            tuple(config["input_shape"]), rng=rng, dtype=config.get("dtype", "float32")
        )

    def __repr__(self) -> str:
        rows = [("Layer", "Output shape", "Params")]
        for layer in self.layers:
            shape = "?" if layer.output_shape is None else str((None, *layer.output_shape))
            rows.append((layer.name or type(layer).__name__, shape, f"{layer.n_params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [
            f"Sequential(input={self.input_shape}, dtype={self.dtype.name}, loss={self.loss!r}"
            + (f", regularizers={self.regularizers!r}" if self.regularizers else "")
            + ")"
        ]
        for r in rows:
            lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}")
        lines.append(f"  Total params: {self.n_params:,}")
        return "\n".join(lines)


def _class_like(t: Array, K: int) -> bool:
    """Whether targets look like classes: integer indices, or one-hot rows with K > 1."""
    if K < 2:
        return False
    if t.ndim == 1:
        return t.dtype.kind in "iub"
    if t.ndim == 2 and t.shape[1] == K:
        return bool(np.all((t == 0) | (t == 1)) and np.all(t.sum(axis=1) == 1))
    return False


def _target_labels(t: Array, K: int) -> Array:
    """True class per sample from class indices, one-hot/soft rows or single-output targets."""
    if K == 1:
        flat = t.reshape(len(t), -1)[:, 0]
        return (flat > (0 if flat.min() < 0 else 0.5)).astype(np.intp)
    return t.argmax(axis=1) if t.ndim == 2 else t.astype(np.intp)
