"""MLflow tracking through ``MlflowClient`` with explicit run ids (no fluent active-run state).

Why the client API: the fluent API keeps a per-thread "active run", which is how parallel trials
end up under the wrong parent (optuna#4088, mlflow#3592). Here every call names its run id, runs
are created by one writer process, and parent/child links are the ``mlflow.parentRunId`` tag.

Store: ``--tracking-uri`` / ``MLFLOW_TRACKING_URI`` name any store or server; the default is
``sqlite:///<cwd>/mlruns/mlflow.db`` with artifacts under ``mlruns/artifacts`` (MLflow >= 3.13
refuses a plain file store).

Naming contract (tests read it back):

- params: the resolved config flattened to dotted keys (``train.optimizer.lr``);
- metrics: curves with ``step=epoch``, named ``split/metric`` (``train/loss``, ``val/accuracy``),
  under the curve policy below;
- tags: ``status``, ``reason``, ``seed``, ``git.commit``, ``git.dirty``, ``versions.<pkg>``,
  ``blas.library``, ``blas.threads``, ``command``;
- artifacts: ``config.yaml``, ``history.csv``, ``learning_curves.png``, ``model/`` (pyfunc);
- models: the pyfunc model is also an MLflow 3 *LoggedModel* named ``model``, linked to its run
  as an output (the UI's Models tab; ``mlflow.register_model(f"models:/{model_id}", name)``);
- experiments: tagged ``mlflow.experimentKind = custom_model_development`` (the MLflow 3 UI then
  opens them on their runs table, not on the GenAI traces overview) with a description
  (``mlflow.note.content``).

Curve policy (what Keras' and Lightning's MLflow autologging do: curves for the UI, every value
in a file). Each metric value is a row in the store and costs the driver ~0.1 ms, so a sweep of
hundreds of runs spent as long logging as training. With ``curve_points = N`` (default
:data:`DEFAULT_CURVE_POINTS`; ``$HARNESS_CURVE_POINTS``, ``--curve-points``), per series per run:

- a series constant over the run (``lr`` without a schedule) goes at its first and last epoch (a
  flat line over the run; with a schedule it is a curve like any other);
- a derived series (:data:`DERIVED_SERIES`: ``steps`` is epochs x steps per epoch) goes as its
  final value only;
- per-layer telemetry goes at the first and last epoch;
- every other series goes at at most N epochs: the first, the last, the best epoch of the
  objective when the run has one, and evenly spaced epochs between.

A thinned run is tagged ``curves`` (what was kept); ``history.csv`` (the run's artifact) and
the study ledger keep every epoch. ``curve_points = "all"`` (or ``None``) logs every value of
every epoch. Values go to ``log_batch`` in descending step order: MLflow then updates each key's
latest value once per call, not once per value (same stored history and latest values).
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.redact import redact_text

__all__ = [
    "CURVE_POINTS_ENV",
    "DEFAULT_CURVE_POINTS",
    "DEFAULT_STORE_DIR",
    "DERIVED_SERIES",
    "EXPERIMENT_KIND",
    "STATUS_MAP",
    "Tracker",
    "default_tracking_uri",
    "provenance_tags",
    "resolve_curve_points",
    "resolve_tracking_uri",
]

DEFAULT_STORE_DIR = "mlruns"
#: the experiment tag MLflow 3's UI reads to choose an experiment's landing page; without it an
#: experiment opens on the GenAI overview ("Traces 0") instead of its runs
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
_DESCRIPTION_TAG = "mlflow.note.content"
#: metric-name prefixes of the zoo's per-layer telemetry
TELEMETRY_PREFIXES = (
    "grad_norm/",
    "update_norm/",
    "act_mean/",
    "act_std/",
    "saturation/",
    "dead_fraction/",
)
#: points per series per run in MLflow (first, last, best and evenly spaced epochs between): 50
#: points draw a curve's shape in the UI's charts (Lightning logs every 50th step by default);
#: the claims' 100-200-epoch runs stored 2-4x that per series, a row ~0.1 ms of the driver each
DEFAULT_CURVE_POINTS = 50
CURVE_POINTS_ENV = "HARNESS_CURVE_POINTS"
#: fewest points a thinned curve may have: its first, last and best epoch
_MIN_CURVE_POINTS = 3
#: per-epoch series that follow from the epoch number (``steps`` = epochs x steps per epoch,
#: unless a stop cut the last epoch short): logged as their final value
DERIVED_SERIES = ("steps",)
# MLflow's documented limits: 1000 metrics / 100 params / 100 tags per log_batch call
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_MAX_PARAM_LEN = 6000

#: run status (harness) -> MLflow run status
STATUS_MAP = {
    "completed": "FINISHED",
    "target_reached": "FINISHED",
    "early_stopped": "FINISHED",
    "max_steps": "FINISHED",
    "diverged": "FAILED",
    "failed": "FAILED",
    "pruned": "KILLED",
    "interrupted": "KILLED",
}


def default_tracking_uri(root: str | Path | None = None) -> str:
    """``sqlite:///<root>/mlruns/mlflow.db`` (absolute, so any working directory sees one store)."""
    base = Path(root) if root is not None else Path.cwd()
    return f"sqlite:///{(base / DEFAULT_STORE_DIR / 'mlflow.db').resolve()}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI``, else the local default store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


