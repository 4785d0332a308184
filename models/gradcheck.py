"""Numerical gradient checks (central differences in float64), shipped with the package.

Every check compares an analytic gradient ``a`` with a numerical one ``n`` by the relative error
``|a − n| / max(|a|, |n|, floor)`` and raises ``AssertionError`` naming the parameter, the worst
index and both values when the largest error reaches ``tol`` (default 1e-6).

Why a floor: with h = 1e-5 the central difference of an O(1) objective carries a rounding error
of about ε·|f|/h ≈ 1e-11, so entries whose true gradient is below ~1e-5 cannot be resolved to a
relative 1e-6; below ``floor`` = 1e-4 (a 10x margin) the error is measured against ``floor``
instead, i.e. an absolute tolerance of tol·floor = 1e-10.

The ``check_registered_*`` functions build any registered component from the arguments it
declares in ``example_kwargs`` / ``example_input_shape`` (layers) or ``example_batch`` (losses,
plus one check per kind in a loss's ``example_targets``: one-hot, soft labels...), which is how the test suite checks every registry entry without a per-component test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Array, Layer, Loss, Shape
from .registry import Registry

if TYPE_CHECKING:
    from .network import Sequential
    from .regularizers import Regularizer

__all__ = [
    "DEFAULT_FLOOR",
    "DEFAULT_H",
    "DEFAULT_TOL",
    "assert_gradients_close",
    "build_example_layer",
    "check_layer_gradients",
    "check_loss_gradients",
    "check_network_gradients",
    "check_registered_layer",
    "check_registered_loss",
    "check_regularizer_gradients",
    "check_stacked_gradients",
    "kink_safe_input",
    "numerical_gradient",
    "relative_error",
]

DEFAULT_H = 1e-5
DEFAULT_TOL = 1e-6
DEFAULT_FLOOR = 1e-4
#: per-sample input shape used for components that do not declare ``example_input_shape``
DEFAULT_INPUT_SHAPE: Shape = (6,)
#: batch size of the examples: >= 2 so batch norm's batch variance is not degenerate
EXAMPLE_BATCH = 4


def numerical_gradient(f: Callable[[Array], float], x: Array, h: float = DEFAULT_H) -> Array:
    """Central-difference gradient of the scalar ``f(x)`` with respect to ``x`` (float64).

    ``x`` is perturbed in place one entry at a time and restored; ``f`` is called with ``x``
    (like the book's ``numerical_gradient(f, x)``), so closures over ``x`` or over arrays that
    share its memory both work.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + h
        f_plus = f(x)
        x[idx] = orig - h
        f_minus = f(x)
        x[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(analytic: Array, numeric: Array, floor: float = DEFAULT_FLOOR) -> Array:
    """Elementwise ``|a − n| / max(|a|, |n|, floor)``."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)


def assert_gradients_close(
    name: str,
    analytic: Array,
    numeric: Array,
    *,
    tol: float = DEFAULT_TOL,
    floor: float = DEFAULT_FLOOR,
) -> float:
    """Return the max relative error, or raise AssertionError naming ``name`` and the worst index."""
    if np.shape(analytic) != np.shape(numeric):
        raise AssertionError(
            f"gradient of {name!r} has shape {np.shape(analytic)}, expected {np.shape(numeric)}"
        )
    if np.size(numeric) == 0:
        return 0.0
    err = relative_error(analytic, numeric, floor)
    if not np.all(np.isfinite(err)):
        bad = np.unravel_index(int(np.argmin(np.isfinite(err))), err.shape)
        raise AssertionError(
            f"gradient check failed for {name!r}: non-finite value at index {bad}: "
            f"analytic {analytic[bad]!r}, numerical {numeric[bad]!r}"
        )
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    max_err = float(err[worst])
    if max_err >= tol:
        raise AssertionError(
            f"gradient check failed for {name!r}: max relative error {max_err:.3e} >= tol {tol:g} "
            f"at index {tuple(int(i) for i in worst)}: analytic {float(analytic[worst])!r}, "
            f"numerical {float(numeric[worst])!r}"
        )
    return max_err


def kink_safe_input(rng: np.random.Generator, shape: Shape) -> Array:
    """Float64 values with distinct magnitudes in [0.1, 1.1) and random signs.

    Keeps ReLU/abs inputs away from 0 and max-pool/maxout windows free of ties (any two values
    differ by at least 1/size, far more than the finite-difference step).
    """
    n = math.prod(shape)
    magnitudes = 0.1 + (rng.permutation(n) + 0.5) / n
    signs = rng.choice([-1.0, 1.0], size=n)
    return (signs * magnitudes).reshape(shape)


def _require_float64(what: str, arrays: dict[str, Array]) -> None:
    bad = {k: v.dtype for k, v in arrays.items() if v.dtype != np.float64}
    if bad:
        raise TypeError(
            f"gradient checks need float64; {what} has {bad} (build with dtype=float64)"
        )


def check_layer_gradients(
    layer: Layer,
    x: Array,
    *,
    dout: Array | None = None,
    train: bool = True,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
    h: float = DEFAULT_H,
) -> dict[str, float]:
    """Check ``dx`` and every parameter gradient of a built float64 layer.

    The objective is ``sum(forward(x) * dout)`` with a random ``dout`` (drawn from ``seed``) when
    none is given. A stochastic layer gets a fresh generator seeded with ``seed`` before every
    forward, so its dropout mask is fixed. Returns the max relative error per name
    (``"x"``, ``"W"``, ...).
    """
    x = np.array(x, dtype=np.float64)
    _require_float64(f"layer {layer.name or type(layer).__name__!r}", layer.params)
    rng = np.random.default_rng(seed)

    def run() -> Array:
        if layer.stochastic:
            layer.set_rng(np.random.default_rng(seed))
        return layer.forward(x, train=train)

    out = run()
    weights = rng.standard_normal(out.shape) if dout is None else np.asarray(dout, np.float64)
    dx = np.array(layer.backward(weights), copy=True)
    analytic = {k: g.copy() for k, g in layer.grads.items()}

    def objective(_: Array) -> float:
        return float(np.sum(run() * weights))

    label = layer.name or getattr(type(layer), "registry_name", type(layer).__name__)
    errors = {
        "x": assert_gradients_close(f"{label}.x", dx, numerical_gradient(objective, x, h), tol=tol)
    }
    for key, p in layer.params.items():
        numeric = numerical_gradient(objective, p, h)
        errors[key] = assert_gradients_close(f"{label}.{key}", analytic[key], numeric, tol=tol)
    return errors


def check_loss_gradients(
    loss: Loss, y: Array, t: Array, *, tol: float = DEFAULT_TOL, h: float = DEFAULT_H
) -> float:
    """Check ``dL/dy`` of a loss at float64 outputs ``y`` and targets ``t``; return the max error."""
    y = np.array(y, dtype=np.float64)
    loss.forward(y, t)
    analytic = np.array(loss.backward(), copy=True)
    numeric = numerical_gradient(lambda v: loss.forward(v, t), y, h)
    name = getattr(type(loss), "registry_name", type(loss).__name__)
    return assert_gradients_close(f"loss {name}", analytic, numeric, tol=tol)


def check_regularizer_gradients(
    reg: Regularizer, W: Array, *, tol: float = DEFAULT_TOL, h: float = DEFAULT_H
) -> float:
    """Check a regularizer's gradient against its penalty at float64 weights ``W``."""
    W = np.array(W, dtype=np.float64)
    analytic = np.zeros_like(W)
    reg.add_gradient(W, analytic)
    numeric = numerical_gradient(reg.penalty, W, h)
    name = getattr(type(reg), "registry_name", type(reg).__name__)
    return assert_gradients_close(f"regularizer {name}", analytic, numeric, tol=tol)


def check_network_gradients(
    net: Sequential,
    x: Array,
    t: Array,
    *,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
    h: float = DEFAULT_H,
) -> dict[str, float]:
    """Check every parameter gradient of a built float64 network (loss + penalties, train mode).

    Dropout layers get generators spawned from ``seed`` before every evaluation, so all
    evaluations share one mask. Returns the max relative error per qualified parameter name.
    """
    _require_float64("the network", dict(net.params))

    def run(_: Array | None = None) -> float:
        net.set_rng(np.random.default_rng(seed))
        return net.compute_loss(x, t, train=True)

    run()
    net.backward()
    analytic = {k: g.copy() for k, g in net.grads.items()}
    return {
        k: assert_gradients_close(k, analytic[k], numerical_gradient(run, p, h), tol=tol)
        for k, p in net.params.items()
    }


def check_stacked_gradients(
    nets: list[Sequential],
    x: Array,
    t: Array,
    *,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
    h: float = DEFAULT_H,
) -> float:
    """Check the gradients of a :class:`~models.stacked.StackedSequential` of float64 ``nets``.

    ``x`` is (R, N, ...) and ``t`` (R, N, ...): one batch per replicate. The objective is the sum
    of the replicates' losses (each replicate's gradient is that of its own loss, since they
    share no parameter). Every replicate's dropout generator is reset from ``seed`` before each
    evaluation. Returns the max relative error over all replicates' parameters.
    """
    from .stacked import StackedSequential

    for net in nets:
        _require_float64("the network", dict(net.params))
    stack = StackedSequential(nets)
    dropouts = [[layer for layer in net.layers if layer.stochastic] for net in nets]

    def run(_: Array | None = None) -> float:
        for r, layers in enumerate(dropouts):
            for j, layer in enumerate(layers):
                layer.set_rng(np.random.default_rng([seed, r, j]))
        return float(np.sum(stack.compute_loss(x, t)))

    run()
    stack.backward()
    analytic = {k: g.copy() for k, g in stack.group_grads.items()}
    return max(
        assert_gradients_close(
            f"stacked {k} parameters", analytic[k], numerical_gradient(run, p, h), tol=tol
        )
        for k, p in stack.group_params.items()
    )


def build_example_layer(factory: Any, *, seed: int = 0) -> tuple[Layer, Array]:
    """Build a registered layer class/factory from its declared example; return it and an input.

    Reads ``example_kwargs`` (default none) and ``example_input_shape`` (default (6,)) from the
    factory; the input is :func:`kink_safe_input` with a batch of 4.
    """
    kwargs = dict(getattr(factory, "example_kwargs", {}))
    shape = tuple(getattr(factory, "example_input_shape", DEFAULT_INPUT_SHAPE))
    try:
        layer = factory(**kwargs)
    except TypeError as exc:
        raise TypeError(
            f"{factory!r} cannot be built from example_kwargs={kwargs}: declare the arguments "
            f"the gradient check should use as an `example_kwargs` class attribute ({exc})"
        ) from exc
    rng = np.random.default_rng(seed)
    layer.build(shape, rng=rng, dtype=np.float64)
    layer.name = getattr(factory, "registry_name", type(layer).__name__)
    return layer, kink_safe_input(rng, (EXAMPLE_BATCH, *shape))


def check_registered_layer(
    registry: Registry[Any],
    name: str,
    *,
    train: bool = True,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
) -> dict[str, float]:
    """Gradient check of the component ``name`` of a layer registry, built from its example."""
    layer, x = build_example_layer(registry.get(name), seed=seed)
    return check_layer_gradients(layer, x, train=train, seed=seed, tol=tol)


def check_registered_loss(
    registry: Registry[Any],
    name: str,
    *,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
    targets: str | None = None,
    **kwargs: Any,
) -> float:
    """Gradient check of the loss ``name`` on its ``example_batch`` (kwargs go to the constructor).

    ``targets`` names one of the loss's ``example_targets`` kinds (e.g. ``"soft_unnormalized"``
    for soft labels whose rows do not sum to 1); None checks the default example.
    """
    cls = registry.get(name)
    loss = cls(**kwargs)
    example = getattr(cls, "example_batch", None)
    if example is None:
        raise TypeError(
            f"loss {name!r} declares no example_batch(rng, dtype) for the gradient check"
        )
    rng = np.random.default_rng(seed)
    if targets is None:
        y, t = example(rng, np.float64)
    else:
        kinds = tuple(getattr(cls, "example_targets", ()))
        if targets not in kinds:
            raise ValueError(
                f"loss {name!r} declares example targets {list(kinds)}, not {targets!r}"
            )
        y, t = example(rng, np.float64, targets=targets)
    return check_loss_gradients(loss, y, t, tol=tol)
