"""Worker faults (issue 10, item 6): a worker killed mid-trial has its trial retried (recorded as a
retry) and the sweep goes on; the driver never has more trials asked than workers; a SIGKILLed
driver's workers exit within seconds. Each sweep starts on a copy of a migrated MLflow store (the
store's creation is test_faults_drivers' subject, not these)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from harness.study.storage import make_storage
from tests.study.test_faults_crash import (
    N_TRIALS,
    check_complete_record,
    fault_study,
    journal_path,
    n_ledger,
    n_running,
    start_driver,
    store_of,
)


def children_of(pid: int) -> list[int]:
    """The loky worker processes of the driver ``pid`` (not its resource tracker)."""
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
        if ppid == pid and "LokyProcess" in cmdline:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait(cond, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended first:\n{proc.stdout.read()}")
        time.sleep(0.02)
    pytest.fail("timed out")


def test_a_dead_worker_s_trial_is_retried_and_the_sweep_goes_on(tmp_path, copy_of_a_migrated_store):
    name = "worker-dies"
    copy_of_a_migrated_store(store_of(tmp_path))
    path = fault_study(tmp_path, name, replicates=1)
    proc = start_driver(tmp_path, path)
    _wait(lambda: n_ledger(tmp_path, name) >= 1 and n_running(tmp_path, name) >= 1, proc)
    workers = children_of(proc.pid)
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    stats = check_complete_record(tmp_path, name, replicates=1)
    study = optuna.load_study(
        study_name=name, storage=make_storage(f"journal://{journal_path(tmp_path, name)}")
    )
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    retries = {t.user_attrs.get("retry_of") for t in study.trials}
    # each trial the dead worker took is recorded with its reason and re-ran as a retry
    assert all(t.number in retries for t in interrupted)
    assert all("worker" in t.user_attrs.get("fail_reason", "") for t in interrupted)
    assert stats["finished"] == N_TRIALS


def test_asked_trials_never_exceed_the_workers(tmp_path, copy_of_a_migrated_store):
    name = "ask-ahead"
    copy_of_a_migrated_store(store_of(tmp_path))
    path = fault_study(tmp_path, name, replicates=1)
    proc = start_driver(tmp_path, path)
    most = 0
    while proc.poll() is None:
        most = max(most, n_running(tmp_path, name))
        time.sleep(0.02)
    assert proc.returncode == 0, proc.stdout.read()
    assert 1 <= most <= 2  # --jobs 2: never a trial asked that no worker runs


def test_workers_exit_within_seconds_after_the_driver_is_killed(tmp_path, copy_of_a_migrated_store):
    name = "orphan-workers"
    copy_of_a_migrated_store(store_of(tmp_path))
    path = fault_study(tmp_path, name, replicates=1)
    proc = start_driver(tmp_path, path)
    _wait(lambda: n_ledger(tmp_path, name) >= 1, proc)
    workers = [pid for pid in children_of(proc.pid) if _alive(pid)]
    assert workers
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers are left to themselves
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for p in left:  # do not leave them behind in any case
        os.kill(p, signal.SIGKILL)
    assert not left, "workers outlived their driver by more than 15 s"
