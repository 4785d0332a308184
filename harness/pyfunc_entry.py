"""MLflow "models from code" entry point: the file MLflow copies into a logged model.

Logging the model from code (instead of a cloud-pickled object) keeps the artifact readable and
avoids executing pickled code at load time.
"""

import mlflow.models

from harness.pyfunc import ZooModel

mlflow.models.set_model(ZooModel())
