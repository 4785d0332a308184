"""Network builders, selectable by name: ``build_network({"name": "mlp", "depth": 3}, ...)``.

Each builder in ``NETWORKS`` takes the per-sample ``input_shape``, the number of outputs and its
own keyword arguments, and returns an unbuilt list of layers; :func:`build_network` wraps them in a
:class:`~models.network.Sequential` with the loss and penalties and builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._checks import check_choice, check_int, check_number
from .activations import ACTIVATIONS, Maxout
from .base import Layer, Shape
from .conv import Conv1D, Conv2D, GlobalAvgPool, MaxPool2D
from .layers import BatchNorm, Dense, Dropout, Flatten, Reshape
from .network import Sequential
from .registry import Registry, Spec
from .regularizers import Regularizer

__all__ = [
    "NETWORKS",
    "build_network",
    "conv1d_net",
    "deep_conv_net",
    "mlp",
    "perceptron",
    "simple_conv_net",
    "two_layer_net",
]

NETWORKS: Registry[Callable[..., Any]] = Registry("network")


def _book_init(weight_init_std: float, init: Spec | None) -> Spec:
    """The book's ``weight_init_std · randn`` unless an explicit initializer spec is given."""
    return init if init is not None else {"name": "normal", "std": weight_init_std}


def _image_input(builder: str, input_shape: Shape) -> list[Layer]:
    """Layers that turn (H, W) images into (1, H, W); nothing for (C, H, W)."""
    if len(input_shape) == 3:
        return []
    if len(input_shape) == 2:
        return [Reshape([1, *input_shape])]
    raise ValueError(
        f"network {builder!r} needs image inputs of shape (C, H, W) or (H, W), got {input_shape}"
    )


@NETWORKS.register("mlp")
def mlp(
    input_shape: Shape,
    n_outputs: int,
    *,
    hidden: Sequence[int] | None = None,
    depth: int = 2,
    width: int = 100,
    activation: Spec = "relu",
    init: Spec = "he_normal",
    bias_init: Spec = "zeros",
    use_bias: bool = True,
    dropout: float = 0.0,
    dropout_mode: str = "inverted",
    batch_norm: bool = False,
    batch_norm_position: str = "before",
    output_activation: Spec | None = None,
) -> list[Layer]:
    """Multi-layer perceptron: [flatten] → (dense → [BN] → activation → [BN] → [dropout]) × depth → dense.

    Parameters
    ----------
    hidden : list of int, optional
        Explicit hidden widths; overrides ``depth`` × ``width``. ``depth=0`` (or ``hidden=[]``)
        gives a linear / logistic model.
    activation : spec
        Hidden activation. With ``maxout`` (pieces p), each hidden dense layer has p·width units
        so that the layer still outputs ``width`` units.
    init, bias_init : spec
        Initializers of every dense layer, the output layer included.
    dropout, dropout_mode
        Dropout rate after each hidden activation (0: none) and its mode (``"inverted"`` or
        ``"scale_at_test"``).
    batch_norm, batch_norm_position
        Batch norm in every hidden block, ``"before"`` the activation (dense → BN → activation,
        the book's placement) or ``"after"`` it.
    output_activation : spec, optional
        An activation after the output layer (e.g. ``softmax`` for the ``nll`` loss).
    """
    widths = (
        [check_int("network 'mlp'", "hidden[i]", w, 1) for w in hidden]
        if hidden is not None
        else [check_int("network 'mlp'", "width", width, 1)]
        * check_int("network 'mlp'", "depth", depth, 0)
    )
    rate = check_number("network 'mlp'", "dropout", dropout, low=0, high=1)
    check_choice("network 'mlp'", "dropout_mode", dropout_mode, Dropout.MODES)
    position = check_choice(
        "network 'mlp'", "batch_norm_position", batch_norm_position, ("before", "after")
    )
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for w in widths:
        act: Layer = ACTIVATIONS.build(activation)
        pieces = int(act.pieces) if isinstance(act, Maxout) else 1
        layers.append(Dense(w * pieces, init=init, bias_init=bias_init, use_bias=use_bias))
        if batch_norm and position == "before":
            layers.append(BatchNorm())
        layers.append(act)
        if batch_norm and position == "after":
            layers.append(BatchNorm())
        if rate:
            layers.append(Dropout(rate, dropout_mode))
    layers.append(Dense(n_outputs, init=init, bias_init=bias_init, use_bias=use_bias))
    if output_activation is not None:
        layers.append(ACTIVATIONS.build(output_activation))
    return layers


