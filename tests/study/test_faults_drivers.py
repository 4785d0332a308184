"""Several drivers on one study (issue 10, item 2): started together in a fresh directory (both
first-ever: the MLflow store and the journal are created under a lock), and overlapping (the
second joins a running sweep). Each design point runs once, no live driver's trial is marked
interrupted, one parent run; on a journal file and on PostgreSQL."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.study.test_faults_crash import (
    N_TRIALS,
    check_complete_record,
    fault_study,
    n_ledger,
    start_driver,
    store_of,
)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _finish(*procs):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=400)
        assert p.returncode == 0, out
        assert "Traceback" not in out, out
        outs.append(out)
    return outs


def _check_pg(tmp_path, name, url):
    """The same checks as check_complete_record, reading the study from PostgreSQL."""
    import optuna

    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials()
    assert not [t for t in trials if t.user_attrs.get("interrupted")]
    assert sorted(t.user_attrs["design_index"] for t in trials) == list(range(N_TRIALS))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    from mlflow import MlflowClient

    from tests.study.test_faults_crash import tracking_of

    client = MlflowClient(tracking_of(tmp_path))
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = [r for r in runs if r.data.tags.get("harness.kind") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trial_runs = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    assert sorted(r.info.status for r in trial_runs) == ["FINISHED"] * N_TRIALS


def test_two_first_ever_drivers_started_together(tmp_path):
    name = "two-together"
    path = fault_study(tmp_path, name, replicates=2)
    a = start_driver(tmp_path, path)
    b = start_driver(tmp_path, path)
    _finish(a, b)
    stats = check_complete_record(tmp_path, name)
    assert stats["interrupted"] == 0  # neither took the other's trials for orphans


@pytest.mark.slow
def test_a_second_driver_joins_a_running_sweep(tmp_path):
    name = "two-overlapping"
    path = fault_study(tmp_path, name, replicates=2)
    a = start_driver(tmp_path, path)
    import time

    deadline = time.monotonic() + 180
    while n_ledger(tmp_path, name) < 1 and time.monotonic() < deadline and a.poll() is None:
        time.sleep(0.05)
    b = start_driver(tmp_path, path)
    _finish(a, b)
    stats = check_complete_record(tmp_path, name)
    assert stats["interrupted"] == 0


@pytest.mark.postgres
def test_two_drivers_on_postgresql_started_together(tmp_path, copy_of_a_migrated_store):
    if not _listening(5432):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (start one to run this test)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[distributed]')")
    import optuna

    url = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"pg-two-{uuid.uuid4().hex[:8]}"
    path = fault_study(tmp_path, name, replicates=1)
    # the MLflow store's first-ever creation by two drivers is the test above's subject
    copy_of_a_migrated_store(store_of(tmp_path))
    try:
        a = start_driver(tmp_path, path, "--storage", url)
        b = start_driver(tmp_path, path, "--storage", url)
        _finish(a, b)
        _check_pg(tmp_path, name, url)
    finally:
        optuna.delete_study(study_name=name, storage=url)
