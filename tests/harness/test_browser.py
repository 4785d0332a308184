"""What a researcher sees, in a real browser: headless Chromium on `harness ui` and on a report.

Slow (a claim is reproduced, the MLflow UI starts, Chromium renders): ``pytest -m slow
tests/harness/test_browser.py``. Skips with its reason where Chromium is absent
(``apt-get install -y chromium``). ``HARNESS_SCREENSHOTS_DIR=docs/screenshots`` keeps the PNGs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.servers import free_port, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install -y chromium)"),
]


def chromium(url: str, *, screenshot: Path | None = None, size: str = "1400,900") -> str:
    """The DOM after the page's scripts ran (``--dump-dom``), and a screenshot if asked."""
    base = [
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={size}",
        # the UI fetches its runs after the first paint: give the scripts time to settle
        "--virtual-time-budget=30000",
    ]
    if screenshot is not None:
        subprocess.run(
            [*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=True
        )
    out = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    return out.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A tiny claim reproduced into its own store, and `harness ui` serving that store."""
    from harness.reproduce import reproduce_claim
    from tests.harness.test_reproduce import TINY_CLAIM

    root = tmp_path_factory.mktemp("browser")
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    claim = root / "tiny_lr.yaml"
    claim.write_text(yaml.safe_dump(TINY_CLAIM, allow_unicode=True))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = reproduce_claim(
            str(claim), jobs=2, tracking_uri=uri, reports_dir=root / "reports", progress=False
        )
    finally:
        os.chdir(cwd)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ui = start_server(
        [sys.executable, "-m", "harness", "ui", "--tracking-uri", uri, "--port", str(port)],
        ready_url=f"http://127.0.0.1:{port}/health",
        cwd=root,
        env=env,
    )
    try:
        shots = Path(os.environ.get("HARNESS_SCREENSHOTS_DIR") or root / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        yield {"result": result, "base": f"http://127.0.0.1:{port}", "shots": shots}
    finally:
        stop_server(ui)


def test_an_experiment_opens_on_its_runs_table(world):
    result = world["result"]
    shot = world["shots"] / "experiment_runs.png"
    dom = chromium(f"{world['base']}/#/experiments/{result.experiment_id}", screenshot=shot)
    assert shot.stat().st_size > 10_000
    # the runs table: its header and the claim's parent run, not the GenAI traces overview
    assert "Run Name" in dom, dom[-2000:]
    assert "tiny_lr [quick]" in dom
    assert "No data available for the selected time range" not in dom


def test_a_parent_run_page_shows_its_artifacts(world):
    result = world["result"]
    shot = world["shots"] / "parent_run.png"
    url = f"{world['base']}/#/experiments/{result.experiment_id}/runs/{result.parent_run_id}"
    dom = chromium(url, screenshot=shot)
    assert "tiny_lr [quick]" in dom
    assert shot.stat().st_size > 10_000


def test_the_report_renders_its_verdict_table(world):
    result = world["result"]
    shot = world["shots"] / "report.png"
    dom = chromium(result.report_html.resolve().as_uri(), screenshot=shot, size="1100,1400")
    verdict = result.verdicts["T1"]
    tables = re.findall(r"<table.*?</table>", dom, re.S | re.I)
    assert any("T1" in t and verdict.lower() in t.lower() for t in tables), tables[:2]
    assert shot.stat().st_size > 10_000
