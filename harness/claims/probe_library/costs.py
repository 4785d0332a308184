"""Probes of computational cost: X2's multiply-adds per forward pass.

The seed (002) says convolution "shrinks the feature maps, greatly reducing computation"; the
catalogue's X2 protocol asks for the multiply-add count of each compared model, per layer. The
count is exact and needs no training: the zoo network is built for the given input shape and
every layer with weights is counted as one GEMM per sample (:func:`harness.threads.weight_shapes`,
the same sizes the BLAS-thread choice reads): a dense layer ``W (in, out)`` costs ``in · out``,
a convolution ``W (F, C, *k)`` costs ``W.size`` per output position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.claims.probes import PROBES, Probe, ProbeResult
from harness.threads import largest_gemm_macs, weight_shapes
from models import build_network

__all__ = ["ForwardMacs"]


@PROBES.register("forward_macs")
class ForwardMacs(Probe):
    """Multiply-adds of one forward pass of one sample through the zoo network ``model``.

    ``model`` is a network spec (``{name: conv1d_net}``, ``{name: mlp, hidden: [256, 256]}``),
    built for ``input_shape`` and ``n_outputs``. Outputs ``macs`` (the total), ``n_params`` and
    ``largest_layer_macs``; the records hold one row per weighted layer (``step`` = its index,
    ``layer_macs``), the catalogue's count per layer. Biases, activations and pooling are not
    multiply-adds of a weight and are left out (they are O(outputs), not O(outputs × fan-in)).
    """

    outputs = ("macs", "n_params", "largest_layer_macs")

    def __init__(
        self,
        *,
        model: Any = "mlp",
        input_shape: Sequence[int] = (40,),
        n_outputs: int = 10,
    ) -> None:
        self.model = model
        self.input_shape = input_shape
        self.n_outputs = n_outputs

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("n_outputs", self.n_outputs)
        shape = self.input_shape
        if not (
            isinstance(shape, Sequence)
            and not isinstance(shape, str)
            and shape
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
        ):
            out.append(("input_shape", shape, "a list of positive integers, e.g. [40]"))
        if not isinstance(self.model, (str, Mapping)):
            out.append(("model", self.model, "a network spec: a name or {name: ..., ...}"))
        return out

    def run(self, rng: np.random.Generator) -> ProbeResult:
        spec = dict(self.model) if isinstance(self.model, Mapping) else self.model
        net = build_network(
            spec,
            input_shape=tuple(int(d) for d in self.input_shape),
            n_outputs=int(self.n_outputs),
            rng=rng,
        )
        per_layer = [largest_gemm_macs((shape,), 1) for shape in weight_shapes(net)]
        records = [{"step": float(i), "layer_macs": float(m)} for i, m in enumerate(per_layer)]
        return ProbeResult(
            {
                "macs": float(sum(per_layer)),
                "n_params": float(net.n_params),
                "largest_layer_macs": float(max(per_layer, default=0)),
            },
            records,
        )
