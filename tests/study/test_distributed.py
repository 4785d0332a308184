"""Distributed storage and execution, for real: Optuna on PostgreSQL and on a Redis journal,
and trials on a dask cluster. Each test skips, saying why, where its server is absent."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.study.test_runner import results_by_design, sweep, write_study

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def postgres_url():
    if not _listening(5432):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (start one to run this test)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[distributed]')")
    return PG_URL


@pytest.fixture
def redis_url():
    if not _listening(6379):
        pytest.skip("no Redis server on 127.0.0.1:6379 (start one to run this test)")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[distributed]')")
    return REDIS_URL


@pytest.mark.postgres
def test_sweep_on_postgres_storage_matches_the_journal_file(tmp_path, tracking_uri, postgres_url):
    import optuna

    name = f"pg-{uuid.uuid4().hex[:8]}"
    path = write_study(tmp_path, name, **{"search.n_trials": 6})
    try:
        on_pg = sweep(tmp_path / "pg", path, tracking_uri, jobs=2, storage=postgres_url)
        on_file = sweep(tmp_path / "file", path, tracking_uri, jobs=2, experiment=name + "-file")
        assert on_pg.n_complete == 6
        assert results_by_design(on_pg) == results_by_design(on_file)
        study = optuna.load_study(study_name=name, storage=postgres_url)
        assert len(study.trials) == 6
        assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == {
            e["run_id"] for e in on_pg.entries
        }
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)


@pytest.mark.redis
def test_sweep_on_a_redis_journal_with_pruning(tmp_path, tracking_uri, redis_url):
    import optuna

    from harness.study.storage import make_storage

    name = f"redis-{uuid.uuid4().hex[:8]}"
    path = write_study(
        tmp_path,
        name,
        **{
            "search.n_trials": 8,
            "train.epochs": 4,
            "search.pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
        },
    )
    storage = make_storage(redis_url)
    try:
        result = sweep(tmp_path, path, tracking_uri, jobs=2, storage=redis_url)
        assert result.n_complete + result.n_pruned == 8
        study = optuna.load_study(study_name=name, storage=storage)
        assert sorted(t.number for t in study.trials) == list(range(8))
        # workers reported intermediate values through Redis (what pruning reads)
        assert any(t.intermediate_values for t in study.trials)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


def test_dask_backend_against_a_running_scheduler(tmp_path, tracking_uri, unique_name, monkeypatch):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install '.[distributed]')"
    )
    path = write_study(tmp_path, unique_name, **{"search.n_trials": 4})
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    # what `--scheduler ADDRESS` sets: the sweep connects its own client to this scheduler
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    try:
        on_dask = sweep(tmp_path / "dask", path, tracking_uri, jobs=2, backend="dask")
        worker_pids = {ws.pid for ws in cluster.scheduler.workers.values()}
        # every trial ran in a worker process of that cluster
        assert {e["pid"] for e in on_dask.entries} <= worker_pids
    finally:
        cluster.close()
    on_loky = sweep(tmp_path / "loky", path, tracking_uri, jobs=2, experiment=unique_name + "-l")
    assert on_dask.n_complete == 4
    assert results_by_design(on_dask) == results_by_design(on_loky)
