"""Training telemetry: activation, saturation, dead-unit, gradient-norm and update-norm statistics.

Off by default. With ``Sequential(..., telemetry=True)`` every ``train_step`` leaves a flat
``dict[str, float]`` in ``net.last_telemetry``; :func:`layer_statistics` computes the same
activation and gradient statistics for one batch without changing the network (used at
initialization, "epoch 0"). Keys, with layer names such as ``dense_0`` or ``relu_1``:

``act_mean/<layer>``, ``act_std/<layer>``
    mean and standard deviation of the output of every activation layer and every layer with
    weights (dense, conv);
``saturation/<layer>``
    sigmoid: fraction of outputs < 0.01 or > 0.99; tanh: fraction with |output| > 0.99;
``dead_fraction/<layer>``
    ReLU family: fraction of units whose local gradient is 0 for every sample of the batch
    (for ReLU: output 0 everywhere; never for leaky ReLU with alpha > 0);
``grad_norm/<layer>.<param>``, ``update_norm/<layer>.<param>``
    L2 norm of each weight gradient and of the update the optimizer applied to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .activations import Activation
from .base import Array

if TYPE_CHECKING:
    from .network import Sequential

__all__ = [
    "activation_statistics",
    "gradient_norms",
    "layer_statistics",
    "snapshot_weights",
    "update_norms",
]


def _mean_std(out: Array) -> tuple[float, float]:
    """Mean and (population) standard deviation in three vectorized passes.

    ``np.std`` costs about ten NumPy calls; this is the hot part of telemetry at small batches.
    """
    flat = out.reshape(-1)
    mean = float(np.add.reduce(flat)) / flat.size
    centered = flat - flat.dtype.type(mean)
    return mean, float(np.sqrt(np.dot(centered, centered) / flat.size))


def activation_statistics(net: Sequential) -> dict[str, float]:
    """Statistics of the layer outputs of ``net``'s last forward pass."""
    stats: dict[str, float] = {}
    for layer, out in net.layer_outputs:
        is_activation = isinstance(layer, Activation)
        if is_activation or layer.decay_params:
            mean, std = _mean_std(out)
            stats[f"act_mean/{layer.name}"] = mean
            stats[f"act_std/{layer.name}"] = std
        if is_activation:
            for key, value in layer.statistics(out).items():  # type: ignore[attr-defined]
                stats[f"{key}/{layer.name}"] = value
    return stats


def _weights(net: Sequential) -> list[tuple[str, Array]]:
    decay = net.params.decay_keys or frozenset()
    return [(name, arr) for name, arr in net.params.items() if name in decay]


def gradient_norms(net: Sequential) -> dict[str, float]:
    """L2 norm of each weight gradient (after the regularization terms)."""
    return {
        f"grad_norm/{name}": float(np.sqrt(np.dot(g.ravel(), g.ravel())))
        for name, g in ((name, net.grads[name]) for name, _ in _weights(net))
    }


def snapshot_weights(net: Sequential) -> dict[str, Array]:
    """Copies of the weights, to measure the next update with :func:`update_norms`."""
    return {name: arr.copy() for name, arr in _weights(net)}


def update_norms(net: Sequential, before: dict[str, Array]) -> dict[str, float]:
    """L2 norm of ``W_now − W_before`` for every weight in ``before``."""
    out: dict[str, float] = {}
    for name, old in before.items():
        delta = net.params[name] - old
        out[f"update_norm/{name}"] = float(np.sqrt(np.dot(delta.ravel(), delta.ravel())))
    return out


def layer_statistics(net: Sequential, x: Any, t: Any) -> dict[str, float]:
    """Activation statistics and weight-gradient norms for one batch, without updating.

    Runs a training-mode forward and backward pass (dropout active, batch statistics), then
    restores the batch-norm running statistics and dropout generators; parameters are never
    touched (gradients are overwritten). Also returns the batch ``loss``.
    """
    with net.preserving_state():
        loss = net.compute_loss(x, t, train=True)
        net.backward()
    stats = activation_statistics(net)
    stats.update(gradient_norms(net))
    stats["loss"] = float(loss)
    return stats