_EVERY_EPOCH = ("all", "none", "null")


def resolve_curve_points(value: int | str | None = "auto") -> int | None:
    """Points per series per run: an int >= 3, or ``None`` for every epoch.

    ``"auto"`` reads ``$HARNESS_CURVE_POINTS`` (else :data:`DEFAULT_CURVE_POINTS`); ``"all"``,
    ``"none"``, ``"null"`` and ``None`` mean every epoch. Anything else is a one-line
    :class:`~harness.config.ConfigError` (a ``ValueError``) naming the setting.
    """
    from harness.config import ConfigError

    where = "curve_points"
    if isinstance(value, str) and value.strip().lower() == "auto":
        env = os.environ.get(CURVE_POINTS_ENV, "").strip()
        if not env:
            return DEFAULT_CURVE_POINTS
        value, where = env, f"${CURVE_POINTS_ENV}"
    if value is None or (isinstance(value, str) and value.strip().lower() in _EVERY_EPOCH):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if isinstance(value, bool) or n < _MIN_CURVE_POINTS or str(value).strip() != str(n):
        raise ConfigError(
            where,
            value,
            f"an integer >= {_MIN_CURVE_POINTS} (points per series per run) or 'all' (every epoch)",
        )
    return n


def _best_index(records: Sequence[Mapping[str, float]], metric: str, mode: str) -> int | None:
    """Index of the first record with the best finite value of ``metric`` (``min``/``max``)."""
    best: tuple[float, int] | None = None
    sign = 1.0 if mode == "min" else -1.0
    for i, rec in enumerate(records):
        v = rec.get(metric)
        if v is None or not math.isfinite(v):
            continue
        if best is None or sign * v < best[0]:
            best = (sign * v, i)
    return None if best is None else best[1]


def _thin(present: Sequence[int], points: int, keep: Iterable[int]) -> list[int]:
    """At most ``points`` of the record indices ``present`` (ascending): the first, the last,
    those of ``keep`` that are present, and evenly spaced ones between."""
    if len(present) <= points:
        return list(present)
    chosen = {present[0], present[-1]} | (set(keep) & set(present))
    between = points - len(chosen)
    if between > 0:
        # even spacing over the positions (not the epochs): a series need not be dense
        step = (len(present) - 1) / (between + 1)
        chosen.update(present[round(step * (j + 1))] for j in range(between))
    return sorted(chosen)


