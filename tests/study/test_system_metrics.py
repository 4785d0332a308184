"""--system-metrics: CPU and memory per run, under MLflow's system-metric names."""

from __future__ import annotations

import time

from mlflow import MlflowClient

from harness.sysmetrics import SystemSampler
from tests.study.test_runner import sweep, write_study

NAMES = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/process_memory_rss_megabytes",
    "system/process_cpu_percentage",
}


def test_the_sampler_takes_a_sample_at_start_stop_and_every_interval():
    with SystemSampler(interval_s=0.05) as sampler:
        time.sleep(0.3)
    rows = sampler.rows
    assert {k for k, _, _ in rows} == NAMES
    steps = sorted({s for _, _, s in rows})
    assert steps == list(range(len(steps))) and len(steps) >= 3
    rss = [v for k, v, _ in rows if k == "system/process_memory_rss_megabytes"]
    assert all(v > 1 for v in rss)  # a Python process holds more than a megabyte
    pct = [v for k, v, _ in rows if k.endswith("usage_percentage")]
    assert all(0 < v <= 100 for v in pct)


def test_each_trial_run_gets_its_workers_system_metrics(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name, **{"search.n_trials": 2})
    result = sweep(tmp_path, path, tracking_uri, jobs=2, system_metrics=True)
    client = MlflowClient(tracking_uri)
    trials = client.search_runs(
        [result.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert len(trials) == 2
    for run in trials:
        assert set(run.data.metrics) >= NAMES
        history = client.get_metric_history(run.info.run_id, "system/process_memory_rss_megabytes")
        assert len(history) >= 2
    # off unless asked: a trial task samples nothing by default
    from harness.study.worker import TrialTask

    assert TrialTask.__dataclass_fields__["system_metrics"].default is False
