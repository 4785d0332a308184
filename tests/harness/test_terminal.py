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


def _sweep(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(REPO / "studies" / "smoke.yaml", tmp_path / "smoke.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", "sweep", "smoke.yaml", "--n-trials", "2", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_sweep_shows_only_its_own_lines_and_each_update_once(tmp_path):
    proc = _sweep(tmp_path)
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


def test_verbose_shows_the_libraries_lines(tmp_path):
    proc = _sweep(tmp_path, "--verbose", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "INFO mlflow" in proc.stderr


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
