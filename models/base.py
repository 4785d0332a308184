"""Abstract contracts of the zoo: :class:`Layer`, :class:`Loss`, :class:`Optimizer`.

The contracts follow *Deep Learning from Scratch*: ``forward`` caches what ``backward`` needs, and
``backward(dout)`` returns ``dx`` and fills ``grads`` with the same keys as ``params``. Constructor
rules follow scikit-learn: ``__init__`` only stores its keyword arguments, so a component's config
is its kwargs (:meth:`Component.get_config`) and logging or cloning is generic. Arrays are created
in :meth:`Layer.build`, which receives the per-sample input shape, a ``np.random.Generator`` and a
dtype; randomness never comes from the global ``np.random`` state.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "Array",
    "Component",
    "Layer",
    "Loss",
    "NonFiniteError",
    "Optimizer",
    "Shape",
]

#: A floating-point array (float32 by default, float64 for gradient checks).
Array = npt.NDArray[Any]
#: A per-sample shape, without the batch dimension: ``(D,)`` or ``(C, H, W)``.
Shape = tuple[int, ...]


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN or infinite (the training loop turns this into a status)."""


class Component:
    """Base for configurable components: ``get_config()`` returns the constructor kwargs.

    Subclasses store every ``__init__`` argument under an attribute of the same name
    (scikit-learn's rule), so the config can be read back without per-class code.
    """

    registry_name: ClassVar[str]

    def get_config(self) -> dict[str, Any]:
        """The spec that rebuilds this component: ``{"name": <registry name>, **kwargs}``."""
        config: dict[str, Any] = {"name": getattr(type(self), "registry_name", type(self).__name__)}
        for pname, param in inspect.signature(type(self).__init__).parameters.items():
            if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            config[pname] = getattr(self, pname)
        return config

    def __repr__(self) -> str:
        cfg = self.get_config()
        cfg.pop("name", None)
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({args})"


class Layer(Component, ABC):
    """A differentiable block with (possibly zero) parameters.

    Lifecycle: ``layer.build(input_shape, rng=rng, dtype=np.float32)`` creates ``params``
    (and the matching zero ``grads``) and returns the per-sample output shape; then
    ``forward`` / ``backward`` alternate.

    Attributes
    ----------
    name : str
        Instance name given by the container (``"dense_0"``); qualifies parameter names
        (``"dense_0.W"``).
    params : dict[str, ndarray]
        Trainable arrays, updated in place by optimizers.
    grads : dict[str, ndarray]
        Gradients of the loss with respect to ``params``, same keys and shapes.
    state : dict[str, ndarray]
        Non-trainable arrays saved with the weights (batch-norm running statistics).
    decay_params : tuple of str
        Keys of ``params`` that weight decay (L1/L2) applies to: weights, never biases or
        batch-norm ``gamma``/``beta``.
    """

    decay_params: ClassVar[tuple[str, ...]] = ()
    #: True for layers whose forward pass draws random numbers in training mode (dropout).
    stochastic: ClassVar[bool] = False
    #: When False, ``backward`` may skip computing ``dx`` and return an empty array. A network
    #: sets it on its first trainable layer, whose input gradient nobody reads (PyTorch skips
    #: it too: the data does not require a gradient).
    needs_input_grad: bool = True

    name: str = ""
    input_shape: Shape | None = None
    output_shape: Shape | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Layer:
        self = super().__new__(cls)
        # set before __init__ so subclasses' __init__ stay "store kwargs only"
        self.params = {}
        self.grads = {}
        self.state = {}
        self.name = ""
        self.input_shape = None
        self.output_shape = None
        return self

    params: dict[str, Array]
    grads: dict[str, Array]
    state: dict[str, Array]

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        """Create parameters for inputs of per-sample shape ``input_shape``; return the output shape.

        The default is a parameter-free, shape-preserving layer.
        """
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        return self.output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Per-sample output shape for a per-sample input shape (default: unchanged)."""
        return input_shape

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give a stochastic layer the generator it draws from in training mode."""

    @abstractmethod
    def forward(self, x: Array, *, train: bool = True) -> Array:
        """Compute the output for a batch ``x`` of shape ``(N, *input_shape)``."""

    @abstractmethod
    def backward(self, dout: Array) -> Array:
        """Given ``dL/dout``, fill ``self.grads`` and return ``dL/dx``. Must not modify ``dout``."""

    def check_input(self, x: Array) -> None:
        """Raise ValueError naming the layer, the expected and the received shape."""
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer {self.name or type(self).__name__!r} expects input of shape "
                f"(N, {', '.join(map(str, self.input_shape))}), received {tuple(x.shape)}"
            )

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))


class Loss(Component, ABC):
    """A batch-mean loss on the network's raw outputs.

    The loss owns the *output link*: ``cross_entropy`` applies softmax, ``binary_cross_entropy``
    applies sigmoid, ``mse`` applies whatever ``output`` it is configured with. This is what lets
    "MSE vs cross-entropy" compare the very same network (same layers, same init), and why
    ``Network.predict`` asks the loss for :meth:`link`.

    Targets ``t`` are either class indices of shape ``(N,)`` (integers) or an array of the same
    shape as the outputs (one-hot rows or regression values).
    """

    #: "classification" (targets are class indices or one-hot) or "regression".
    task: ClassVar[str] = "classification"

    @abstractmethod
    def forward(self, y: Array, t: Array) -> float:
        """Loss value (batch mean) for raw outputs ``y`` of shape (N, K) and targets ``t``."""

    @abstractmethod
    def backward(self) -> Array:
        """``dL/dy`` for the last forward call, shape (N, K)."""

    def link(self, y: Array) -> Array:
        """Map raw outputs to predictions (probabilities or values). Default: identity."""
        return y


class Optimizer(Component, ABC):
    """Updates parameters in place from gradients, matching dictionary keys.

    ``update(params, grads)`` follows the book's ``optimizer.update(params, grads)``; keys are
    qualified names such as ``"dense_0.W"``. Per-parameter state (velocities, moments) is keyed
    the same way and created lazily on the first update.
    """

    #: number of completed updates (drives bias correction and learning-rate schedules)
    iterations: int = 0

    @abstractmethod
    def update(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Apply one update step to every array in ``params`` in place."""
