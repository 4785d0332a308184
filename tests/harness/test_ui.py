"""`harness ui`: MLflow's server through the harness plugin, so experiments open on their runs."""

from __future__ import annotations

import importlib.metadata
import json
import re

from harness.cli import ui_command
from harness.mlflow_app import APP_NAME, UI_DEFAULTS, inject_default_workflow


def test_the_index_page_defaults_to_the_model_training_workflow():
    page = b'<!doctype html><html lang="en"><head><meta charset="utf-8"/></head><body></body>'
    out = inject_default_workflow(page)
    script = re.search(rb"<head><script>(.*?)</script>", out).group(1).decode()
    defaults = json.loads(re.search(r"var d=(\{.*?\});", script).group(1))
    assert defaults == UI_DEFAULTS
    # the key and value format of the UI's own useLocalStorage (key_v<version>, JSON value)
    assert defaults["mlflow.workflowType_v1"] == "machine_learning"
    assert "getItem(k)===null" in script  # a browser's own choice is never overwritten
    assert inject_default_workflow(out) == out  # once
    assert inject_default_workflow(b"{}") == b"{}"  # not an HTML page


def test_harness_ui_uses_the_plugin_when_it_is_registered(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = ui_command(uri, host="127.0.0.1", port=5000)
    registered = any(
        ep.name == APP_NAME for ep in importlib.metadata.entry_points(group="mlflow.app")
    )
    assert ("--app-name" in cmd) == registered
    if registered:
        assert cmd[cmd.index("--app-name") + 1] == APP_NAME
        (ep,) = [
            e for e in importlib.metadata.entry_points(group="mlflow.app") if e.name == APP_NAME
        ]
        assert ep.value == "harness.mlflow_app:create_app"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
