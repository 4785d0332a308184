"""A real MLflow tracking server (issue 10, item 3): ``--tracking-uri http://...`` carries every
run and artifact, and a server killed and restarted mid-sweep makes the sweep say it is
waiting, then go on (or stop with one line); the resume completes with nothing lost.

Slow: an ``mlflow server`` takes 10-30 s to start on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.servers import free_port, kill_server, start_server
from tests.study.test_faults_crash import check_complete_record, fault_study, n_ledger

pytestmark = pytest.mark.slow


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "server-artifacts"),
    ]
    return start_server(cmd, ready_url=f"http://127.0.0.1:{port}/health", env=env, capture=False)


def test_a_tracking_server_killed_and_restarted_mid_sweep(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    name = "server-restart"
    path = fault_study(tmp_path, name, n_trials=8, replicates=1)
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "sweep",
        str(path),
        "--jobs",
        "2",
        "--tracking-uri",
        uri,
        "--no-progress",
        "--log-models",
        "none",
        "--no-plots",
    ]
    env = dict(os.environ, HARNESS_TRACKING_WAIT_S="240")
    try:
        sweep = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(sweep.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 300
        while n_ledger(tmp_path, name) < 2 and time.monotonic() < deadline:
            assert sweep.poll() is None, "".join(lines)
            time.sleep(0.05)
        kill_server(server)
        deadline = time.monotonic() + 120
        while not any("waiting" in ln for ln in lines) and time.monotonic() < deadline:
            if sweep.poll() is not None:
                break
            time.sleep(0.2)
        time.sleep(2)
        server = start_mlflow_server(tmp_path, port)
        sweep.wait(timeout=400)
        reader.join(timeout=10)
        out = "".join(lines)
        assert "does not answer" in out and "waiting up to" in out, out
        assert "Traceback" not in out, out
        if sweep.returncode != 0:  # it stopped: with one line that says why and what to do
            assert "did not answer" in out and "resume" in out, out
        rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        check_complete_record(tmp_path, name, n_trials=8, replicates=1, tracking_uri=uri)
        # every artifact went to the server, none to a local store
        assert not (tmp_path / "mlruns" / "mlflow.db").exists()
        assert list((tmp_path / "server-artifacts").rglob("history.csv"))
    finally:
        kill_server(server)
