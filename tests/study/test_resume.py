"""Interrupted sweeps resume: SIGKILL of the driver, SIGKILL of a worker, Ctrl-C.

Each test starts a real `harness sweep` process, interrupts it while trials are in flight, runs
the same command again, and checks that completed trials were kept, interrupted ones re-ran with
their original parameters, their old MLflow runs are KILLED, and nothing is counted twice.
The two SIGKILL tests are slow: test_faults_crash and test_faults_workers make the same kills,
with the same checks, in the fast suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from harness.study.storage import default_storage_url, make_storage
from tests.study.test_faults_crash import n_ledger, n_running

N_TRIALS = 6


def slow_study(tmp_path: Path, name: str) -> Path:
    """Trials of about a second each, so that some are in flight when we interrupt."""
    raw = {
        "name": name,
        "seed": 1,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [128, 128], "activation": "relu"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.05}, "batch_size": 16, "epochs": 12},
        "objective": {"metric": "val/accuracy", "direction": "maximize"},
        "search": {
            "sampler": {"name": "random"},
            "n_trials": N_TRIALS,
            "params": {
                "train.optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True}
            },
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start(tmp_path, path, tracking_uri):
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "sweep",
        str(path),
        "--jobs",
        "2",
        "--tracking-uri",
        tracking_uri,
        "--no-progress",
        "--log-models",
        "none",
        "--no-plots",
    ]
    return subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until(cond, proc, timeout=180.0):
    """Poll ``cond()`` until it holds; fail when the sweep ends first or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before the interruption:\n{proc.stdout.read()}")
        if cond():
            return
        time.sleep(0.02)
    pytest.fail("the moment to interrupt never came")


def wait_for_ledger(tmp_path, name, n, proc):
    wait_until(lambda: n_ledger(tmp_path, name) >= n, proc)


def children_of(pid: int) -> list[tuple[int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append((int(entry.name), cmdline))
    return out


def check_resumed(tmp_path, name, tracking_uri, *, expect_interrupted=True):
    rerun = start(tmp_path, tmp_path / f"{name}.yaml", tracking_uri)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    storage = make_storage(default_storage_url(name, root=tmp_path))
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    finished = [t for t in trials if not t.user_attrs.get("interrupted")]
    if expect_interrupted:
        assert interrupted, "the interruption left no trial in flight"
    # every design point finished exactly once; interrupted points re-ran with the same params
    assert sorted(t.user_attrs["design_index"] for t in finished) == list(range(N_TRIALS))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in finished)
    by_retry = {t.user_attrs["retry_of"]: t for t in finished if "retry_of" in t.user_attrs}
    for t in interrupted:
        assert t.state == optuna.trial.TrialState.FAIL
        # (a trial killed right after ask() has its values only as enqueued "fixed_params")
        assert by_retry[t.number].params == (t.params or t.system_attrs["fixed_params"])
    ledger = sorted((tmp_path / "mlruns" / "ledger" / name).glob("trial-*.json"))
    assert len(ledger) == N_TRIALS
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(name)
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`harness.kind` = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'",
        max_results=1000,
    )
    statuses = sorted(r.info.status for r in runs)
    assert statuses.count("FINISHED") == N_TRIALS
    assert "RUNNING" not in statuses
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert all(r.data.tags["status"] == "interrupted" for r in killed)
    # every interrupted trial that had a run has it KILLED; a trial killed between ask() and
    # the creation of its run has none (this used to be asserted as equal counts: flaky), and
    # a run created an instant before the driver died, not yet recorded, is KILLED too
    had_runs = {
        t.user_attrs["mlflow_run_id"] for t in interrupted if "mlflow_run_id" in t.user_attrs
    }
    assert had_runs <= {r.info.run_id for r in killed}
    assert len(killed) <= len(interrupted)


# covered in the fast suite by test_faults_crash::test_sigkill_of_the_driver_at_a_moment_loses_and_
# doubles_nothing[ledger-file-appears] (the same kill, of the driver's group as the second ledger
# file appears, and the same checks: every point once, interrupted ones re-ran with their params,
# their runs KILLED, one parent); slow here
@pytest.mark.slow
def test_resume_after_sigkill_of_the_driver(tmp_path, tracking_uri, unique_name):
    path = slow_study(tmp_path, unique_name)
    proc = start(tmp_path, path, tracking_uri)
    wait_for_ledger(tmp_path, unique_name, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, no chance to clean up
    proc.wait(timeout=30)
    check_resumed(tmp_path, unique_name, tracking_uri)


# covered in the fast suite by test_faults_workers::test_a_dead_worker_s_trial_is_retried_and_the_
# sweep_goes_on (a worker SIGKILLed mid-trial, the sweep ends with 0 and a complete record, the
# trial re-ran as a retry with its params) and, for the rerun that adds nothing, by test_runner::
# test_rerunning_a_finished_sweep_runs_nothing_new; slow here
@pytest.mark.slow
def test_resume_after_sigkill_of_a_worker(tmp_path, tracking_uri, unique_name):
    path = slow_study(tmp_path, unique_name)
    proc = start(tmp_path, path, tracking_uri)
    wait_for_ledger(tmp_path, unique_name, 1, proc)
    workers = [pid for pid, cmd in children_of(proc.pid) if "LokyProcess" in cmd]
    assert workers, children_of(proc.pid)
    os.kill(workers[0], signal.SIGKILL)
    # the trial(s) of the dead worker are retried and the sweep goes on to the end (the
    # worker killed may have been between two trials: then nothing was interrupted)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    check_resumed(tmp_path, unique_name, tracking_uri, expect_interrupted=False)


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path, tracking_uri, unique_name):
    path = slow_study(tmp_path, unique_name)
    proc = start(tmp_path, path, tracking_uri)
    # a finished trial to keep, and both workers busy, so that a trial is in flight when the
    # signal lands even if one of them finishes meanwhile (waiting for a count of ledger files
    # alone, flaky under load, can leave none: two trials finishing together, none asked yet)
    wait_until(
        lambda: n_ledger(tmp_path, unique_name) >= 1 and n_running(tmp_path, unique_name) >= 2,
        proc,
    )
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    check_resumed(tmp_path, unique_name, tracking_uri)
