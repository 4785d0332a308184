"""MLflow 3 conventions: model-training experiments, LoggedModels, datasets, figures, tables."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.tracking import EXPERIMENT_KIND, Tracker


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "seed": 1,
                "data": {"name": "moons"},
                "model": {"name": "mlp", "hidden": [8], "activation": "tanh"},
                "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 64, "epochs": 2},
            }
        )
    )
    return path


def test_experiments_open_on_their_runs_and_have_a_description(tracking_uri, unique_name):
    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment(unique_name, description="what it is", tags={"owner": "me"})
    exp = tracker.client.get_experiment(exp_id)
    assert exp.tags[EXPERIMENT_KIND[0]] == "custom_model_development"
    assert exp.tags["mlflow.note.content"] == "what it is"
    assert exp.tags["owner"] == "me"
    # an experiment made without the kind (an older store) gets it; a user's description stays
    old = tracker.client.create_experiment(f"{unique_name}-old", tags={"mlflow.note.content": "x"})
    assert tracker.experiment(f"{unique_name}-old", description="ours") == old
    tags = tracker.client.get_experiment(old).tags
    assert tags[EXPERIMENT_KIND[0]] == "custom_model_development"
    assert tags["mlflow.note.content"] == "x"


def test_the_model_is_a_registrable_logged_model_and_the_dataset_an_input(
    run_file, tracking_uri, unique_name, monkeypatch
):
    import mlflow
    from mlflow import MlflowClient

    code = main(
        [
            "train",
            str(run_file),
            "--experiment",
            unique_name,
            "--tracking-uri",
            tracking_uri,
            "--no-progress",
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(unique_name)
    (run,) = client.search_runs([exp.experiment_id])
    models = client.search_logged_models(experiment_ids=[exp.experiment_id])
    assert len(models) == 1
    model = models[0]
    assert model.source_run_id == run.info.run_id
    assert model.name == "model" and str(model.status).endswith("READY")
    # linked to the run as its output
    outputs = run.outputs.model_outputs if run.outputs else []
    assert [o.model_id for o in outputs] == [model.model_id]
    # the dataset is the run's input, with its context
    (ds_input,) = run.inputs.dataset_inputs
    assert ds_input.dataset.name == "moons"
    assert {t.key: t.value for t in ds_input.tags}["mlflow.data.context"] == "training"
    # registrable, and the registered version predicts
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    version = mlflow.register_model(f"models:/{model.model_id}", f"{unique_name}-model")
    assert int(version.version) == 1
    loaded = mlflow.pyfunc.load_model(f"models:/{unique_name}-model/1")
    pred = np.asarray(loaded.predict(np.zeros((3, 2), dtype=np.float32)))
    assert pred.shape[0] == 3 and np.isfinite(pred).all()


def test_figures_and_tables_are_mlflow_artifacts(tracking_uri, unique_name, monkeypatch):
    import pandas as pd
    from matplotlib.figure import Figure

    tracker = Tracker(tracking_uri)
    exp_id = tracker.experiment(unique_name)
    run_id = tracker.start_run(exp_id)
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0], label="line")
    tracker.log_figure(run_id, fig, "plots/figure.png")
    frame = pd.DataFrame({"trial": [0, 1], "value": [0.5, 0.25]})
    tracker.log_table(run_id, frame, "trials.json")
    names = {a.path for a in tracker.client.list_artifacts(run_id, "plots")}
    assert names == {"plots/figure.png"}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # load_table searches through it
    back = tracker.client.load_table(exp_id, "trials.json", run_ids=[run_id])
    assert back["value"].tolist() == [0.5, 0.25]