def _artifact_root_for(uri: str) -> str | None:
    """Where new experiments keep artifacts: next to a local sqlite DB; the server's choice else."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return (db.parent / "artifacts").resolve().as_uri()
    return None


@functools.lru_cache(maxsize=1)
def _static_provenance() -> dict[str, str]:
    tags: dict[str, str] = {}
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        if commit:
            tags["git.commit"] = commit
            tags["mlflow.source.git.commit"] = commit
            tags["git.dirty"] = "true" if dirty else "false"
    except (OSError, subprocess.SubprocessError):
        pass
    tags.setdefault("git.commit", "unknown")
    tags.setdefault("git.dirty", "unknown")
    for pkg in ("nn-harness", "numpy", "scipy", "optuna", "mlflow", "joblib", "scikit-learn"):
        try:
            tags[f"versions.{pkg}"] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    tags["versions.python"] = sys.version.split()[0]
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            tags["blas.library"] = f"{blas[0].get('internal_api')} {blas[0].get('version')}"
            tags["blas.threads"] = str(blas[0].get("num_threads"))
    except Exception:  # threadpoolctl introspection is best-effort provenance
        pass
    return tags


def provenance_tags(
    command: str | None = None, *, blas_threads: int | None = None
) -> dict[str, str]:
    """Git commit and dirty flag, package versions, BLAS library and threads, the command.

    ``blas_threads`` is what the run used when it ran elsewhere (a sweep worker's cap);
    otherwise the current process's BLAS thread count is read.
    """
    tags = dict(_static_provenance())
    tags["command"] = command if command is not None else shlex.join(["harness", *sys.argv[1:]])
    if blas_threads is not None:
        tags["blas.threads"] = str(blas_threads)
        return tags
    # threads can be capped after start-up, so read them now
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            tags["blas.threads"] = str(blas[0].get("num_threads"))
    except Exception:
        pass
    return tags


_SQLITE_TUNED = False


def _tune_sqlite() -> None:
    """WAL journal and ``synchronous=NORMAL`` for SQLite stores opened by this process.

    Each MLflow call is one transaction; in SQLite's default rollback-journal mode every commit
    waits for two fsyncs, and a reader (the MLflow UI open during a sweep) blocks the writer.
    WAL lets the UI read while the sweep writes, and NORMAL syncs at checkpoints only: the store
    stays consistent after a crash, and at worst the last few transactions are lost.
    """
    global _SQLITE_TUNED
    if _SQLITE_TUNED:
        return
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    _SQLITE_TUNED = True


def _clean_metric(value: float) -> float | None:
    """MLflow stores NaN but not in every backend; skip non-finite values (history.csv keeps them)."""
    v = float(value)
    return v if math.isfinite(v) else None


class Tracker:
    """Writes runs to one MLflow store. Create it in the process that owns the study.

    Parameters
    ----------
    tracking_uri : str, optional
        Any MLflow store or server URI; default: :func:`resolve_tracking_uri`.
    curve_points : int or "all" or "auto", optional
        Points per series per run of :meth:`curve_rows` (:func:`resolve_curve_points`; the
        module docstring has the policy).
    """

    def __init__(
        self, tracking_uri: str | None = None, *, curve_points: int | str | None = "auto"
    ) -> None:
        from mlflow import MlflowClient

        self.curve_points = resolve_curve_points(curve_points)
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            _tune_sqlite()
        self.client = self._create_store_once(MlflowClient)
        # run id -> artifact URI of the runs this tracker created: MlflowClient looks the run up
        # again for every artifact it logs, which is a third of a trial's tracking time
        self._artifact_uris: dict[str, str] = {}
        self._experiments: dict[str, str] = {}  # run id -> experiment id (LoggedModels need it)

    def _create_store_once(self, client_class: Any) -> Any:
        """The client, its store opened (and on first use created) under a lock: two processes
        that create one store at once both run its schema migrations and corrupt it
        (``_alembic_tmp_latest_metrics already exists``; mlflow#10334)."""
        scheme = self.tracking_uri.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("sqlite", "postgresql", "mysql"):
            return client_class(tracking_uri=self.tracking_uri)  # a server creates its own
        from harness.study.lease import storage_lock

        with storage_lock(self.tracking_uri, "mlflow-store"):
            client = client_class(tracking_uri=self.tracking_uri)
            client.search_experiments(max_results=1)
        return client

    # -- experiments and runs ----------------------------------------------------------------
    def experiment(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> str:
        """The id of experiment ``name``, created (with our artifact root) when absent.

        The experiment is tagged as a model-training experiment (:data:`EXPERIMENT_KIND`) and
        gets ``description`` and ``tags``; an existing experiment gets the kind tag and a missing
        description too (stores written before the tag existed then open on their runs as well).
        """
        all_tags = {
            EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1],
            **{str(k): str(v) for k, v in (tags or {}).items()},
        }
        if description:
            all_tags[_DESCRIPTION_TAG] = description
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            present = dict(exp.tags or {})
            for key, value in all_tags.items():
                # the user's own description and kind stay; ours fill what is missing
                if key in (_DESCRIPTION_TAG, EXPERIMENT_KIND[0]) and present.get(key):
                    continue
                if present.get(key) != value:
                    self.client.set_experiment_tag(exp.experiment_id, key, value)
            return str(exp.experiment_id)
        try:
            return str(
                self.client.create_experiment(
                    name,
                    artifact_location=_artifact_root_for(self.tracking_uri),
                    tags=all_tags,
                )
            )
        except Exception:
            # another process created it between our lookup and create (mlflow#10334)
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def start_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a RUNNING run (a child when ``parent_run_id`` is given) and return its id."""
        # credentials in a storage URL or a command never reach the store (harness.redact)
        all_tags = {str(k): redact_text(str(v)) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        self._artifact_uris[str(run.info.run_id)] = str(run.info.artifact_uri)
        self._experiments[str(run.info.run_id)] = str(experiment_id)
        return str(run.info.run_id)

    def end_run(self, run_id: str, status: str = "completed") -> None:
        """Terminate with the MLflow status mapped from a harness status (or an MLflow one)."""
        mlflow_status = STATUS_MAP.get(status, status)
        self.client.set_terminated(run_id, status=mlflow_status)

    def reopen_run(self, run_id: str) -> None:
        """Mark a run RUNNING again (a resumed sweep keeps its parent run)."""
        self.client.update_run(run_id, status="RUNNING")

    # -- params, tags, metrics ---------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[tuple[str, float, int]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Metrics ``(key, value, step)``, params and tags in as few ``log_batch`` calls as the
        MLflow limits allow (each call is one store transaction: the cost that matters).

        Non-finite metric values are skipped (``history.csv`` keeps them). Returns how many
        metric values were sent. A fixed ``timestamp`` (ms) makes logging the same metrics
        again a no-op (MLflow drops exact duplicates): how a resume repairs a run idempotently.
        """
        from mlflow.entities import Metric, Param, RunTag

        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        m = [
            Metric(key=k, value=v, timestamp=ts, step=int(step))
            for k, value, step in metrics
            if (v := _clean_metric(value)) is not None
        ]
        # newest first: MLflow compares every value with its key's latest and overwrites that
        # row whenever the value is newer, i.e. on every value of an ascending curve; the order
        # it would end on is (step, timestamp, value), so the stored latest is the same
        m.sort(key=lambda x: (x.step, x.timestamp, x.value), reverse=True)
        p = [
            Param(str(k), redact_text("null" if v is None else str(v))[:_MAX_PARAM_LEN])
            for k, v in (params or {}).items()
        ]
        t = [RunTag(str(k), redact_text(str(v))[:_MAX_PARAM_LEN]) for k, v in (tags or {}).items()]
        sent = 0
        while m or p or t:
            self.client.log_batch(
                run_id,
                metrics=m[:_MAX_METRICS],
                params=p[:_MAX_PARAMS],
                tags=t[:_MAX_TAGS],
                synchronous=True,
            )
            sent += len(m[:_MAX_METRICS])
            m, p, t = m[_MAX_METRICS:], p[_MAX_PARAMS:], t[_MAX_TAGS:]
        return sent

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def log_metrics(
        self, run_id: str, rows: Iterable[tuple[str, float, int]], *, timestamp: int | None = None
    ) -> int:
        """Log ``(key, value, step)`` rows in batches; returns how many were sent."""
        return self.log_batch(run_id, metrics=rows, timestamp=timestamp)

    @staticmethod
    def history_rows(
        records: Sequence[Mapping[str, float]],
        *,
        telemetry: str = "all",
        points: int | None = None,
        best: Sequence[tuple[str, str]] = (),
    ) -> list[tuple[str, float, int]]:
        """Per-epoch records as ``(key, value, step=epoch)`` rows, in epoch order.

        ``telemetry="ends"`` keeps the per-layer telemetry metrics (dozens of keys per epoch) at
        the first and last epoch only: a sweep of hundreds of runs would otherwise store most of
        its metric rows as telemetry (mlflow#11927). ``points`` applies the module's curve
        policy (``None``: every value); ``best`` names ``(metric, "min" | "max")`` whose best
        epoch every thinned curve keeps. ``history.csv`` keeps every value.
        """
        last = len(records) - 1
        if points is None:
            keep_at: dict[str, set[int]] | None = None
        else:
            keep = {i for m, mode in best if (i := _best_index(records, m, mode)) is not None}
            present: dict[str, list[int]] = {}
            for i, rec in enumerate(records):
                for key, value in rec.items():
                    if key != "epoch" and math.isfinite(value):
                        present.setdefault(key, []).append(i)
            keep_at = {}
            for key, at in present.items():
                if key in DERIVED_SERIES:
                    keep_at[key] = {at[-1]}
                elif len({records[i][key] for i in at}) == 1:  # constant: a flat line
                    keep_at[key] = {at[0], at[-1]}
                else:
                    keep_at[key] = set(_thin(at, points, keep))
        rows = []
        for i, rec in enumerate(records):
            ends = i in (0, last)
            for key, value in rec.items():
                if key == "epoch":
                    continue
                if telemetry == "ends" and not ends and key.startswith(TELEMETRY_PREFIXES):
                    continue
                if keep_at is not None and i not in keep_at.get(key, ()):
                    continue
                rows.append((key, value, int(rec["epoch"])))
        return rows

    def curve_rows(
        self, records: Sequence[Mapping[str, float]], *, best: Sequence[tuple[str, str]] = ()
    ) -> list[tuple[str, float, int]]:
        """The rows of a run's curves under this tracker's :attr:`curve_points` (the module's
        policy; every value of every epoch when it is ``None``)."""
        if self.curve_points is None:
            return self.history_rows(records)
        return self.history_rows(records, telemetry="ends", points=self.curve_points, best=best)

    def curve_tags(self, records: Sequence[Mapping[str, float]]) -> dict[str, str]:
        """The ``curves`` tag: what :meth:`curve_rows` kept of ``records``, so the UI does not
        show a resolution it does not have."""
        if self.curve_points is None:
            return {"curves": "every epoch"}
        thinned = len(records) > self.curve_points
        return {
            "curves": (
                f"at most {self.curve_points} epochs per series of {len(records)}"
                if thinned
                else "every epoch"
            )
            + f"; constant series at the first and last epoch, {', '.join(DERIVED_SERIES)} "
            "final only, telemetry at the ends; history.csv has every epoch"
        }

    def log_history(
        self,
        run_id: str,
        records: Sequence[Mapping[str, float]],
        *,
        telemetry: str = "all",
        timestamp: int | None = None,
    ) -> int:
        """Per-epoch metrics with ``step=epoch`` (the ``epoch`` key itself is the step), every
        value (:meth:`curve_rows` applies the curve policy)."""
        rows = self.history_rows(records, telemetry=telemetry)
        return self.log_metrics(run_id, rows, timestamp=timestamp)

    # -- artifacts ------------------------------------------------------------------------------
    def _repo(self, run_id: str) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self._artifact_uris[run_id] = str(self.client.get_run(run_id).info.artifact_uri)
        # the tracking URI given, not MLflow's global one: a server's mlflow-artifacts:/ URIs
        # resolve against it (else every artifact went to the default store)
        return get_artifact_repository(uri, tracking_uri=self.tracking_uri)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_text(redact_text(text), encoding="utf-8")
            parent = str(Path(artifact_file).parent)
            self._repo(run_id).log_artifact(str(path), None if parent == "." else parent)

    def log_file(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self._repo(run_id).log_artifact(str(path), artifact_path)

    def log_dir(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self._repo(run_id).log_artifacts(str(path), artifact_path)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """A matplotlib figure as a PNG artifact (MLflow's own ``log_figure``: the artifact
        viewer shows it inline)."""
        self.client.log_figure(run_id, figure, artifact_file)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """A DataFrame as an MLflow table artifact (``.json``; the UI renders it as a table and
        ``mlflow.load_table`` reads it back)."""
        self.client.log_table(run_id, data=data, artifact_file=artifact_file)

    def log_dataset(self, run_id: str, splits: Any, *, context: str = "training") -> None:
        """Record the dataset as the run's input (name, digest, schema, profile): the run page
        and the runs table show it in their Datasets column."""
        from mlflow.data.numpy_dataset import from_numpy
        from mlflow.entities import Dataset, DatasetInput, InputTag

        meta = getattr(splits, "meta", {}) or {}
        train = splits.train
        ds = from_numpy(
            train.X.reshape(train.X.shape[0], -1),
            targets=train.y,
            name=str(getattr(splits, "name", "dataset")),
            digest=str(meta.get("fingerprint", ""))[:36] or None,
        )
        # the entity from the dataset's public dict (Dataset.to_dict), as mlflow.log_input does
        d = ds.to_dict()
        entity = Dataset(
            name=d["name"],
            digest=d["digest"],
            source_type=d["source_type"],
            source=d["source"],
            schema=d.get("schema"),
            profile=d.get("profile"),
        )
        self.client.log_inputs(
            run_id,
            datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])],
        )

    def log_model(
        self,
        run_id: str,
        network: Any,
        *,
        example: Any = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Log the network as a pyfunc model: the run artifact ``model/`` and an MLflow 3
        LoggedModel named ``model`` whose source run is ``run_id`` (linked as the run's output,
        so the run page lists it and it can be registered). Returns ``models:/<model_id>``.
        """
        from mlflow.entities import LoggedModelOutput

        from harness.pyfunc import save_pyfunc

        experiment_id = self._experiments.get(run_id)
        if experiment_id is None:
            experiment_id = self._experiments[run_id] = str(
                self.client.get_run(run_id).info.experiment_id
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model"
            save_pyfunc(network, path, example=example)
            self._repo(run_id).log_artifacts(str(path), "model")
            model = self.client.create_logged_model(
                experiment_id,
                name="model",
                source_run_id=run_id,
                model_type="nn-harness zoo network",
                params={str(k): str(v)[:_MAX_PARAM_LEN] for k, v in (params or {}).items()},
                tags={str(k): str(v) for k, v in (tags or {}).items()},
            )
            self.client.log_model_artifacts(model.model_id, str(path))
        self.client.finalize_logged_model(model.model_id, "READY")
        self.client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        return f"models:/{model.model_id}"

    # -- queries ----------------------------------------------------------------------------------
    def children(self, parent_run_id: str, experiment_id: str) -> list[Any]:
        """Every child run of a parent (all pages)."""
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs
