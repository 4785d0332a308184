"""Record one training run in MLflow: the naming contract of :mod:`harness.tracking` applied.

Training does not log and logging does not train: :func:`open_run` creates the run and logs its
config *before* training (so a crash keeps what was known), :func:`finish_run` logs what the
:class:`~harness.train.History` measured, and :func:`fail_run` closes a run whose training raised.
"""

from __future__ import annotations

import csv
import io
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from harness.config import flatten
from harness.tracking import DERIVED_SERIES, Tracker, provenance_tags

__all__ = ["fail_run", "finish_run", "history_csv", "open_run", "run_params", "run_url"]


def history_csv(records: Sequence[Mapping[str, float]]) -> str:
    """The per-epoch records as CSV text (one column per metric, ``epoch`` first)."""
    columns: dict[str, None] = {"epoch": None}
    for rec in records:
        columns.update(dict.fromkeys(rec))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="")
    writer.writeheader()
    for rec in records:
        writer.writerow(dict(rec))
    return buf.getvalue()


def run_params(
    config: Mapping[str, Any], extra_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A run's params: its resolved config flattened to dotted keys, and ``extra_params``."""
    params = flatten({k: v for k, v in config.items() if k in ("seed", "data", "model", "train")})
    params.update(extra_params or {})
    return params


def open_run(
    tracker: Tracker,
    experiment_id: str,
    config: Mapping[str, Any],
    *,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    command: str | None = None,
    extra_params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    provenance: Mapping[str, str] | None = None,
    config_artifact: bool = True,
    log_params: bool = True,
) -> str:
    """Create the run, log the flattened config as params and the provenance tags.

    ``provenance`` reuses tags computed once (a sweep logs hundreds of runs); ``command`` is
    then set per run. ``log_params=False`` leaves the params (:func:`run_params`) to the
    caller, who logs them with the run's metrics in one transaction.
    """
    all_tags: dict[str, Any] = dict(provenance) if provenance else provenance_tags(command)
    if command is not None:
        all_tags["command"] = command
    all_tags["seed"] = config.get("seed", "")
    all_tags["status"] = "running"
    all_tags.update(tags or {})
    run_id = tracker.start_run(
        experiment_id, run_name=run_name, parent_run_id=parent_run_id, tags=all_tags
    )
    if log_params:
        tracker.log_params(run_id, run_params(config, extra_params))
    if config_artifact:
        tracker.log_text(run_id, yaml.safe_dump(dict(config), sort_keys=False), "config.yaml")
    return run_id


def finish_run(
    tracker: Tracker,
    run_id: str,
    result: Any,
    *,
    splits: Any = None,
    log_model: bool = True,
    extra_tags: Mapping[str, Any] | None = None,
    title: str = "",
) -> None:
    """Log the curves (:meth:`Tracker.curve_rows`), summary metrics and status tags in one
    transaction, then the artifacts (``history.csv``: every epoch); then end the run."""
    from harness.runplots import learning_curves_figure

    history = result.history
    summary = history.summary()
    last_epoch = int(summary["epochs"])
    totals = [
        (k, v, last_epoch) for k, v in summary.items() if not k.startswith(("final/", "best/"))
    ]
    rows = tracker.curve_rows(history.records)
    if tracker.curve_points is not None:
        # the summary logs the derived series (steps) at the last epoch: one row, not two
        rows = [r for r in rows if r[0] not in DERIVED_SERIES]
    tags = {"status": history.status, "reason": history.reason}
    tags.update(tracker.curve_tags(history.records))
    tags.update(extra_tags or {})
    tracker.log_batch(run_id, metrics=rows + totals, tags=tags)
    tracker.log_text(run_id, history_csv(history.records), "history.csv")
    if history.records:
        figure = learning_curves_figure(history.records, title=title)
        tracker.log_figure(run_id, figure, "learning_curves.png")
    if splits is not None:
        tracker.log_dataset(run_id, splits)
    if log_model and result.network is not None and history.status != "diverged":
        example = splits.val.X[:5] if splits is not None else None
        tracker.log_model(run_id, result.network, example=example)
    tracker.end_run(run_id, history.status)


def fail_run(tracker: Tracker, run_id: str, exc: BaseException) -> None:
    """Close a run whose training raised: status and reason tags, the traceback, FAILED/KILLED."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    status = "interrupted" if interrupted else "failed"
    reason = "interrupted by the user (Ctrl-C)" if interrupted else f"{type(exc).__name__}: {exc}"
    try:
        tracker.set_tags(run_id, {"status": status, "reason": reason[:5000]})
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        tracker.log_text(run_id, tb, "error.txt")
    finally:
        tracker.end_run(run_id, status)


def run_url(
    tracker: Tracker, experiment_id: str, run_id: str, *, host: str = "127.0.0.1:5000"
) -> str:
    """Where the run is in the UI started by ``harness ui`` (or the tracking server itself)."""
    uri = tracker.tracking_uri
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://{host}"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
