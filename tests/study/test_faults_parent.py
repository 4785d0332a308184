"""The parent run's id is recorded before use (issue 10, item 1): a driver killed between creating
the parent run and recording its id leaves a token in the study and the run tagged with it; the
next driver adopts that run (one parent, described and FINISHED), never a second one."""

from __future__ import annotations

import optuna
from mlflow import MlflowClient

from harness.study.spec import load_study
from harness.study.storage import make_storage
from harness.tracking import Tracker
from tests.study.test_runner import sweep, write_study


def test_an_orphaned_parent_is_adopted_not_duplicated(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name, **{"search.n_trials": 2})
    spec = load_study(path)
    storage = f"journal://{tmp_path / 'studies.journal'}"
    # what the killed driver left: the token in the study, a RUNNING run with the token, no id
    study = optuna.create_study(
        study_name=spec.name, storage=make_storage(storage), directions=list(spec.directions)
    )
    study.set_user_attr("harness.parent_token", "tok-orphan")
    experiment_id = Tracker(tracking_uri).experiment(unique_name)
    client = MlflowClient(tracking_uri)
    orphan = client.create_run(
        experiment_id, tags={"harness.kind": "study", "harness.parent_token": "tok-orphan"}
    )
    result = sweep(tmp_path, path, tracking_uri, storage=storage)
    assert result.parent_run_id == orphan.info.run_id
    parents = client.search_runs([experiment_id], "tags.`harness.kind` = 'study'")
    assert [p.info.run_id for p in parents] == [orphan.info.run_id]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.params["study.name"] == unique_name  # described after adoption
    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{orphan.info.run_id}'"
    )
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED"]


def test_a_recorded_parent_left_running_is_closed_by_the_next_sweep(
    tmp_path, tracking_uri, unique_name
):
    path = write_study(tmp_path, unique_name, **{"search.n_trials": 2})
    storage = f"journal://{tmp_path / 'studies.journal'}"
    first = sweep(tmp_path, path, tracking_uri, storage=storage)
    client = MlflowClient(tracking_uri)
    client.update_run(first.parent_run_id, status="RUNNING")  # as a SIGKILLed driver leaves it
    again = sweep(tmp_path, path, tracking_uri, storage=storage, n_trials=3)
    assert again.parent_run_id == first.parent_run_id
    run = client.get_run(first.parent_run_id)
    assert run.info.status == "FINISHED"
    parents = client.search_runs([first.experiment_id], "tags.`harness.kind` = 'study'")
    assert len(parents) == 1
