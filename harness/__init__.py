"""nn-harness: hyperparameter studies and claim reports on the NumPy model zoo.

``harness`` is the only package that imports Optuna, MLflow, joblib and seaborn; ``models`` (the
zoo) knows nothing of them.
"""

__version__ = "0.1.0"
