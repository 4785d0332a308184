"""The sweep driver: an Optuna study run by joblib worker processes, tracked in MLflow.

Design (why each choice; the README explains it for users):

- **One driver, many workers.** The driver process asks Optuna for trials, creates their MLflow
  runs, sends each trial to a joblib worker (``loky`` processes by default; any joblib backend by
  name, e.g. ``dask``), and tells Optuna the result. Workers only train and report intermediate
  values for pruning. MLflow therefore has a single writer: no SQLite lock errors, and no run can
  land under the wrong parent, because every child run is created with the parent's id
  explicitly (``mlflow.parentRunId``), never through a fluent active run.
- **Storage.** The Optuna study lives in a journal file under ``mlruns/optuna/`` (or
  ``--storage``: PostgreSQL, Redis, another journal). Workers re-attach to their trial by id to
  report and prune, so pruning works across processes.
- **Reproducible designs.** For ``grid``, ``random`` and ``qmc`` samplers the whole design is
  generated up front from the sampler seed (in memory) and enqueued, one point per design index;
  trial seeds come from the study seed and the replicate index only. The trials and their results
  are then the same whatever ``--jobs`` is. Model-based samplers (``tpe``, ``cmaes``, ``nsga2``,
  ``gp``) depend on the order results arrive, so they are reproducible only with ``--jobs 1``.
- **Resume.** Re-running a sweep loads the study, marks trials left RUNNING by a dead driver (or
  in flight when a worker died or Ctrl-C was pressed) as failed-and-interrupted, sets their MLflow
  runs to KILLED, and re-enqueues them with their original parameters. Interrupted trials are never
  counted; completed ones are kept. The ledger (:mod:`harness.study.ledger`) keeps the per-epoch
  records of every finished trial.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shlex
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.seeding import derive_seed
from harness.study.ledger import Ledger, default_ledger_dir, outcome_entry
from harness.study.storage import default_storage_url, make_storage
from harness.study.worker import TrialOutcome, TrialTask, execute_trial
from harness.threads import BlasThreads

__all__ = [
    "SweepInterrupted",
    "SweepResult",
    "SweepRunner",
    "replicate_seed",
    "reset_study",
    "run_sweep",
]

DESIGN_SAMPLERS = frozenset({"grid", "random", "qmc"})
_ATTR_PARENT = "harness.mlflow_parent_run_id"
_ATTR_SPEC = "harness.spec_hash"
_ATTR_RUN = "mlflow_run_id"
_ATTR_DESIGN = "design_index"
_ATTR_INTERRUPTED = "interrupted"
_ATTR_RETRY = "retry_of"
#: Optuna state -> MLflow status of the trial's run
MLFLOW_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


class SweepInterrupted(Exception):
    """The sweep stopped early (Ctrl-C or a worker died); rerun the command to resume."""


def replicate_seed(study_seed: int, replicate: int) -> int:
    """The run seed of replicate ``replicate``: shared by every configuration of the study.

    Common seeds across configurations pair the comparisons (same init and batch order for every
    arm of a claim), and do not depend on the trial number, so a resumed trial keeps its seeds.
    """
    return derive_seed(study_seed, "replicate", replicate)


@dataclass
class SweepResult:
    """What a sweep produced (all sessions of a resumed study, from the ledger)."""

    study_name: str
    experiment_id: str
    parent_run_id: str
    storage_url: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    n_complete: int = 0
    n_pruned: int = 0
    n_failed: int = 0
    best_number: int | None = None
    best_values: list[float] | None = None
    best_params: dict[str, Any] | None = None
    best_run_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    summary_text: str = ""
    #: where the driver's time went (seconds): before the first trial, the trial loop, the
    #: wrap-up (summary, plots), and the driver's own per-trial work inside the loop
    #: (ask, MLflow runs, tell, ledger) summed over this session's trials
    timings: dict[str, float] = field(default_factory=dict)


class _Progress:
    """A tqdm bar with trials done/total, best value so far and an ETA (or nothing)."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str, metric: str) -> None:
        self.metric = metric
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="trial", smoothing=0.1)

    def update(self, best: float | None, state: str) -> None:
        if self.bar is None:
            return
        post = {"last": state}
        if best is not None:
            post["best"] = f"{self.metric}={best:.4g}"
        # one refresh per trial: the postfix without a redraw, then the count with one
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SweepRunner:
    """Runs one study spec. See :func:`run_sweep` for the parameters."""

    def __init__(
        self,
        spec: Any,
        *,
        jobs: int = 1,
        backend: str = "loky",
        storage: str | None = None,
        tracking_uri: str | None = None,
        data_dir: str | None = None,
        progress: bool = True,
        command: str | None = None,
        parent_run_id: str | None = None,
        experiment: str | None = None,
        blas_threads: int | None = None,
        log_models: str = "best",
        tags: Mapping[str, Any] | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        ledger_dir: str | Path | None = None,
        plots: bool = True,
        system_metrics: bool = False,
    ) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        if log_models not in ("best", "all", "none"):
            raise ValueError(f"log_models must be best, all or none, got {log_models!r}")
        self.spec = spec
        self.jobs = jobs
        self.backend = backend
        self.storage_url = storage or default_storage_url(spec.name)
        self.tracking_uri = tracking_uri
        self.data_dir = data_dir
        self.progress = progress
        self.command = command or _default_command(spec)
        self.outer_parent = parent_run_id
        self.experiment_name = experiment or spec.name
        # per trial: 1 BLAS thread for small GEMMs, else cores // jobs (workers x threads <=
        # cores: oversubscription was 2-4x slower than sequential here); see harness.threads
        self.blas = BlasThreads(jobs=jobs, override=blas_threads, data_dir=data_dir)
        self.blas_threads = self.blas.cap  # the most a trial gets (the parent run's tag)
        self.log_models = log_models
        self.extra_tags = dict(tags or {})
        self.n_trials = n_trials if n_trials is not None else spec.n_trials
        self.timeout = timeout if timeout is not None else spec.timeout
        self.ledger = Ledger(ledger_dir or default_ledger_dir(spec.name))
        self.plots = plots
        self.system_metrics = system_metrics
        self._lock = threading.RLock()
        self._in_flight: dict[int, dict[str, Any]] = {}
        self._best_model: tuple[float, int, dict[str, Any], bytes] | None = None

    # -- set-up ----------------------------------------------------------------------------------
    @property
    def sampler_name(self) -> str:
        from models.registry import parse_spec

        return parse_spec(self.spec.sampler_spec, kind="sampler")[0]

    @property
    def design_based(self) -> bool:
        return self.sampler_name in DESIGN_SAMPLERS

    def _target(self) -> int:
        if self.n_trials is not None:
            return int(self.n_trials)
        if self.sampler_name == "grid":
            size = self.spec.search.grid_size()
            if size:
                return int(size)
        if self.timeout is None:
            raise ValueError(f"study {self.spec.name!r}: set search.n_trials or search.timeout")
        return 10**9  # bounded by the timeout

    def _preflight(self) -> None:
        """Validate everything before the first write: config, data, network, metrics, search
        space, stores and the stored study (:mod:`harness.validate`)."""
        from harness.validate import check_sweep, check_sweep_options

        check_sweep_options(jobs=self.jobs, n_trials=self.n_trials, timeout=self.timeout)
        check_sweep(
            self.spec,
            storage=self.storage_url,
            tracking_uri=self.tracking_uri,
            data_dir=self.data_dir,
            ledger_dir=self.ledger.directory,
            backend=self.backend,
        )

    def _open_study(self) -> Any:
        import optuna

        from harness.terminal import optuna_verbosity

        optuna.logging.set_verbosity(optuna_verbosity())
        storage = make_storage(self.storage_url)
        sampler = (
            optuna.samplers.RandomSampler(seed=self.spec.seed)
            if self.design_based
            else self.spec.make_sampler()
        )
        study = optuna.create_study(
            study_name=self.spec.name,
            storage=storage,
            sampler=sampler,
            pruner=self.spec.make_pruner(),
            directions=list(self.spec.directions),
            load_if_exists=True,
        )
        spec_hash = self.spec.fingerprint()
        old = study.user_attrs.get(_ATTR_SPEC)
        if old is None:
            study.set_user_attr(_ATTR_SPEC, spec_hash)
        elif old != spec_hash:
            raise ValueError(
                f"study {self.spec.name!r} already exists in {self.storage_url} with a different "
                "search space or base config; resuming it would mix two experiments. Use --fresh "
                "to start over, or give the study another name (--set name=...)"
            )
        return study

    # -- MLflow ----------------------------------------------------------------------------------
    def _open_parent(self, study: Any) -> str:
        from harness.tracking import provenance_tags

        tracker = self.tracker
        parent = study.user_attrs.get(_ATTR_PARENT)
        if parent:
            try:
                tracker.reopen_run(parent)
                return str(parent)
            except Exception:
                parent = None  # the MLflow store was cleaned: start a new parent run
        tags = provenance_tags(self.command)
        tags.update(
            {
                "harness.kind": "study",
                "study.name": self.spec.name,
                "study.storage": self.storage_url,
                "study.sampler": self.sampler_name,
                "status": "running",
            }
        )
        tags.update(self.extra_tags)
        if self.spec.description:
            tags["mlflow.note.content"] = self.spec.description
        run_id = tracker.start_run(
            self.experiment_id,
            run_name=self.spec.name,
            parent_run_id=self.outer_parent,
            tags=tags,
        )
        params: dict[str, Any] = {
            "study.name": self.spec.name,
            "study.seed": self.spec.seed,
            "study.sampler": self.sampler_name,
            "study.pruner": _name_of(self.spec.pruner_spec),
            "study.directions": ",".join(self.spec.directions),
            "study.objectives": ",".join(o["metric"] for o in self.spec.objectives),
            "study.n_trials": self.n_trials,
            "study.timeout": self.timeout,
            "study.replicates": self.spec.replicates,
        }
        params.update({f"role.{k}": v for k, v in self.spec.roles().items()})
        tracker.log_params(run_id, params)
        tracker.log_text(run_id, self.spec.to_yaml(), "study.yaml")
        study.set_user_attr(_ATTR_PARENT, run_id)
        return run_id

    # -- resume ------------------------------------------------------------------------------------
    def _reconcile(self, study: Any) -> int:
        """Mark orphaned trials interrupted, kill their MLflow runs, re-enqueue them.

        Returns how many trials were re-enqueued.
        """
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get(_ATTR_RETRY) for t in trials if _ATTR_RETRY in t.user_attrs}
        requeued = 0
        for t in trials:
            if t.state == TrialState.RUNNING:
                _live_trial(study, t).set_user_attr(_ATTR_INTERRUPTED, True)
                study.tell(t.number, state=TrialState.FAIL)
                self._kill_run(t.user_attrs.get(_ATTR_RUN), "driver stopped while it ran")
                interrupted = True
            else:
                interrupted = t.state == TrialState.FAIL and t.user_attrs.get(_ATTR_INTERRUPTED)
            if interrupted and t.number not in retried:
                params = self._original_params(t)
                if params is None:
                    continue  # asked but never given parameters: nothing to re-run
                attrs = {_ATTR_RETRY: t.number}
                if _ATTR_DESIGN in t.user_attrs:
                    attrs[_ATTR_DESIGN] = t.user_attrs[_ATTR_DESIGN]
                study.enqueue_trial(params, user_attrs=attrs)
                requeued += 1
        # runs left RUNNING under the parent without a live trial (driver died mid-creation)
        for run in self.tracker.children(self.parent_run_id, self.experiment_id):
            if run.info.status == "RUNNING":
                self._kill_run(run.info.run_id, "driver stopped while it ran")
        return requeued

    def _original_params(self, trial: Any) -> dict[str, Any] | None:
        """The parameters an interrupted trial was given (or was about to be given)."""
        if trial.params:
            return dict(trial.params)
        # killed between ask() and the first suggest: the enqueued values are still there
        fixed = trial.system_attrs.get("fixed_params")
        if fixed:
            return dict(fixed)
        index = trial.user_attrs.get(_ATTR_DESIGN)
        if index is not None:
            return self._design(int(index) + 1)[int(index)]
        return None

    def _kill_run(self, run_id: str | None, reason: str) -> None:
        if not run_id:
            return
        try:
            self.tracker.set_tags(run_id, {"status": "interrupted", "reason": reason})
            self.tracker.end_run(run_id, "interrupted")
        except Exception:  # the run may be gone (store cleaned); nothing to mark then
            pass

    def _finished_trials(self, study: Any) -> list[Any]:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return [
            t
            for t in study.get_trials(deepcopy=False, states=done)
            if not t.user_attrs.get(_ATTR_INTERRUPTED)
        ]

    # -- design ------------------------------------------------------------------------------------
    def _design(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` points of the sampler's design (Optuna params), seed-deterministic."""
        import optuna

        study = optuna.create_study(
            sampler=self.spec.make_sampler(), directions=list(self.spec.directions)
        )
        design: list[dict[str, Any]] = []
        for _ in range(n):
            trial = study.ask()
            self.spec.search.suggest(trial, self.spec.base_config)
            design.append(dict(trial.params))
            study.tell(trial, [0.0] * len(self.spec.directions))
        return design

    def _enqueue_design(self, study: Any, target: int) -> None:
        from optuna.trial import TrialState

        if target >= 10**9:
            target = 10_000  # timeout-bounded: a long design, asked until time runs out
        trials = study.get_trials(deepcopy=False)
        present = set()
        for t in trials:
            idx = t.user_attrs.get(_ATTR_DESIGN)
            if idx is None:
                continue
            live = t.state in (TrialState.WAITING, TrialState.RUNNING)
            if live or not t.user_attrs.get(_ATTR_INTERRUPTED):
                present.add(int(idx))
        # interrupted points are re-enqueued by _reconcile (keeping retry_of)
        for t in trials:
            if t.user_attrs.get(_ATTR_INTERRUPTED) and _ATTR_DESIGN in t.user_attrs:
                present.add(int(t.user_attrs[_ATTR_DESIGN]))
        missing = [i for i in range(target) if i not in present]
        if not missing:
            return
        design = self._design(max(missing) + 1)
        for i in missing:
            study.enqueue_trial(design[i], user_attrs={_ATTR_DESIGN: i})

    # -- trials ------------------------------------------------------------------------------------
    def _replicate_configs(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
        out = []
        for r in range(int(self.spec.replicates)):
            cfg = copy.deepcopy(dict(config))
            cfg["seed"] = replicate_seed(int(self.spec.seed), r)
            out.append(cfg)
        return tuple(out)

    def _start_trial(self, study: Any) -> TrialTask:
        """Ask a trial, resolve its config, open its MLflow run (called under the lock)."""
        from harness.runconfig import resolve_run_config
        from harness.runlog import open_run

        trial = study.ask()
        config, params = self.spec.search.suggest(trial, self.spec.base_config)
        config = resolve_run_config(config)
        configs = self._replicate_configs(config)
        extra = {"trial.number": trial.number, "trial.replicates": len(configs)}
        extra.update({f"role.{k}": v for k, v in self.spec.roles().items()})
        design_index = trial.user_attrs.get(_ATTR_DESIGN)
        tags = {
            "optuna.study": self.spec.name,
            "optuna.trial_number": trial.number,
            "harness.kind": "trial",
        }
        if design_index is not None:
            tags["design_index"] = design_index
        if _ATTR_RETRY in trial.user_attrs:
            tags["retry_of"] = trial.user_attrs[_ATTR_RETRY]
        blas = self.blas.choose(configs[0])
        provenance = {**self._provenance, **blas.tags()}
        run_id = open_run(
            self.tracker,
            self.experiment_id,
            configs[0],
            run_name=f"trial-{trial.number:04d}",
            parent_run_id=self.parent_run_id,
            command=_trial_command(self.spec, params, configs[0]["seed"]),
            extra_params=extra,
            tags=tags,
            provenance=provenance,
        )
        trial.set_user_attr(_ATTR_RUN, run_id)
        self._in_flight[trial.number] = {
            "trial": trial,
            "run_id": run_id,
            "params": params,
            "config": configs[0],
            "design_index": design_index,
            "started": time.time(),
            "provenance": provenance,
        }
        return TrialTask(
            study_name=self.spec.name,
            storage_url=self.storage_url,
            trial_id=trial._trial_id,
            number=trial.number,
            configs=configs,
            prune_metric=self.spec.pruner_metric,
            pruner_spec=self.spec.pruner_spec,
            data_dir=self.data_dir,
            blas_threads=blas.threads,
            keep_weights=self.log_models != "none",
            system_metrics=self.system_metrics,
        )

    def _objective_values(self, outcome: TrialOutcome) -> list[float] | None:
        from harness.study.spec import objective_value

        values = []
        for objective in self.spec.objectives:
            per_seed = [
                objective_value(rep.records, objective, summary=rep.summary)
                for rep in outcome.replicates
            ]
            finite = [v for v in per_seed if math.isfinite(v)]
            if len(finite) != len(per_seed) or not finite:
                return None
            values.append(sum(finite) / len(finite))
        return values

    def _finish_trial(self, study: Any, outcome: TrialOutcome) -> tuple[str, list[float] | None]:
        """Tell Optuna, log the trial's MLflow run(s), write the ledger (called under the lock)."""
        from optuna.trial import TrialState

        info = self._in_flight.pop(outcome.number)
        values = self._objective_values(outcome) if outcome.state == "complete" else None
        state = outcome.state
        reason = outcome.reason
        if state == "complete" and values is None:
            state, reason = "failed", f"objective is not finite ({reason})"
        if state == "complete":
            study.tell(outcome.number, values)
        elif state == "pruned":
            study.tell(outcome.number, state=TrialState.PRUNED)
        else:
            info["trial"].set_user_attr("fail_reason", reason[:2000])
            study.tell(outcome.number, state=TrialState.FAIL)
        self._log_trial(info, outcome, state, reason, values)
        self.ledger.write(
            outcome.number,
            outcome_entry(
                outcome,
                state=state,
                reason=reason,
                values=values,
                params=dict(info["params"]),
                config=info["config"],
                design_index=info["design_index"],
                run_id=info["run_id"],
            ),
        )
        return state, values

    def _log_trial(
        self,
        info: Mapping[str, Any],
        outcome: TrialOutcome,
        state: str,
        reason: str,
        values: list[float] | None,
    ) -> None:
        from harness.runlog import history_csv, open_run

        tracker, run_id = self.tracker, info["run_id"]
        records = outcome.mean_records()
        final = [("trial/wall_time_s", outcome.wall_time_s, 0)]
        if values is not None:
            for objective, v in zip(self.spec.objectives, values):
                final.append((f"objective/{objective['metric']}", v, 0))
        summaries = [rep.summary for rep in outcome.replicates]
        for key in ("throughput/samples_per_s", "time/train_s", "epochs_to_target"):
            vals = [s[key] for s in summaries if key in s and math.isfinite(s[key])]
            if vals:
                final.append((key, sum(vals) / len(vals), 0))
        tags: dict[str, Any] = {
            "status": state if state != "complete" else _summary_status(outcome),
            "reason": reason[:5000],
            "optuna.state": state.upper(),
        }
        if outcome.pruned_at_epoch is not None:
            tags["pruned_at_epoch"] = outcome.pruned_at_epoch
        # one store transaction for every metric and tag of the trial
        tracker.log_batch(
            run_id,
            metrics=tracker.history_rows(records, telemetry="ends") + final + outcome.system,
            tags=tags,
        )
        tracker.log_text(run_id, history_csv(records), "history.csv")
        if len(outcome.replicates) > 1:
            for rep in outcome.replicates:
                cfg = dict(info["config"])
                cfg["seed"] = rep.seed
                child = open_run(
                    tracker,
                    self.experiment_id,
                    cfg,
                    run_name=f"trial-{outcome.number:04d}/seed-{rep.replicate}",
                    parent_run_id=run_id,
                    command=_trial_command(self.spec, info["params"], rep.seed),
                    extra_params={"trial.number": outcome.number, "replicate": rep.replicate},
                    tags={
                        "harness.kind": "replicate",
                        "optuna.trial_number": outcome.number,
                        "status": rep.status,
                        "reason": rep.reason[:5000],
                    },
                    provenance=info.get("provenance", self._provenance),
                    config_artifact=False,  # the params hold it; the trial run has the file
                )
                tracker.log_history(child, rep.records, telemetry="ends")
                tracker.end_run(child, rep.status)
        rep0 = outcome.replicates[0] if outcome.replicates else None
        if rep0 is not None and rep0.model_npz is not None and values is not None:
            if self.log_models == "all":
                self._log_model(run_id, rep0.network_config, rep0.model_npz)
            elif self.log_models == "best" and len(values) == 1:
                sign = 1.0 if self.spec.directions[0] == "maximize" else -1.0
                score = sign * values[0]
                if self._best_model is None or score > self._best_model[0]:
                    self._best_model = (
                        score,
                        outcome.number,
                        rep0.network_config or {},
                        rep0.model_npz,
                    )
        tracker.end_run(run_id, MLFLOW_STATUS[state])

    def _log_model(self, run_id: str, network_config: Mapping[str, Any] | None, npz: bytes) -> None:
        import numpy as np

        from models.network import Sequential

        net = Sequential.from_config(dict(network_config or {}), rng=np.random.default_rng(0))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.npz"
            path.write_bytes(npz)
            net.load_weights(path)
        self.tracker.log_model(run_id, net)

    def _interrupt_in_flight(self, study: Any, why: str) -> None:
        from optuna.trial import TrialState

        for number, info in list(self._in_flight.items()):
            trial = info["trial"]
            try:
                trial.set_user_attr(_ATTR_INTERRUPTED, True)
                study.tell(number, state=TrialState.FAIL)
            except Exception:  # already finished in storage: nothing to undo
                pass
            self._kill_run(info["run_id"], why)
            self._in_flight.pop(number, None)

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> SweepResult:
        import joblib
        from joblib import Parallel, delayed

        from harness.tracking import Tracker, provenance_tags

        t_start = time.perf_counter()
        self._preflight()
        self.tracker = Tracker(self.tracking_uri)
        self.experiment_id = self.tracker.experiment(
            self.experiment_name,
            description=self.spec.description or f"Optuna study {self.spec.name}",
            # a claim's experiment holds several studies: the claim tags it, not each study
            tags=None if self.outer_parent else {"harness.study": self.spec.name},
        )
        self._provenance = provenance_tags(self.command, blas_threads=self.blas_threads)
        study = self._open_study()
        self.parent_run_id = self._open_parent(study)
        self._reconcile(study)
        target = self._target()
        if self.design_based:
            self._enqueue_design(study, target)
        already = len(self._finished_trials(study))
        deadline = time.monotonic() + self.timeout if self.timeout else None
        asked = 0
        stop = threading.Event()
        bar = _Progress(
            min(target, 10**6),
            already,
            self.progress,
            self.spec.name,
            self.spec.objectives[0]["metric"],
        )
        best: list[float | None] = [self._current_best(study)]
        driver_s = 0.0

        def tasks() -> Iterator[Any]:
            nonlocal asked, driver_s
            while not stop.is_set() and already + asked < target:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                t0 = time.perf_counter()
                with self._lock:
                    task = self._start_trial(study)
                driver_s += time.perf_counter() - t0
                asked += 1
                yield delayed(execute_trial)(task)

        status = "completed"
        t_loop = time.perf_counter()
        self._timings = {"setup_s": t_loop - t_start}
        # no more workers than trials left (--jobs 1000 for 4 trials starts 4 processes)
        workers = max(1, min(self.jobs, target - already))
        try:
            with (
                _backend_client(self.backend, workers),
                joblib.parallel_config(backend=self.backend, n_jobs=workers),
            ):
                results = Parallel(
                    return_as="generator_unordered", pre_dispatch="n_jobs", batch_size=1
                )(tasks())
                for outcome in results:
                    t0 = time.perf_counter()
                    with self._lock:
                        state, _ = self._finish_trial(study, outcome)
                    driver_s += time.perf_counter() - t0
                    best[0] = self._current_best(study)
                    bar.update(best[0], state)
        except KeyboardInterrupt:
            stop.set()
            status = "interrupted"
            with self._lock:
                self._interrupt_in_flight(study, "interrupted by the user (Ctrl-C)")
        except Exception as exc:
            stop.set()
            status = "interrupted"
            with self._lock:
                self._interrupt_in_flight(study, f"{type(exc).__name__}: {exc}")
            self._close_parent(study, status, t_start)
            bar.close()
            raise SweepInterrupted(
                f"sweep {self.spec.name!r} stopped: {type(exc).__name__}: {exc}. "
                "Completed trials are kept; run the same command again to resume."
            ) from exc
        finally:
            bar.close()
            self._timings["trials_s"] = time.perf_counter() - t_loop
            self._timings["driver_s"] = driver_s
        result = self._close_parent(study, status, t_start)
        if status == "interrupted":
            raise SweepInterrupted(
                f"sweep {self.spec.name!r} interrupted: {result.n_complete} complete trials kept; "
                "run the same command again to resume"
            )
        return result

    def _current_best(self, study: Any) -> float | None:
        if len(self.spec.directions) != 1:
            return None
        try:
            return float(study.best_value)
        except ValueError:
            return None

    # -- wrap-up -------------------------------------------------------------------------------------
    def _close_parent(self, study: Any, status: str, t_start: float) -> SweepResult:
        from harness.study.summary import summarize_study

        t_wrap = time.perf_counter()
        result = SweepResult(
            study_name=self.spec.name,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            storage_url=self.storage_url,
        )
        result.entries = list(self.ledger.entries())
        summarize_study(self, study, result, plots=self.plots)
        if self._best_model is not None and result.best_run_id:
            _, number, net_cfg, npz = self._best_model
            if number == result.best_number:
                try:
                    self._log_model(result.best_run_id, net_cfg, npz)
                except Exception as exc:  # the sweep's results stand without the model file
                    result.warnings.append(f"could not log the best model: {exc}")
        result.wall_time_s = time.perf_counter() - t_start
        result.timings = dict(getattr(self, "_timings", {}))
        result.timings["wrapup_s"] = time.perf_counter() - t_wrap
        self.tracker.set_tags(self.parent_run_id, {"status": status})
        self.tracker.end_run(self.parent_run_id, "completed" if status == "completed" else status)
        return result


@contextlib.contextmanager
def _backend_client(backend: str, jobs: int) -> Iterator[None]:
    """What a joblib backend needs before it can run: for ``dask``, a client.

    An existing client (the user's session) is used as is; else ``$DASK_SCHEDULER_ADDRESS``
    (``--scheduler``) names a running scheduler to connect to; else a local cluster of ``jobs``
    single-threaded worker processes is started for the sweep and closed after it.
    """
    if backend != "dask":
        yield
        return
    import distributed

    try:
        distributed.get_client()
        yield
        return
    except ValueError:
        pass
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        client = distributed.Client(address)
        cluster = None
    else:
        cluster = distributed.LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _live_trial(study: Any, frozen: Any) -> Any:
    """A writable ``optuna.trial.Trial`` for a stored RUNNING trial (one a dead driver left):
    Optuna's public handle for setting its user attributes, as a worker re-attaches by id."""
    import optuna

    return optuna.trial.Trial(study, frozen._trial_id)


def _summary_status(outcome: TrialOutcome) -> str:
    statuses = sorted({rep.status for rep in outcome.replicates})
    return statuses[0] if len(statuses) == 1 else ",".join(statuses)


def _name_of(spec: Any) -> str:
    if spec is None:
        return "none"
    if isinstance(spec, str):
        return spec
    return str(spec.get("name", "none"))


def _default_command(spec: Any) -> str:
    path = getattr(spec, "source_path", None) or f"studies/{spec.name}.yaml"
    return shlex.join(["harness", "sweep", str(path)])


def _trial_command(spec: Any, params: Mapping[str, Any], seed: int) -> str:
    """``harness train <study> --set k=v ... --set seed=S``: reruns exactly this trial's seed."""
    import json

    path = getattr(spec, "source_path", None) or f"studies/{spec.name}.yaml"
    args = ["harness", "train", str(path)]
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        args += ["--set", f"{key}={text}"]
    args += ["--set", f"seed={seed}"]
    return shlex.join(args)


def run_sweep(spec: Any, **kwargs: Any) -> SweepResult:
    """Run (or resume) the sweep of a study spec.

    Parameters
    ----------
    spec : harness.study.spec.StudySpec
        The validated study (``load_study``).
    jobs : int
        Worker processes (``--jobs``); 1 runs trials in the driver process.
    backend : str
        Any joblib backend name (``loky`` default, ``multiprocessing``, ``dask``...).
    storage : str, optional
        Optuna storage URL (default: journal file under ``mlruns/optuna/``).
    tracking_uri : str, optional
        MLflow store (default: ``sqlite:///mlruns/mlflow.db``).
    parent_run_id : str, optional
        Nest the sweep's parent run under this run (claim reports do).
    log_models : {"best", "all", "none"}
        Which trials get their trained model logged as a pyfunc model.
    n_trials, timeout : optional
        Override the study file's budget.
    system_metrics : bool
        Sample CPU and memory in each trial's worker (``system/...`` metrics of the trial run).
    """
    return SweepRunner(spec, **kwargs).run()


def reset_study(
    name: str, storage: str | None = None, ledger_dir: str | Path | None = None
) -> None:
    """Forget a study (``--fresh``): delete it from its Optuna storage and clear its ledger.

    Its MLflow runs stay: they are the record of what was run.
    """
    import optuna

    url = storage or default_storage_url(name)
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=make_storage(url))
    Ledger(ledger_dir or default_ledger_dir(name)).clear()
