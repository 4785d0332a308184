"""`harness dashboard`: optuna-dashboard, bound to 127.0.0.1, on the sweeps' own storage."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest

from harness.cli import main
from harness.study.storage import default_storage_url, make_storage
from tests.servers import free_port, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_studies(tmp_path):
    storage = make_storage(default_storage_url(root=tmp_path))
    for name in ("first", "second"):
        study = optuna.create_study(study_name=name, storage=storage)
        study.optimize(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=3)
    return tmp_path


def test_dashboard_serves_every_study_of_the_shared_journal(two_studies):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    studies = f"http://127.0.0.1:{port}/api/studies"
    proc = start_server(
        [sys.executable, "-m", "harness", "dashboard", "second", "--port", str(port)],
        ready_url=studies,
        cwd=two_studies,
        env=env,
        timeout_s=60,
    )
    try:
        with urllib.request.urlopen(studies, timeout=5) as r:
            body = json.loads(r.read())
        names = {s["study_name"] for s in body["study_summaries"]}
        assert names == {"first", "second"}
    finally:
        out = stop_server(proc, grace_s=20)
    # the first line names the study's page and the storage
    assert f"http://127.0.0.1:{port}/dashboard/studies/" in out.splitlines()[0]
    assert "studies.journal" in out.splitlines()[0]


def test_an_unknown_study_is_one_line_naming_the_studies_there(two_studies, monkeypatch, capsys):
    monkeypatch.chdir(two_studies)
    assert main(["dashboard", "secnd", "--dry-run", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "did you mean 'second'" in err[0] and "first, second" in err[0]


def test_no_study_yet_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "any", "--dry-run", "--port", str(free_port())]) == 2
    assert "harness sweep" in capsys.readouterr().err
    assert not (tmp_path / "mlruns").exists()
