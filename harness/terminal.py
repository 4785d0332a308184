"""What the terminal shows: the harness's messages through ``logging``, the libraries' quiet.

:func:`configure` is called once by the command line (``harness <command> [--verbose]``):

- the harness's own messages go through the ``harness`` logger: ``INFO`` as they are,
  ``WARNING`` and above as ``harness <command>: warning: ...``, written with ``tqdm.write`` so
  that they never tear a progress bar;
- MLflow's INFO lines (database migrations, "Creating experiment") and the UserWarnings and
  FutureWarnings of MLflow, Optuna and alembic are hidden, unless ``--verbose``; their errors
  always show;
- :class:`OverallProgress` is the bar over several claims or protocols (done/total and an ETA).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

__all__ = ["NOISY_LOGGERS", "OverallProgress", "configure", "is_verbose", "optuna_verbosity"]

#: third-party loggers whose INFO output is noise for a harness user
NOISY_LOGGERS = ("mlflow", "alembic", "optuna", "urllib3", "matplotlib", "distributed", "numexpr")
_STATE = {"verbose": False, "configured": False}


class _TqdmHandler(logging.Handler):
    """Writes records with ``tqdm.write`` (above any live bar), to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


class _HarnessFormatter(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{self.prog}: {record.levelname.lower()}: {message}"
        return message


class _LibraryWarningFilter(logging.Filter):
    """Drops warnings raised inside the noisy libraries (``logging.captureWarnings`` routes
    every shown warning here). Needed on top of ``warnings.filterwarnings``: MLflow's model
    saving resets the filters for its own UserWarnings (``filter_user_warnings_once``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        text = str(args[0]) if isinstance(args, tuple) and args else record.getMessage()
        where = text.split(":", 1)[0].replace("\\", "/")
        return not any(f"/{name}/" in where for name in _WARNING_PACKAGES)


_WARNING_PACKAGES = ("mlflow", "optuna", "alembic", "pydantic", "setuptools", "optuna_dashboard")


def _route_warnings(verbose: bool) -> None:
    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    for f in list(logger.filters):
        if isinstance(f, _LibraryWarningFilter):
            logger.removeFilter(f)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if not verbose:
        logger.addFilter(_LibraryWarningFilter())


def configure(*, verbose: bool = False, prog: str = "harness") -> None:
    """Set up the harness logger and quiet the libraries (see the module docstring).

    Safe to call again (a test calling ``main`` twice): the handler is replaced, not added.
    """
    _STATE["verbose"] = verbose
    # read by MLflow when it is first imported (and by worker processes, which inherit it)
    os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO" if verbose else "WARNING"
    logger = logging.getLogger("harness")
    for handler in list(logger.handlers):
        if isinstance(handler, _TqdmHandler):
            logger.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(_HarnessFormatter(prog))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    if "optuna" in sys.modules:
        import optuna

        optuna.logging.set_verbosity(optuna_verbosity())
    _route_warnings(verbose)
    if not verbose:
        for module in _WARNING_PACKAGES:
            for category in (UserWarning, FutureWarning, DeprecationWarning):
                warnings.filterwarnings("ignore", category=category, module=rf"{module}(\.|$)")
        try:
            from optuna.exceptions import ExperimentalWarning

            warnings.filterwarnings("ignore", category=ExperimentalWarning)
        except ImportError:  # pragma: no cover
            pass
    _STATE["configured"] = True


def is_verbose() -> bool:
    return bool(_STATE["verbose"])


def optuna_verbosity() -> int:
    """Optuna's log level: INFO (a line per trial) with ``--verbose``, else WARNING."""
    return logging.INFO if is_verbose() else logging.WARNING


class OverallProgress:
    """One bar over the units of a long command (the protocols of several claims).

    Shows ``done/total``, the elapsed time and an ETA from the mean time per unit so far; the
    per-study bars appear under it. Disabled: every method does nothing.
    """

    def __init__(self, total: int, *, enabled: bool, desc: str = "overall", unit: str = "study"):
        self.bar: Any = None
        if enabled and total > 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, position=0, leave=True)

    def advance(self, label: str = "") -> None:
        if self.bar is None:
            return
        if label:
            self.bar.set_postfix_str(label, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
