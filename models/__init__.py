"""models: the NumPy model zoo (imports only NumPy and the standard library).

Every component is registered under a stable snake_case name and built from a spec, a name or
``{"name": ..., **kwargs}``::

    import numpy as np
    from models import OPTIMIZERS, build_network

    rng = np.random.default_rng(0)
    net = build_network({"name": "mlp", "depth": 2, "width": 100}, input_shape=(64,),
                        n_outputs=10, rng=rng)
    opt = OPTIMIZERS.build({"name": "sgd", "lr": 0.1})
    loss = net.train_step(x_batch, t_batch, opt)

Registries: ``ACTIVATIONS``, ``LOSSES``, ``INITIALIZERS``, ``LAYERS``, ``OPTIMIZERS``,
``SCHEDULES``, ``REGULARIZERS``, ``NETWORKS``.
"""

from __future__ import annotations

from . import gradcheck, telemetry
from .activations import ACTIVATIONS, Activation, NotDifferentiableError
from .base import Array, Component, Layer, Loss, NonFiniteError, Optimizer, Shape
from .builders import NETWORKS, build_network
from .conv import AvgPool1D, AvgPool2D, Conv1D, Conv2D, GlobalAvgPool, MaxPool1D, MaxPool2D
from .initializers import INITIALIZERS, Initializer
from .layers import LAYERS, BatchNorm, Dense, Dropout, Flatten, Reshape
from .losses import LOSSES, BaseLoss
from .network import Sequential
from .optimizers import OPTIMIZERS, GradientOptimizer, ParamDict
from .registry import Registry, Spec, SpecError, UnknownNameError, parse_spec
from .regularizers import REGULARIZERS, Regularizer
from .schedules import SCHEDULES, Schedule

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYERS",
    "LOSSES",
    "NETWORKS",
    "OPTIMIZERS",
    "REGULARIZERS",
    "SCHEDULES",
    "Activation",
    "Array",
    "AvgPool1D",
    "AvgPool2D",
    "BaseLoss",
    "BatchNorm",
    "Component",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "GradientOptimizer",
    "Initializer",
    "Layer",
    "Loss",
    "MaxPool1D",
    "MaxPool2D",
    "NonFiniteError",
    "NotDifferentiableError",
    "Optimizer",
    "ParamDict",
    "Registry",
    "Regularizer",
    "Reshape",
    "Schedule",
    "Sequential",
    "Shape",
    "Spec",
    "SpecError",
    "UnknownNameError",
    "build_network",
    "gradcheck",
    "parse_spec",
    "telemetry",
]
