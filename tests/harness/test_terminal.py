"""The terminal: no library noise unless --verbose, each progress update once, an overall bar."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.terminal import OverallProgress, configure

REPO = Path(__file__).resolve().parents[2]


def _harness(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(REPO / "studies" / "smoke.yaml", tmp_path / "smoke.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_sweep_shows_only_its_own_lines_and_each_update_once(tmp_path):
    proc = _harness(tmp_path, "sweep", "smoke.yaml", "--n-trials", "2")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    # a fresh store: MLflow would say "Creating initial MLflow database tables..." at INFO
    assert "INFO" not in err and "mlflow" not in err.lower(), err
    assert "Warning" not in err, err
    updates = [u.strip() for u in re.split(r"[\r\n]+", err) if "trial" in u and "|" in u]
    counts = [u for u in updates if "last=" in u]
    # one redraw per finished trial (plus tqdm's final one on close), never two in a row
    assert len(counts) == len(set(counts)) + 1 or len(counts) == len(set(counts)), updates
    assert any("2/2" in u for u in updates)
    assert "sweep 'smoke'" in err.splitlines()[0]


def test_verbose_lets_the_libraries_speak(monkeypatch):
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    configure(verbose=True)
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "INFO"
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("py.warnings").filters == []
    configure(verbose=False)
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert logging.getLogger("mlflow.store.db.utils").getEffectiveLevel() == logging.WARNING
    # a warning raised inside MLflow is dropped even under MLflow's own "once" filter
    record = logging.LogRecord(
        "py.warnings",
        logging.WARNING,
        "",
        0,
        "%s",
        ("/x/site-packages/mlflow/pyfunc/utils/data_validation.py:187: UserWarning: hints\n",),
        None,
    )
    (noise_filter,) = logging.getLogger("py.warnings").filters
    assert not noise_filter.filter(record)
    record.args = ("/repo/harness/study/storage.py:80: UserWarning: SQLite locks\n",)
    assert noise_filter.filter(record)  # the harness's own warnings still show


def test_harness_warnings_go_through_logging(capsys):
    configure(prog="harness sweep")
    logging.getLogger("harness").warning("something to know")
    logging.getLogger("harness").info("a plain message")
    err = capsys.readouterr().err.splitlines()
    assert err == ["harness sweep: warning: something to know", "a plain message"]


def test_the_overall_bar_counts_done_of_total_with_an_eta(monkeypatch):
    buf = io.StringIO()
    import tqdm.auto

    real = tqdm.auto.tqdm
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda **kw: real(file=buf, mininterval=0, **kw))
    bar = OverallProgress(3, enabled=True, desc="2 claim(s)", unit="protocol")
    bar.advance("a/p1")
    bar.advance("a/p2")
    text = buf.getvalue()
    bar.close()
    assert "2/3" in text and "a/p2" in text
    assert re.search(r"<\d\d:\d\d", text)  # tqdm's ETA
    assert OverallProgress(1, enabled=True).bar is None  # one unit: the study's own bar is enough
    assert OverallProgress(5, enabled=False).bar is None


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    configure(verbose=False)
