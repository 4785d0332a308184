"""BLAS threads per run, chosen by the size of the run's largest GEMM.

A sweep gives every worker at most ``cores // jobs`` BLAS threads (more oversubscribes the
machine). Within that cap, a second OpenBLAS thread only pays off for large matrix products: for
the small GEMMs of our MLPs it costs time on a quiet machine and can cost 10-100× on a busy one,
where the helper thread waits for a core (``benchmarks/blas_threads.py``, table in
``benchmarks/README.md``). So a run gets 1 thread when its largest GEMM is below
:data:`SINGLE_THREAD_BELOW_MACS` multiply-adds, and the cap above it; ``--blas-threads`` overrides
the choice.

The size of one GEMM is m·k·n multiply-adds ("MACs"), the size of one BLAS call of a training
step at the run's batch size (at most the training split's size):

- dense layer ``(batch × in)·(in × out)``: batch · in · out (its ``dW`` and ``dx`` products have
  the same size);
- convolution (im2col, one GEMM per sample, :class:`models.conv.Conv2D`): filters · (channels ·
  kernel area) · output positions, whatever the batch.

The training batch decides, not ``eval_batch_size``: training steps make about three quarters of
a run's GEMM work (forward, ``dW`` and ``dx`` per sample, against one forward per sample at
evaluation), and it is the size that differs between the trials of a study.

The sweep driver (:class:`harness.study.runner.SweepRunner`) calls :meth:`BlasThreads.choose` for
every trial's config; the worker applies the count with threadpoolctl and the trial's MLflow run
records it (tag ``blas.threads``, with ``blas.largest_gemm_macs``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import ConfigError

__all__ = [
    "SINGLE_THREAD_BELOW_MACS",
    "BlasThreads",
    "ThreadChoice",
    "choose_blas_threads",
    "largest_gemm_macs",
    "weight_shapes",
]

#: GEMM size (multiply-adds of one BLAS call) below which 1 OpenBLAS thread is used. Measured by
#: ``benchmarks/blas_threads.py`` on the project's quiet 2-core AVX-512 VM (OpenBLAS 0.3.31,
#: float32; table and load averages in benchmarks/README.md): a second thread wins 1.11-1.78x
#: (median steps) from 2.5M MACs (32×784×100) up and at most 1.09x below, where the digits and
#: MNIST-1D MLPs of our studies train (≤ 1.3M MACs at batch 32-128); with a competing process
#: the second thread gains little and can lose, so below the crossover 1 thread is the safe choice.
SINGLE_THREAD_BELOW_MACS = 2_500_000


@dataclass(frozen=True)
class ThreadChoice:
    """The BLAS threads of one run and why: the largest GEMM (None: not computed)."""

    threads: int
    largest_gemm_macs: int | None = None
    overridden: bool = False

    def tags(self) -> dict[str, str]:
        """MLflow tags of the run that used this choice."""
        tags = {"blas.threads": str(self.threads)}
        if self.largest_gemm_macs is not None:
            tags["blas.largest_gemm_macs"] = str(self.largest_gemm_macs)
        return tags


#: (W shape, per-sample output shape) of every layer with a weight matrix ``W``
WeightShapes = tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]


def weight_shapes(network: Any) -> WeightShapes:
    """(W shape, per-sample output shape) of every layer of a built network that has ``W``."""
    return tuple(
        (tuple(layer.params["W"].shape), tuple(layer.output_shape or ()))
        for layer in network.layers
        if "W" in layer.params
    )


def largest_gemm_macs(shapes: WeightShapes, batch_size: int) -> int:
    """MACs of the largest single GEMM of a training step at ``batch_size``.

    A 2-D ``W`` (in, out) is a dense layer: batch · in · out. A higher-rank ``W`` (filters,
    channels, *kernel) is a convolution run as one GEMM per sample: ``W.size`` · output
    positions (the output shape without its channel axis). No weights: 0.
    """
    largest = 0
    for w_shape, out_shape in shapes:
        if len(w_shape) == 2:
            macs = int(batch_size) * math.prod(w_shape)
        else:
            macs = math.prod(w_shape) * math.prod(out_shape[1:])
        largest = max(largest, macs)
    return largest


def choose_blas_threads(
    macs: int | None, *, jobs: int, cores: int | None = None, override: int | None = None
) -> int:
    """1 below :data:`SINGLE_THREAD_BELOW_MACS`, ``cores // jobs`` (at least 1) from it on.

    ``override`` (``--blas-threads``) wins; ``macs=None`` (size unknown) gives the cap.
    """
    if override is not None:
        return _check_override(override)
    cap = max(1, (cores or os.cpu_count() or 1) // max(1, int(jobs)))
    if macs is None or cap == 1:
        return cap
    return 1 if macs < SINGLE_THREAD_BELOW_MACS else cap


def _check_override(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("--blas-threads", value, "an integer >= 1 (BLAS threads per worker)")
    return value


class BlasThreads:
    """The BLAS thread choice of a sweep's trials (see the module docstring).

    Parameters
    ----------
    jobs : int
        Worker processes of the sweep; the cap is ``cores // jobs``.
    override : int, optional
        ``--blas-threads``: every trial gets this many.
    data_dir : str, optional
        Where the datasets are (the network's input shape comes from the data).
    cores : int, optional
        Default ``os.cpu_count()``.
    """

    def __init__(
        self,
        *,
        jobs: int = 1,
        override: int | None = None,
        data_dir: str | None = None,
        cores: int | None = None,
    ) -> None:
        self.jobs = jobs
        self.override = None if override is None else _check_override(override)
        self.data_dir = data_dir
        self.cores = cores or os.cpu_count() or 1
        self._cache: dict[str, tuple[WeightShapes, int]] = {}

    @property
    def cap(self) -> int:
        """The most threads a trial gets: the override, else ``cores // jobs``."""
        if self.override is not None:
            return self.override
        return max(1, self.cores // max(1, int(self.jobs)))

    def choose(self, config: Mapping[str, Any]) -> ThreadChoice:
        """The threads of one resolved run config (``data``, ``model``, ``train`` sections).

        The network is built once per (data, model, loss) to read its layer shapes (the data
        load is the one the run itself makes, cached per process); if that fails the run gets
        the cap and fails with its own error when it trains.
        """
        if self.override is not None:
            return ThreadChoice(self.override, overridden=True)
        if self.cap == 1:
            return ThreadChoice(1)
        macs = self.largest_gemm(config)
        return ThreadChoice(
            choose_blas_threads(macs, jobs=self.jobs, cores=self.cores), largest_gemm_macs=macs
        )

    def largest_gemm(self, config: Mapping[str, Any]) -> int | None:
        """MACs of the largest GEMM of a run config's training step, None if it cannot be built."""
        try:
            shapes, n_train = self._shapes(config)
            # a batch larger than the training split is the whole split
            return largest_gemm_macs(shapes, min(int(config["train"]["batch_size"]), n_train))
        except Exception:  # the run reports its own error; threads are only a speed choice
            return None

    def _shapes(self, config: Mapping[str, Any]) -> tuple[WeightShapes, int]:
        """The network's weight shapes and the number of training samples (cached)."""
        import numpy as np

        from harness.experiment import load_data
        from models import build_network

        train = config["train"]
        dtype = str(train.get("dtype", "float32"))
        key = json.dumps(
            [config["data"], config["model"], train["loss"], dtype], sort_keys=True, default=str
        )
        if key not in self._cache:
            # the same cached load as the run's own (harness.experiment.build_run)
            splits = load_data(config["data"], dtype=dtype, data_dir=self.data_dir)
            network = build_network(
                config["model"],
                input_shape=tuple(splits.feature_shape),
                n_outputs=int(splits.n_outputs),
                loss=train["loss"],
                rng=np.random.default_rng(0),  # the weights are thrown away: shapes only
                dtype=np.dtype(dtype),
            )
            self._cache[key] = (weight_shapes(network), int(splits.train.n))
        return self._cache[key]
