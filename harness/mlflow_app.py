"""The MLflow UI as ``harness ui`` serves it: MLflow's own server, opening experiments on runs.

MLflow 3's UI has two workflows, *GenAI* (traces, token usage) and *Model training* (the runs
table). It starts in GenAI unless the browser has chosen otherwise (``localStorage`` key
``mlflow.workflowType_v1``, or ``?workflowType=machine_learning`` in the URL), so a harness
experiment first opened on an empty "Traces 0" overview. This ``mlflow.app`` plugin
(``mlflow ui --app-name harness``; registered in ``pyproject.toml``) is MLflow's server unchanged
except that its page sets that default to *Model training* when the browser has no choice
stored yet; the toggle at the top left still switches, and the choice sticks. The same way, the
AI assistant panel (which needs an LLM provider) does not open by itself on the first visit.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = [
    "APP_NAME",
    "DEFAULT_WORKFLOW_SCRIPT",
    "UI_DEFAULTS",
    "create_app",
    "inject_default_workflow",
]

#: the entry-point name (``[project.entry-points."mlflow.app"]``)
APP_NAME = "harness"
#: browser defaults set when the browser has none yet: the Model training workflow, and the
#: AI assistant panel (it needs an LLM provider) not opened by itself on the first visit
UI_DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
}
DEFAULT_WORKFLOW_SCRIPT = (
    "<script>try{var d="
    + json.dumps(UI_DEFAULTS)
    + ";for(var k in d){if(window.localStorage.getItem(k)===null)"
    "{window.localStorage.setItem(k,JSON.stringify(d[k]))}}}catch(e){}</script>"
).encode()


def inject_default_workflow(body: bytes) -> bytes:
    """The UI's index page with :data:`DEFAULT_WORKFLOW_SCRIPT` first in its ``<head>``."""
    if DEFAULT_WORKFLOW_SCRIPT in body or b"<head>" not in body:
        return body
    return body.replace(b"<head>", b"<head>" + DEFAULT_WORKFLOW_SCRIPT, 1)


def create_app() -> Any:
    """MLflow's Flask app with the index page patched (a FastAPI app under uvicorn, as MLflow's
    own ``basic-auth`` plugin returns)."""
    from flask import request
    from mlflow.server import app

    @app.after_request
    def _default_to_model_training(response: Any) -> Any:
        if response.mimetype == "text/html" and not request.path.startswith(("/api", "/ajax")):
            response.direct_passthrough = False
            response.set_data(inject_default_workflow(response.get_data()))
        return response

    # ``mlflow server`` names its server to the app process in this variable (uvicorn, waitress
    # or gunicorn; what its basic-auth plugin reads): read from the environment, not through
    # MLflow's private ``environment_variables._MLFLOW_SGI_NAME`` handle
    if os.environ.get("_MLFLOW_SGI_NAME") == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