@NETWORKS.register("perceptron")
def perceptron(
    input_shape: Shape,
    n_outputs: int,
    *,
    activation: Spec = "identity",
    init: Spec = "glorot_uniform",
    bias_init: Spec = "zeros",
    use_bias: bool = True,
) -> list[Layer]:
    """A single dense layer, optionally followed by an activation (``"step"`` for the logic-gate
    demos, whose weights are set by hand; ``step`` cannot be trained)."""
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    layers.append(Dense(n_outputs, init=init, bias_init=bias_init, use_bias=use_bias))
    if activation != "identity":
        layers.append(ACTIVATIONS.build(activation))
    return layers


@NETWORKS.register("two_layer_net")
def two_layer_net(
    input_shape: Shape,
    n_outputs: int,
    *,
    hidden_size: int = 50,
    weight_init_std: float = 0.01,
    activation: Spec = "relu",
    init: Spec | None = None,
) -> list[Layer]:
    """The book's ``TwoLayerNet``: affine → activation → affine (e.g. 784-50-10).

    Weights are ``weight_init_std · N(0, 1)`` (the book's 0.01) unless ``init`` is given; biases
    are zero. The book uses ReLU in chapter 5 and sigmoid in chapter 4.
    """
    hidden_size = check_int("network 'two_layer_net'", "hidden_size", hidden_size, 1)
    w_init = _book_init(weight_init_std, init)
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    layers += [
        Dense(hidden_size, init=w_init),
        ACTIVATIONS.build(activation),
        Dense(n_outputs, init=w_init),
    ]
    return layers


@NETWORKS.register("simple_conv_net")
def simple_conv_net(
    input_shape: Shape,
    n_outputs: int,
    *,
    filters: int = 30,
    kernel_size: int = 5,
    stride: int = 1,
    padding: int = 0,
    pool_size: int = 2,
    hidden: int = 100,
    activation: Spec = "relu",
    weight_init_std: float = 0.01,
    init: Spec | None = None,
) -> list[Layer]:
    """The book's ``SimpleConvNet``: conv → ReLU → max-pool → affine → ReLU → affine.

    Defaults are the book's: 30 filters 5×5, stride 1, no padding, 2×2 pooling, 100 hidden
    units, weights ``0.01 · N(0, 1)`` (override with ``init``). Input ``(C, H, W)`` or ``(H, W)``.
    """
    w_init = _book_init(weight_init_std, init)
    return [
        *_image_input("simple_conv_net", input_shape),
        Conv2D(filters, kernel_size, stride=stride, padding=padding, init=w_init),
        ACTIVATIONS.build(activation),
        MaxPool2D(pool_size),
        Flatten(),
        Dense(hidden, init=w_init),
        ACTIVATIONS.build(activation),
        Dense(n_outputs, init=w_init),
    ]


