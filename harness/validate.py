"""The pre-flight: one validation of everything a command will use, before it writes anything.

Every command calls it before its first side effect (no MLflow run, Optuna study, ledger file or
deletion happens before it passes), and :meth:`harness.study.runner.SweepRunner.run` calls it too,
so library users get the same checks. What it checks, in order:

1. the stores (:mod:`harness.stores`), first because they are quick (a dead server is an error in
   seconds, before data is loaded): the MLflow store, the Optuna storage, the ledger directory,
   a dask scheduler the sweep will connect to;
2. the fully resolved run config (``resolve_run_config``: every field, every component's
   arguments against its signature and :data:`harness.runconfig.ARG_RANGES`, loss against task);
3. the data: present, loadable, finite (the loader counts NaN and inf values);
4. the network on that data: built for the data's shape, then one forward, backward and update
   step on a few training samples, on a throw-away copy (shapes through every layer, loss against
   the output, optimizer and schedule at work);
5. every metric the config names (objectives, pruner, ``train.target``, early stopping) against
   the metrics the trainer records for this data and loss (:func:`recorded_metrics`);
6. for a sweep, the same for each corner of the search space: every categorical choice and both
   ends of every numeric range (with derived keys computed), as
   :meth:`~harness.study.space.SearchSpace.check` probes them;
7. for a sweep, the stored state: resuming a study whose search space or base config changed is
   refused (unless ``fresh``), and so is a ledger left without its study.

Errors are :class:`~harness.config.ConfigError` (one line: where, field, value, what is allowed).
A passed check is remembered per process (keyed by the config), so the runner's own pre-flight
after the command's costs only the store probes.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import ConfigError

__all__ = [
    "PROBE_BATCH",
    "Checked",
    "blas_oversubscription",
    "check_claim",
    "check_claim_telemetry",
    "check_metric",
    "check_run",
    "check_study_state",
    "check_sweep",
    "check_sweep_options",
    "check_train",
    "recorded_metrics",
    "telemetry_readers",
]

#: training samples of the pre-flight's one update step (2 or more: batch norm needs a batch)
PROBE_BATCH = 4
#: metric names of a run's summary (``History.summary``) besides ``final/*`` and ``best/*``
_SUMMARY_KEYS = (
    "time/train_s",
    "time/wall_s",
    "throughput/samples_per_s",
    "steps",
    "epochs",
    "epochs_to_target",
    "time_to_target_s",
    "model/n_params",
)
#: per-epoch keys every training epoch records (``Trainer._train_epoch`` and ``_epoch_record``)
_EPOCH_KEYS = ("train/batch_loss", "time/epoch_train_s", "throughput/samples_per_s", "steps", "lr")
_PASSED: set[str] = set()


@dataclass(frozen=True)
class Checked:
    """What the pre-flight of one run config established."""

    config: dict[str, Any]
    metrics: frozenset[str]
    telemetry: bool = False

    def records(self, metric: str) -> bool:
        """Whether a run of this config records ``metric`` (per epoch or in its summary)."""
        if metric in self.metrics:
            return True
        if self.telemetry:
            from harness.tracking import TELEMETRY_PREFIXES

            return metric.startswith(TELEMETRY_PREFIXES)
        return False


# -- one run config -------------------------------------------------------------------------------
def recorded_metrics(splits: Any, network: Any) -> frozenset[str]:
    """Every metric name a :class:`~harness.train.Trainer` run records for this data and network.

    Per epoch: ``<split>/<metric>`` for what ``network.evaluate`` returns (``loss``, and
    ``accuracy`` for classification losses or class-like targets), ``mae`` and ``r2`` for
    regression losses, on ``train`` and ``val`` (and ``test`` at the end when the data has a test
    split), plus the training keys (:data:`_EPOCH_KEYS`). In the summary: ``final/`` and
    ``best/`` of each split metric, and :data:`_SUMMARY_KEYS`.
    """
    n = min(PROBE_BATCH, splits.val.n)
    with np.errstate(all="ignore"):
        keys = list(network.evaluate(splits.val.X[:n], splits.val.y[:n]))
    if getattr(network.loss, "task", "classification") != "classification":
        keys += ["mae", "r2"]
    parts = ["train", "val"] + (["test"] if splits.test is not None else [])
    split_metrics = [f"{p}/{k}" for p in parts for k in keys]
    per_epoch = set(split_metrics) | set(_EPOCH_KEYS)
    names = per_epoch | set(_SUMMARY_KEYS)
    names |= {
        f"{w}/{m}"
        for w in ("final", "best")
        for m in per_epoch
        if m.startswith(("train/", "val/", "test/"))
    }
    return frozenset(names)


def _blame_model(model: Mapping[str, Any], message: str) -> str:
    """The ``model.<field>`` an error message from building the network is about."""
    match = re.match(r"\s*(?:network|layer|initializer|activation) '(\w+)': (\w+)", message)
    if match:
        owner, field = match.groups()
        if field in model:
            return f"model.{field}"
        for key, value in model.items():
            name = value.get("name") if isinstance(value, Mapping) else value
            if name == owner:
                return f"model.{key}"
    return "model"


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def check_run(
    config: Mapping[str, Any], *, data_dir: str | Path | None = None, source: str | None = None
) -> Checked:
    """Resolve ``config``, load its data and train one step of its network on a copy.

    Raises ConfigError (with ``source``) for a bad field, missing or non-finite data, a network
    that does not fit the data or a loss that does not fit the network's output.
    """
    from harness.data import DataError
    from harness.experiment import _regularizers, _schedule_spec, load_data
    from harness.runconfig import data_error_to_config, resolve_run_config
    from models import OPTIMIZERS, build_network
    from models.base import NonFiniteError
    from models.registry import SpecError

    try:
        cfg = resolve_run_config(config)
        train = cfg["train"]
        try:
            splits = load_data(cfg["data"], dtype=train["dtype"], data_dir=data_dir)
        except DataError as exc:
            raise data_error_to_config(exc, cfg["data"]) from None
        model = dict(cfg["model"])
        try:
            network = build_network(
                model,
                input_shape=tuple(splits.feature_shape),
                n_outputs=int(splits.n_outputs),
                loss=train["loss"],
                regularizers=_regularizers(train),
                rng=np.random.default_rng(0),
                dtype=np.dtype(train["dtype"]),
            )
        except (SpecError, ValueError, TypeError) as exc:
            field = _blame_model(cfg["model"], str(exc))
            value = cfg["model"] if field == "model" else cfg["model"][field.split(".", 1)[1]]
            shape = tuple(splits.feature_shape)
            raise ConfigError(
                field, value, f"a network that builds for {splits.name!r} inputs {shape} ({exc})"
            ) from None
        try:
            optimizer = OPTIMIZERS.build(
                train["optimizer"], schedule=_schedule_spec(train, splits.train.n)
            )
        except (SpecError, ValueError, TypeError) as exc:
            raise ConfigError("train.optimizer", train["optimizer"], str(exc)) from None
        n = min(PROBE_BATCH, splits.train.n)
        xb, yb = splits.train.X[:n], splits.train.y[:n]
        _check_probabilities(network, xb, train["loss"], model)
        try:
            with np.errstate(all="ignore"):
                network.train_step(xb, yb, optimizer)
        except NonFiniteError:
            pass  # a run that diverges is a failed run with its reason, not a config error
        except ValueError as exc:
            text = str(exc)
            if text.startswith(("loss", "targets")):
                field, value = "train.loss", train["loss"]
            elif text.startswith(("optimizer", "schedule")):
                field, value = "train.optimizer", train["optimizer"]
            else:
                field, value = _blame_model(cfg["model"], text), cfg["model"]
            raise ConfigError(
                field, value, f"a setting that trains on {splits.name!r} ({text})"
            ) from None
        checked = Checked(
            config=cfg,
            metrics=recorded_metrics(splits, network),
            telemetry=bool(train["telemetry"]),
        )
        _check_run_metrics(checked)
        return checked
    except ConfigError as exc:
        raise exc.located(source) from None


def _check_probabilities(network: Any, x: Any, loss: Any, model: Mapping[str, Any]) -> None:
    """``nll`` takes probabilities: outputs outside [0, 1] make its log NaN at the first step
    (a diverged run with a puzzling reason, where the config is what is wrong)."""
    from models.losses import NegativeLogLikelihood

    if not isinstance(network.loss, NegativeLogLikelihood):
        return
    with np.errstate(all="ignore"):
        y = np.asarray(network.predict(x), dtype=np.float64)
    if not np.all(np.isfinite(y)) or (y.min() >= 0.0 and y.max() <= 1.0):
        return  # non-finite: the update step below reports it as a divergence
    last = "model.output_activation: softmax" if model.get("name") == "mlp" else "a softmax layer"
    raise ConfigError(
        "train.loss",
        loss,
        f"a loss that fits the network's outputs: nll takes probabilities in [0, 1], and this "
        f"network outputs values in [{y.min():.3g}, {y.max():.3g}] (put {last} last, or use "
        "cross_entropy, which takes scores)",
    )


def check_metric(path: str, metric: str, checked: Checked, *, what: str = "metric") -> None:
    """Raise ConfigError unless runs of ``checked`` record ``metric``."""
    if checked.records(metric):
        return
    import difflib

    known = sorted(m for m in checked.metrics if not m.startswith(("final/", "best/")))
    close = difflib.get_close_matches(metric, sorted(checked.metrics), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        path,
        metric,
        f"a {what} the trainer records{hint}: {', '.join(known)} "
        "(and final/<metric>, best/<metric>)",
    )


def _check_run_metrics(checked: Checked) -> None:
    train = checked.config["train"]
    if train["target"] is not None:
        check_metric("train.target.metric", train["target"]["metric"], checked)
    es = train["early_stopping"]
    if es is not None:
        check_metric("train.early_stopping.monitor", es.get("monitor", "val/loss"), checked)


# -- commands -------------------------------------------------------------------------------------
def check_train(
    config: Mapping[str, Any],
    *,
    tracking_uri: str | None = None,
    data_dir: str | Path | None = None,
    source: str | None = None,
) -> Checked:
    """The pre-flight of ``harness train``: the run config, its data and network, the store."""
    from harness.stores import check_tracking_uri

    check_tracking_uri(tracking_uri)  # first: a dead server is an error in seconds
    return check_run(config, data_dir=data_dir, source=source)


def check_sweep_options(
    *,
    jobs: Any = 1,
    n_trials: Any = None,
    timeout: Any = None,
    blas_threads: Any = None,
    source: str = "arguments",
) -> None:
    """The numbers a sweep is run with (``--jobs``, ``--n-trials``...): ConfigError when bad."""

    def whole(name: str, value: Any, low: int) -> None:
        if value is None and name != "jobs":
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(name, value, f"an integer >= {low}", source=source)

    whole("jobs", jobs, 1)
    whole("n_trials", n_trials, 1)
    whole("blas_threads", blas_threads, 1)
    if timeout is not None:
        ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
        if not ok or not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError("timeout", timeout, "a finite number of seconds > 0", source=source)


def _probe_configs(spec: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """(parameter key, resolved config) at every choice and range end of every parameter, the
    other parameters at their first choice or low end (what ``SearchSpace.check`` probes)."""
    space = spec.search
    first = {p.key: (p.labels[0] if p.type == "categorical" else p.low) for p in space}
    for p in space:
        ends = list(p.labels) if p.type == "categorical" else [p.low, p.high]
        for value in ends:
            values = dict(first)
            values[p.key] = int(value) if p.type == "int" else value
            for q in space:
                if q.type == "int":
                    values[q.key] = int(values[q.key])
            try:
                config = space.config_from_params(values, spec.base_config)
            except ConfigError:
                continue  # a condition that does not hold here: SearchSpace.check covered it
            yield p.key, config


def check_sweep(
    spec: Any,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    data_dir: str | Path | None = None,
    fresh: bool = False,
    ledger_dir: str | Path | None = None,
    stores: bool = True,
    backend: str = "loky",
) -> Checked:
    """The pre-flight of a sweep (``harness sweep``, ``SweepRunner.run``, claim protocols)."""
    from harness.stores import check_optuna_storage, check_tracking_uri, check_writable_dir
    from harness.study.ledger import default_ledger_dir
    from harness.study.storage import default_storage_url

    source = str(spec.source_path) if getattr(spec, "source_path", None) else None
    url = storage or default_storage_url(spec.name)
    ledger = Path(ledger_dir or default_ledger_dir(spec.name))
    if stores:  # first: a dead server or an unwritable path is an error in seconds
        check_tracking_uri(tracking_uri)
        check_optuna_storage(url)
        check_writable_dir(ledger, field="directory", source="study ledger")
        if backend == "dask":
            _check_scheduler_variable()
    key = _key(spec.fingerprint(), spec.raw.get("objective"), str(data_dir))
    try:
        checked = check_run(spec.base_config, data_dir=data_dir)
        for i, objective in enumerate(spec.objectives):
            check_metric(f"objective.{i}.metric", objective.metric, checked, what="metric")
        if spec.pruner_metric:
            check_metric("search.pruner.metric", spec.pruner_metric, checked)
        if key not in _PASSED:
            seen: set[str] = set()
            for param, config in _probe_configs(spec):
                probe_key = _key(config["data"], config["model"], config["train"])
                if probe_key in seen:
                    continue
                seen.add(probe_key)
                try:
                    probed = check_run(config, data_dir=data_dir)
                    for i, objective in enumerate(spec.objectives):
                        check_metric(f"objective.{i}.metric", objective.metric, probed)
                except ConfigError as exc:
                    p = spec.search[param]
                    raise ConfigError(
                        f"search.params.{param}",
                        p.to_yaml(),
                        f"values the run config accepts; at one end of it: {exc}",
                    ) from None
            _PASSED.add(key)
    except ConfigError as exc:
        raise exc.located(source) from None
    if stores and not fresh:
        check_study_state(spec, url, ledger, source=source)
    return checked


def _check_scheduler_variable() -> None:
    """The dask scheduler ``$DASK_SCHEDULER_ADDRESS`` names, when the sweep will connect to it
    (no dask client in this process yet: see ``harness.study.runner._backend_client``)."""
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        return
    import distributed

    from harness.stores import check_dask_scheduler

    try:
        distributed.get_client()
        return
    except ValueError:
        check_dask_scheduler(address, option="$DASK_SCHEDULER_ADDRESS")


# -- stored state ---------------------------------------------------------------------------------
def _stored_spec_hash(name: str, url: str) -> tuple[bool, str | None]:
    """(study exists, its spec hash) in storage ``url``, read without creating anything."""
    import optuna

    from harness.study.storage import JOURNAL_SCHEME, make_storage, storage_kind

    kind = storage_kind(url)
    if kind == "journal":
        path = Path(url[len(JOURNAL_SCHEME) :] if url.startswith(JOURNAL_SCHEME) else url)
        if not path.is_file() or path.stat().st_size == 0:
            return False, None
        storage = make_storage(url)
    elif kind == "rdb":
        import sqlalchemy

        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
            return False, None
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            if not sqlalchemy.inspect(engine).has_table("studies"):
                return False, None
        finally:
            engine.dispose()
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    else:
        storage = make_storage(url)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return False, None
    from harness.study.runner import _ATTR_SPEC  # the attribute the runner stores the hash in

    return True, storage.get_study_user_attrs(study_id).get(_ATTR_SPEC)


def check_study_state(
    spec: Any, storage: str, ledger_dir: str | Path, *, source: str | None = None
) -> None:
    """Refuse to resume a stored study whose trials were defined differently, and a ledger whose
    study is gone (its entries would be mixed with new trials)."""
    exists, stored = _stored_spec_hash(spec.name, storage)
    fix = (
        "Use --fresh to start over (deletes the stored trials and the ledger; MLflow runs stay), "
        "or --set name=<another name> to keep both."
    )
    if exists and stored is not None and stored != spec.fingerprint():
        raise ConfigError(
            "name",
            spec.name,
            f"a study name whose stored study has this search space and base config (the study in "
            f"{storage} was run from a different version of the file; resuming would mix two "
            "experiments)",
            source=source,
            hint=fix,
        )
    if not exists:
        ledger = Path(ledger_dir)
        n = len(list(ledger.glob("trial-*.json"))) if ledger.is_dir() else 0
        if n:
            raise ConfigError(
                "name",
                spec.name,
                f"a study name whose ledger is empty or belongs to a study in {storage} (the "
                f"ledger {ledger} holds {n} finished trial(s) of a study that storage does not "
                "have)",
                source=source,
                hint=fix,
            )


def blas_oversubscription(jobs: int, blas_threads: int | None) -> str | None:
    """A warning when ``jobs`` × BLAS threads exceed the cores (slower than fewer workers)."""
    cores = os.cpu_count() or 1
    threads = blas_threads or max(1, cores // jobs)
    if jobs * threads <= cores:
        return None
    return (
        f"{jobs} worker(s) x {threads} BLAS thread(s) = {jobs * threads} threads on {cores} "
        f"core(s): oversubscribed runs are often slower than --jobs {max(1, cores // threads)}"
    )


def telemetry_readers(claim: Any, protocol: str) -> list[tuple[str, list[Any]]]:
    """What reads per-layer telemetry in the runs of ``protocol`` (its own, or those of a pool or
    a reuse that reads them): ``(what, epochs)`` for each such measure and figure, epochs being
    integers and/or ``"last"``. Telemetry is what ``train.telemetry`` records
    (:data:`harness.tracking.TELEMETRY_PREFIXES`); ``dead/`` and the other recorders' keys come
    from ``train.record`` instead."""
    from harness.claims.engine import used_measures
    from harness.claims.figures import LayerProfile
    from harness.claims.measures import LayerRatio, LayerStat
    from harness.tracking import TELEMETRY_PREFIXES

    readers = [q.name for q in claim.protocols.values() if protocol in (q.name, q.runs_from)]
    readers += [q.name for q in claim.protocols.values() if set(q.pool) & set(readers)]
    used = used_measures(claim)
    out: list[tuple[str, list[Any]]] = []
    for name in dict.fromkeys(m for r in readers for m in used.get(r, [])):
        m = claim.measures[name]
        if isinstance(m, (LayerRatio, LayerStat)) and m.prefix.startswith(TELEMETRY_PREFIXES):
            out.append((f"measures.{name} ({m.prefix}<layer>{m.suffix})", [m.epoch]))
    for i, f in enumerate(claim.figures):
        if (
            isinstance(f.figure, LayerProfile)
            and f.figure.prefix.startswith(TELEMETRY_PREFIXES)
            and set(f.protocols) & set(readers)
        ):
            what = f"figures[{i}] (layer_profile of {f.figure.prefix}<layer>)"
            out.append((what, f.figure.epoch_list()))
    return out


def check_claim_telemetry(claim: Any, protocol: str) -> None:
    """ConfigError unless ``protocol``'s runs record the per-layer telemetry its readers need:
    ``train.telemetry: true`` for any epoch, ``init`` for epoch 0 only (before any training)."""
    from harness.runconfig import TELEMETRY_AT_INIT

    readers = telemetry_readers(claim, protocol)
    if not readers:
        return
    telemetry = claim.study_for(protocol).get("train", {}).get("telemetry", False)
    if telemetry is True:
        return
    if telemetry == TELEMETRY_AT_INIT:
        late = [(what, eps) for what, eps in readers if any(e != 0 for e in eps)]
        if not late:
            return
        what, eps = late[0]
        allowed = f"true ({what} reads epochs {eps}; {TELEMETRY_AT_INIT!r} records epoch 0 only)"
    else:
        what, eps = readers[0]
        allowed = f"true ({what} reads per-layer telemetry at epochs {eps})"
    src = claim.source_path or claim.id
    raise ConfigError("train.telemetry", telemetry, allowed, source=f"{src}#protocols.{protocol}")


def check_claim(
    claim_id: str,
    *,
    budget: str = "quick",
    tracking_uri: str | None = None,
    data_dir: str | Path | None = None,
    storage: str | None = None,
    fresh: bool = True,
    backend: str = "loky",
) -> None:
    """The pre-flight of ``harness reproduce <claim>``: the stores, then the claim file and every
    protocol's study it runs (config, data, network, metrics, search space)."""
    from harness.claims import load_claim
    from harness.claims.probes import check_probe_claim, is_probe_protocol
    from harness.reproduce import _study_spec
    from harness.stores import check_tracking_uri

    check_tracking_uri(tracking_uri)
    claim = load_claim(claim_id, budget=budget)
    check_probe_claim(claim)  # probe protocols: every grid point builds, checks read its outputs
    for protocol in claim.protocols_to_run():
        if is_probe_protocol(claim, protocol):
            continue
        check_claim_telemetry(claim, protocol)
        spec = _study_spec(claim, protocol, budget)
        check_sweep(
            spec,
            storage=storage,
            tracking_uri=tracking_uri,
            data_dir=data_dir,
            fresh=fresh,
            backend=backend,
        )
