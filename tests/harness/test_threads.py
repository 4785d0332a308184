"""BLAS threads by GEMM size (harness.threads) and how the choice reaches the trial runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

import harness.threads as threads
from harness.config import ConfigError
from harness.runconfig import resolve_run_config
from harness.threads import (
    SINGLE_THREAD_BELOW_MACS,
    BlasThreads,
    choose_blas_threads,
    largest_gemm_macs,
    weight_shapes,
)
from models import build_network


def test_small_gemms_get_one_thread_large_ones_cores_over_jobs() -> None:
    small, large = SINGLE_THREAD_BELOW_MACS - 1, SINGLE_THREAD_BELOW_MACS
    assert choose_blas_threads(small, jobs=1, cores=8) == 1
    assert choose_blas_threads(large, jobs=1, cores=8) == 8
    assert choose_blas_threads(large, jobs=3, cores=8) == 2
    assert choose_blas_threads(large, jobs=16, cores=8) == 1  # never below 1
    assert choose_blas_threads(None, jobs=2, cores=8) == 4  # size unknown: the cap
    # the override wins both ways
    assert choose_blas_threads(small, jobs=1, cores=8, override=3) == 3
    assert choose_blas_threads(large, jobs=1, cores=8, override=1) == 1
    with pytest.raises(ConfigError, match=r"--blas-threads = 0 is not allowed"):
        choose_blas_threads(small, jobs=1, override=0)
    with pytest.raises(ConfigError, match="--blas-threads"):
        BlasThreads(override=-2)


def test_largest_gemm_of_dense_and_conv_networks() -> None:
    rng = np.random.default_rng(0)
    mlp = build_network(
        {"name": "mlp", "hidden": [100, 50]}, input_shape=(64,), n_outputs=10, rng=rng
    )
    # (batch × 64)·(64 × 100) is the largest product
    assert largest_gemm_macs(weight_shapes(mlp), 32) == 32 * 64 * 100
    conv = build_network(
        {"name": "simple_conv_net", "filters": 4, "kernel_size": 3, "hidden": 5},
        input_shape=(1, 8, 8),
        n_outputs=3,
        rng=rng,
    )
    # conv: one GEMM per sample, 4 filters × (1·3·3) × 6·6 positions, whatever the batch;
    # dense after pooling: 4·3·3 = 36 inputs × 5 units × batch
    assert largest_gemm_macs(weight_shapes(conv), 1) == 4 * 9 * 36
    assert largest_gemm_macs(weight_shapes(conv), 100) == 100 * 36 * 5


def test_a_run_config_decides_from_its_model_data_and_batch() -> None:
    def config(batch: int, hidden: list[int]) -> dict[str, Any]:
        return resolve_run_config(
            {
                "data": {"name": "moons", "n_samples": 200},
                "model": {"name": "mlp", "hidden": hidden},
                "train": {"batch_size": batch},
            }
        )

    choice = BlasThreads(jobs=1, cores=4)
    small = choice.choose(config(32, [8]))
    assert (small.threads, small.largest_gemm_macs) == (1, 32 * 2 * 8)  # (32 × 2)·(2 × 8)
    huge = choice.choose(config(100_000, [1024, 1024]))
    # the batch is at most the 160 training samples of moons (200, val 0.2)
    assert huge.largest_gemm_macs == 160 * 1024 * 1024
    assert huge.threads == (4 if huge.largest_gemm_macs >= SINGLE_THREAD_BELOW_MACS else 1)
    assert huge.tags() == {
        "blas.threads": str(huge.threads),
        "blas.largest_gemm_macs": str(huge.largest_gemm_macs),
    }
    # an unbuildable config keeps the cap (the run fails with its own error)
    broken = {"data": {"name": "moons"}, "model": {"name": "nope"}, "train": {"batch_size": 8}}
    assert choice.choose(broken).threads == 4
    # jobs >= cores or an override: nothing to build
    assert BlasThreads(jobs=4, cores=4).choose(broken).threads == 1
    assert BlasThreads(jobs=1, cores=4, override=2).choose(config(32, [8])).threads == 2


def test_each_trial_run_records_its_own_thread_count(
    tmp_path: Path, tracking_uri: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moons MLP [8]: largest GEMM = 16·batch. With the crossover at 600 MACs, batch 16 and 32
    get 1 thread and batch 64 gets cores // jobs (4 here), on the worker and in MLflow."""
    import harness.study.pool as runner  # the pool submits execute_trial to the workers
    from tests.study.test_runner import children, sweep, write_study

    monkeypatch.setattr(threads, "SINGLE_THREAD_BELOW_MACS", 600)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    seen: dict[int, int] = {}
    real = runner.execute_trial

    def spy(task: Any) -> Any:
        seen[int(task.configs[0]["train"]["batch_size"])] = task.blas_threads
        return real(task)

    monkeypatch.setattr(runner, "execute_trial", spy)
    path = write_study(
        tmp_path,
        unique_name,
        **{
            "train.epochs": 1,
            "replicates": 2,
            "search.sampler": {"name": "grid"},
            "search.n_trials": None,
            "search.params": {
                "train.optimizer.lr": {"type": "categorical", "choices": [0.1]},
                "train.batch_size": {"type": "categorical", "choices": [16, 64]},
            },
        },
    )
    result = sweep(tmp_path, path, tracking_uri, jobs=1)
    assert seen == {16: 1, 64: 4}
    client = MlflowClient(tracking_uri)
    trials = children(client, result)
    assert len(trials) == 2
    for trial in trials:
        expected = str(seen[int(trial.data.params["train.batch_size"])])
        assert trial.data.tags["blas.threads"] == expected
        assert trial.data.tags["blas.largest_gemm_macs"] == str(
            16 * int(trial.data.params["train.batch_size"])
        )
        replicates = client.search_runs(
            [result.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{trial.info.run_id}'",
        )
        assert len(replicates) == 2
        assert {r.data.tags["blas.threads"] for r in replicates} == {expected}


def test_blas_threads_option_reaches_the_sweeps(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--blas-threads`` on reproduce and demo goes to reproduce_claim, which passes it to every
    run_sweep (the sweep runner then gives it to every trial: the override test above)."""
    import harness.reproduce as reproduce
    import harness.study.runner as runner
    from harness.cli import main
    from tests.harness.test_reproduce import TINY_CLAIM

    class Stop(Exception):
        pass

    got: list[Any] = []

    def fake_reproduce(claim_id: str, **kwargs: Any) -> Any:
        got.append(kwargs["blas_threads"])
        raise Stop

    monkeypatch.setattr(reproduce, "reproduce_claim", fake_reproduce)
    for argv in (
        ["reproduce", "batch_size", "--blas-threads", "3"],
        ["demo", "--blas-threads", "1"],
    ):
        with pytest.raises(Stop):  # --debug: main() re-raises an unexpected exception
            main([*argv, "--tracking-uri", tracking_uri, "--debug"])
    assert got == [3, 1]
    monkeypatch.undo()

    def fake_sweep(spec: Any, **kwargs: Any) -> Any:
        got.append(kwargs["blas_threads"])
        raise Stop

    import yaml

    monkeypatch.chdir(tmp_path)
    claim = tmp_path / "tiny_lr.yaml"
    claim.write_text(yaml.safe_dump(TINY_CLAIM, allow_unicode=True))
    monkeypatch.setattr(runner, "run_sweep", fake_sweep)
    with pytest.raises(Stop):
        reproduce.reproduce_claim(
            str(claim), tracking_uri=tracking_uri, blas_threads=5, echo=lambda *_: None
        )
    assert got[-1] == 5