@NETWORKS.register("deep_conv_net")
def deep_conv_net(
    input_shape: Shape,
    n_outputs: int,
    *,
    channels: Sequence[int] = (16, 16, 32, 32, 64, 64),
    kernel_size: int = 3,
    pool_every: int = 2,
    hidden: int = 50,
    dropout: float = 0.5,
    activation: Spec = "relu",
    init: Spec = "he_normal",
) -> list[Layer]:
    """A small VGG-style net after the book's ``DeepConvNet`` (chapter 8).

    ``kernel_size`` convolutions with "same" padding and ``activation``, a 2×2 max-pool after
    every ``pool_every`` convolutions, then affine(``hidden``) → activation → dropout → affine.
    The book's layout is the default (16-16-32-32-64-64, pool every 2, hidden 50, dropout 0.5,
    He init); unlike the book, the logits are not dropped out, and every conv uses padding
    k // 2 (the book pads its fourth conv by 2 to get 8×8 maps on MNIST; here 28 → 14 → 7 → 3).
    """
    if not channels:
        raise ValueError("network 'deep_conv_net': channels must list at least one conv layer")
    kernel_size = check_int("network 'deep_conv_net'", "kernel_size", kernel_size, 1)
    pool_every = check_int("network 'deep_conv_net'", "pool_every", pool_every, 1)
    rate = check_number("network 'deep_conv_net'", "dropout", dropout, low=0, high=1)
    layers: list[Layer] = _image_input("deep_conv_net", input_shape)
    for i, c in enumerate(channels):
        c = check_int("network 'deep_conv_net'", "channels[i]", c, 1)
        layers += [
            Conv2D(c, kernel_size, padding=kernel_size // 2, init=init),
            ACTIVATIONS.build(activation),
        ]
        if (i + 1) % pool_every == 0:
            layers.append(MaxPool2D(2))
    layers += [Flatten(), Dense(hidden, init=init), ACTIVATIONS.build(activation)]
    if rate:
        layers.append(Dropout(rate))
    layers.append(Dense(n_outputs, init=init))
    return layers


@NETWORKS.register("conv1d_net")
def conv1d_net(
    input_shape: Shape,
    n_outputs: int,
    *,
    channels: int = 25,
    n_layers: int = 3,
    kernel_size: int = 5,
    stride: int = 2,
    padding: int = 1,
    activation: Spec = "relu",
    global_pool: bool = False,
    init: Spec = "he_normal",
) -> list[Layer]:
    """A 1-D conv net for MNIST-1D (inputs ``(40,)`` or ``(1, 40)``).

    ``n_layers`` × (conv1d(``channels``, ``kernel_size``, ``stride``, ``padding``) →
    activation), then flatten (or global average pooling) → dense. The defaults follow the
    MNIST-1D paper's CNN (3 conv layers of 25 channels, kernel 5, stride 2, padding 1), which
    maps length 40 → 19 → 9 → 4.
    """
    n_layers = check_int("network 'conv1d_net'", "n_layers", n_layers, 1)
    layers: list[Layer] = []
    if len(input_shape) == 1:
        layers.append(Reshape([1, input_shape[0]]))
    elif len(input_shape) != 2:
        raise ValueError(
            f"network 'conv1d_net' needs inputs of shape (L,) or (C, L), got {input_shape}"
        )
    for _ in range(n_layers):
        layers += [
            Conv1D(channels, kernel_size, stride=stride, padding=padding, init=init),
            ACTIVATIONS.build(activation),
        ]
    layers.append(GlobalAvgPool() if global_pool else Flatten())
    layers.append(Dense(n_outputs, init=init))
    return layers


def build_network(
    spec: Spec,
    *,
    input_shape: Shape,
    n_outputs: int,
    loss: Spec = "cross_entropy",
    regularizers: Sequence[Spec | Regularizer] = (),
    rng: np.random.Generator,
    dtype: Any = np.float32,
    telemetry: bool = False,
) -> Sequential:
    """Build the network ``spec`` (``"mlp"`` or ``{"name": "mlp", "depth": 3, ...}``), ready to train.

    Parameters
    ----------
    spec : spec
        A ``NETWORKS`` name with the builder's keyword arguments.
    input_shape : tuple of int
        Per-sample input shape, e.g. ``(64,)`` or ``(1, 28, 28)``.
    n_outputs : int
        Number of outputs (classes, or regression targets).
    loss, regularizers, telemetry
        See :class:`~models.network.Sequential`.
    rng : numpy.random.Generator
        Source of the initial weights and of the dropout generators.
    dtype : float32 (default) or float64
    """
    n_outputs = check_int("build_network", "n_outputs", n_outputs, 1)
    input_shape = tuple(int(d) for d in input_shape)
    built = NETWORKS.build(spec, input_shape=input_shape, n_outputs=n_outputs)
    net = Sequential(built, loss=loss, regularizers=regularizers, telemetry=telemetry)
    return net.build(input_shape, rng=rng, dtype=dtype)
