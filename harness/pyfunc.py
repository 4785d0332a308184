"""The zoo network as an MLflow pyfunc model.

``mlflow.pyfunc.load_model(uri).predict(df)`` returns exactly what ``network.predict`` returns
(class probabilities, or regression values) for the rows of ``df`` (or an ndarray), reshaped to the
network's input shape. The artifact holds the architecture (``network.json``) and the weights
(``weights.npz``); the ``models`` package is copied in as code, so loading needs only NumPy and
MLflow.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
from mlflow.pyfunc import PythonModel

__all__ = ["ZooModel", "save_pyfunc"]

_MODELS_PKG = Path(__file__).resolve().parent.parent / "models"
_ENTRY = Path(__file__).resolve().parent / "pyfunc_entry.py"


class ZooModel(PythonModel):
    """pyfunc wrapper: rebuilds the Sequential from its config and loads its weights."""

    def load_context(self, context: Any) -> None:
        import numpy as np

        from models.network import Sequential

        config = json.loads(Path(context.artifacts["network"]).read_text())
        net = Sequential.from_config(config, rng=np.random.default_rng(0))
        net.load_weights(context.artifacts["weights"])
        self.network = net
        self.input_shape = tuple(config["input_shape"])
        self.dtype = np.dtype(config.get("dtype", "float32"))

    # no type hints here on purpose: MLflow reads predict's hints as an input schema
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        values = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
        X = np.asarray(values, dtype=self.dtype).reshape((-1, *self.input_shape))
        return self.network.predict(X)


def save_pyfunc(network: Any, path: str | Path, *, example: Any = None) -> Path:
    """Save ``network`` as a pyfunc model directory at ``path`` (which must not exist)."""
    from mlflow.models import infer_signature

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "network.json"
        weights_path = Path(tmp) / "weights.npz"
        cfg_path.write_text(json.dumps(network.get_config(), default=str, indent=2))
        network.save_weights(weights_path)
        signature = None
        input_example = None
        if example is not None:
            flat = np.asarray(example).reshape(len(example), -1)[:5]
            out = network.predict(np.asarray(example)[:5])
            signature = infer_signature(flat, out)
            input_example = flat
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=str(_ENTRY),
            artifacts={"network": str(cfg_path), "weights": str(weights_path)},
            code_paths=[str(_MODELS_PKG)],
            # explicit requirements: inferring them imports and profiles the environment (slow)
            pip_requirements=[f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
            signature=signature,
            input_example=input_example,
        )
    return path
