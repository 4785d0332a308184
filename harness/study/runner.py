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
- **Resume.** Re-running a sweep repairs what a dead driver left, whatever moment it died: each
  finished trial is recorded in the order durable outcome -> Optuna tell -> MLflow run(s) ->
  ledger entry (:mod:`harness.study.ledger`), so a resume completes the record of every trial
  that reached the driver from its durable outcome (idempotently), and marks the others
  (RUNNING without one) failed-and-interrupted, KILLs their runs and re-enqueues them with their
  original parameters. Interrupted trials are never counted. The parent run's id is recorded
  through a token before use, so an orphaned parent is adopted, not duplicated.
- **Several drivers** on one study cooperate (:mod:`harness.study.lease`): trials are owned by
  the driver that asked them, drivers beat a lease, only dead drivers' trials are recovered, and
  the study's set-up happens under a storage lock, once at a time.
- **Workers** (:mod:`harness.study.pool`): a trial is asked only when a worker is free; a worker
  that dies fails only its trials, which are retried (bounded); workers exit with their driver.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shlex
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.runcache import TAG_KEY, TAG_SOURCE, RunCache, default_cache_dir, run_key
from harness.seeding import derive_seed
from harness.study.lease import ATTR_OWNER, DriverLease, driver_alive, storage_lock
from harness.study.ledger import Ledger, default_ledger_dir, outcome_entry
from harness.study.pool import TrialPool, WorkerDied
from harness.study.storage import default_storage_url, make_storage
from harness.study.worker import ReplicateOutcome, TrialOutcome, TrialTask
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
#: the ``train.stack_note`` of a trial trained unstacked because its runs feed a timing measure
TIMED_TRIAL_NOTE = (
    "its runs feed a timing measure (another protocol reuses them): trained unstacked"
)
_ATTR_PARENT = "harness.mlflow_parent_run_id"
_ATTR_PARENT_TOKEN = "harness.parent_token"
_ATTR_SPEC = "harness.spec_hash"
_ATTR_RUN = "mlflow_run_id"
_ATTR_DESIGN = "design_index"
_ATTR_INTERRUPTED = "interrupted"
_ATTR_RETRY = "retry_of"
#: Optuna state -> MLflow status of the trial's run
MLFLOW_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
#: times one design point is re-run after its worker died (then it is a failed trial)
MAX_WORKER_RETRIES = 3
#: times the worker pool is replaced in one session after workers died (then the sweep stops)
MAX_POOL_RESTARTS = 10


class SweepInterrupted(Exception):
    """The sweep stopped early (Ctrl-C or a worker died); rerun the command to resume."""


class TrackingUnavailable(RuntimeError):
    """The tracking store stopped answering for longer than the sweep waits."""


#: seconds a sweep waits for a tracking server that stopped answering
TRACKING_WAIT_S = 300.0
_UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Connection aborted",
    "Connection reset",
    "RemoteDisconnected",
    "Read timed out",
    "NewConnectionError",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
    "too many 50",
)


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says the tracking server cannot be reached right now."""
    seen = 0
    while exc is not None and seen < 5:
        text = f"{type(exc).__name__}: {exc}"
        if any(s in text for s in _UNREACHABLE):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return False


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
        stack: bool | None = None,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        timed_trials: Callable[[Mapping[str, Any]], bool] | None = None,
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
        self.stack, self.stack_why = self._stacking(stack)
        #: ``timed_trials(config)``: whether a trial of this resolved config must train
        #: unstacked (its runs feed a timing measure), when only some of a study's trials do
        self.timed_trials = timed_trials
        # finished runs reused (harness.runcache); a pruned study's runs depend on the others
        if cache_dir is None:
            cache_dir = default_cache_dir(ledger_dir=ledger_dir) if ledger_dir else None
        self.cache = RunCache(cache_dir) if cache and spec.pruner_metric is None else None
        self._lock = threading.RLock()
        self._in_flight: dict[int, dict[str, Any]] = {}
        self._best_model: tuple[float, int, dict[str, Any], bytes] | None = None
        # this driver's lease on the study (set when run() opens it)
        self.lease: DriverLease = None  # type: ignore[assignment]
        # the Optuna storage object run() builds, the study's id in it and the trial ids by
        # number: read through public BaseStorage calls, never the study's private handles
        self.storage: Any = None
        self.study_id = -1
        self._trial_ids: dict[int, int] = {}
        #: trials whose record a resume completed, and why some could not be
        self.repaired: list[int] = []
        self.repair_warnings: list[str] = []
        self.worker_deaths = 0

    # -- set-up ----------------------------------------------------------------------------------
    def _stacking(self, stack: bool | None) -> tuple[bool, str]:
        """Whether trials train their replicates stacked (harness.train.StackedTrainer).

        ``None`` (the default) means :data:`harness.train.STACK_REPLICATES`, except for a study
        whose objectives or pruner measure time: a stacked step is no single run's, so timing
        keeps its per-run meaning by training those studies unstacked. Returns the decision and,
        when it is no, why.
        """
        from harness.train import STACK_REPLICATES, needs_timing

        if stack is not None:
            return bool(stack), "" if stack else "stacking turned off (--no-stack)"
        if not STACK_REPLICATES:
            return False, "stacking turned off (harness.train.STACK_REPLICATES)"
        metrics = [o.metric for o in self.spec.objectives] + [self.spec.pruner_metric or ""]
        timing = [m for m in metrics if needs_timing(m)]
        if timing:
            return False, f"the study measures time ({timing[0]}): its runs train unstacked"
        return True, ""

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

    def _open_study(self, storage: Any) -> Any:
        import optuna

        from harness.terminal import optuna_verbosity

        optuna.logging.set_verbosity(optuna_verbosity())
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
        """The study's parent run: the recorded one, an orphan adopted, or a new one.

        Called under the study lock. The id is recorded in the study before anything uses it: a
        token first (``harness.parent_token``, also a tag of the run), then the run, then its
        id; a driver killed between the two finds the run again by its token.
        """
        from harness.tracking import provenance_tags

        tracker = self.tracker
        attrs = study.user_attrs
        parent = attrs.get(_ATTR_PARENT)
        token = attrs.get(_ATTR_PARENT_TOKEN)
        if not parent and token:
            found = tracker.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{_ATTR_PARENT_TOKEN}` = '{token}'",
                max_results=1,
            )
            if found:  # created by a driver that died before recording it: adopt it
                parent = found[0].info.run_id
                study.set_user_attr(_ATTR_PARENT, parent)
        if parent:
            try:
                run = tracker.client.get_run(parent)
                if run.info.status != "RUNNING":
                    tracker.reopen_run(parent)
                if "study.name" not in run.data.params:
                    self._describe_parent(parent)  # the driver died before describing it
                return str(parent)
            except Exception:
                parent = None  # the MLflow store was cleaned: start a new parent run
        token = uuid.uuid4().hex
        study.set_user_attr(_ATTR_PARENT_TOKEN, token)
        tags = provenance_tags(self.command)
        tags.update(
            {
                "harness.kind": "study",
                "study.name": self.spec.name,
                "study.storage": self.storage_url,
                "study.sampler": self.sampler_name,
                "status": "running",
                _ATTR_PARENT_TOKEN: token,
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
        study.set_user_attr(_ATTR_PARENT, run_id)
        self._describe_parent(run_id)
        return run_id

    def _describe_parent(self, run_id: str) -> None:
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
        self.tracker.log_params(run_id, params)
        self.tracker.log_text(run_id, self.spec.to_yaml(), "study.yaml")

    # -- resume ------------------------------------------------------------------------------------
    def _trial_id_of(self, number: int) -> int:
        """The storage's id of trial ``number`` (asked once per trial, then cached)."""
        trial_id = self._trial_ids.get(number)
        if trial_id is None:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
            self._trial_ids[number] = trial_id
        return trial_id

    def _reconcile(self, study: Any) -> int:
        """Repair what dead drivers left (called under the study lock); returns how many
        trials were re-enqueued.

        For each trial whose owner is dead (see :mod:`harness.study.lease`; a live driver's
        trials are left alone):

        - RUNNING with a durable outcome: told from it, then its run and ledger entry written;
        - RUNNING without one: marked interrupted, told FAIL, its run KILLED, re-enqueued with
          its original parameters (``retry_of``);
        - finished without its ledger entry: its MLflow run and ledger entry are written again
          from the durable outcome (idempotently), else from what Optuna holds.

        Then every run under the parent still RUNNING with no live owner is KILLED.
        """
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        leases = study.user_attrs
        retried = {t.user_attrs.get(_ATTR_RETRY) for t in trials if _ATTR_RETRY in t.user_attrs}
        live_runs: set[str] = set()
        requeued = 0
        for t in trials:
            if t.state == TrialState.WAITING:
                continue
            alive = self.lease.owner_alive(t, leases)
            interrupted = bool(t.user_attrs.get(_ATTR_INTERRUPTED))
            if alive and (t.state == TrialState.RUNNING or not self.ledger.has(t.number)):
                live_runs.add(str(t.user_attrs.get(_ATTR_RUN)))
                continue
            if t.state == TrialState.RUNNING:
                pending = self.ledger.read_pending(t.number)
                if pending is not None:
                    self._repair(study, t, pending, tell=True)
                    continue
                try:
                    _live_trial(study, self._trial_id_of(t.number)).set_user_attr(
                        _ATTR_INTERRUPTED, True
                    )
                    study.tell(t.number, state=TrialState.FAIL)
                except UpdateFinishedTrialError:
                    continue  # its driver finished it after all (it was alive)
                self._kill_run(t.user_attrs.get(_ATTR_RUN), "driver stopped while it ran")
                interrupted = True
            elif not interrupted and not self.ledger.has(t.number):
                pending = self.ledger.read_pending(t.number)
                if pending is not None:
                    self._repair(study, t, pending, tell=False)
                else:
                    self._repair_from_storage(t)
            elif self.ledger.pending_path(t.number).exists():
                self.ledger.drop_pending(t.number)  # died after the ledger entry: all written
            if interrupted and t.number not in retried and self._requeue(study, t):
                requeued += 1
        # runs left RUNNING under the parent without a live trial (driver died mid-creation)
        for run in self.tracker.children(self.parent_run_id, self.experiment_id):
            if run.info.status != "RUNNING" or run.info.run_id in live_runs:
                continue
            owner = run.data.tags.get(ATTR_OWNER)
            if owner and owner != self.lease.id and driver_alive(owner, leases):
                continue
            self._kill_run(run.info.run_id, "driver stopped while it ran")
        return requeued

    def _requeue(self, study: Any, trial: Any) -> bool:
        """Enqueue an interrupted trial again with its original parameters (``retry_of``)."""
        params = self._original_params(trial)
        if params is None:
            return False  # asked but never given parameters: nothing to re-run
        attrs = {_ATTR_RETRY: trial.number}
        if _ATTR_DESIGN in trial.user_attrs:
            attrs[_ATTR_DESIGN] = trial.user_attrs[_ATTR_DESIGN]
        study.enqueue_trial(params, user_attrs=attrs)
        return True

    def _repair(self, study: Any, trial: Any, pending: Mapping[str, Any], *, tell: bool) -> None:
        """Finish a trial's record from its durable outcome (see :meth:`_reconcile`)."""
        try:
            if tell:
                self._tell(study, pending)
            self._record(pending, repair=True)
            self.repaired.append(trial.number)
        except Exception as exc:  # one unrepairable trial must not stop the resume
            self.repair_warnings.append(f"trial {trial.number}: could not repair its record: {exc}")

    def _repair_from_storage(self, trial: Any) -> None:
        """A finished trial with neither ledger entry nor durable outcome (a study from an older
        version, or failed by another Optuna tool): its record from what Optuna holds."""
        state = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(trial.state.name, "failed")
        reason = str(trial.user_attrs.get("fail_reason", "")) or (
            "recovered from the Optuna storage (the per-epoch records were lost)"
        )
        run_id = trial.user_attrs.get(_ATTR_RUN)
        entry = {
            "number": trial.number,
            "state": state,
            "reason": reason,
            "pruned_at_epoch": None,
            "intermediate": {str(k): v for k, v in trial.intermediate_values.items()},
            "wall_time_s": 0.0,
            "pid": 0,
            "replicates": [],
            "values": list(trial.values) if trial.values else None,
            "params": dict(trial.params),
            "config": None,
            "design_index": trial.user_attrs.get(_ATTR_DESIGN),
            "run_id": run_id,
            "recovered": True,
        }
        if run_id:
            with contextlib.suppress(Exception):
                self.tracker.set_tags(run_id, {"status": state, "reason": reason[:5000]})
                self.tracker.end_run(run_id, MLFLOW_STATUS[state])
        self.ledger.write(trial.number, entry)
        self.repaired.append(trial.number)

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

    def _taken(self, study: Any) -> int:
        """Trials asked by any driver and not interrupted (running or finished)."""
        from optuna.trial import TrialState

        return sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING and not t.user_attrs.get(_ATTR_INTERRUPTED)
        )

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

    def _ask(self, study: Any, target: int) -> Any:
        """The next trial for this driver, or None when the study has what it needs.

        Counted in the storage, not per driver, so that several drivers on one study stop
        together at the target. A design-based study takes only enqueued design points (never
        a fresh random trial once the queue is empty): each design point runs once.

        Every caller holds ``self._lock`` (the driver's threads ask one at a time). Other
        drivers are not behind that lock: a design point is taken by the storage's
        compare-and-set ``set_trial_state_values(RUNNING)``, which is False for all but the
        one driver that moved it out of WAITING (what ``Study.ask`` does with a waiting trial,
        without its fallback to a fresh trial, which a check-then-``ask`` would reach when
        another driver took the last point in between).
        """
        import optuna
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        if self._taken(study) >= target:
            return None
        if not self.design_based:
            return study.ask()
        for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = self._trial_id_of(waiting.number)
            try:
                if not self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                    continue  # another driver took it first
            except UpdateFinishedTrialError:
                continue  # another driver took it and finished it already
            # the documented constructor: what Study.ask returns for a popped trial
            return optuna.Trial(study, trial_id)
        return None

    def _start_trial(self, study: Any, trial: Any) -> TrialTask:
        """Claim an asked trial, resolve its config, open its MLflow run (under the lock)."""
        import socket

        from harness.runconfig import resolve_run_config
        from harness.runlog import open_run

        trial_id = self._trial_id_of(trial.number)
        self.lease.claim(trial_id)
        config, params = self.spec.search.suggest(trial, self.spec.base_config)
        config = resolve_run_config(config)
        configs = self._replicate_configs(config)
        stack = self.stack and not (self.timed_trials is not None and self.timed_trials(config))
        keys, cached = self._cache_lookup(configs, stack=stack)
        extra = {"trial.number": trial.number, "trial.replicates": len(configs)}
        extra.update({f"role.{k}": v for k, v in self.spec.roles().items()})
        design_index = trial.user_attrs.get(_ATTR_DESIGN)
        tags = {
            "optuna.study": self.spec.name,
            "optuna.trial_number": trial.number,
            "harness.kind": "trial",
            ATTR_OWNER: self.lease.id,
        }
        if design_index is not None:
            tags["design_index"] = design_index
        if _ATTR_RETRY in trial.user_attrs:
            tags["retry_of"] = trial.user_attrs[_ATTR_RETRY]
        blas = self.blas.choose(configs[0])
        provenance = {**self._provenance, **blas.tags()}
        run_id = self._tracking(
            f"creating the run of trial {trial.number}",
            lambda: open_run(
                self.tracker,
                self.experiment_id,
                configs[0],
                run_name=f"trial-{trial.number:04d}",
                parent_run_id=self.parent_run_id,
                command=_trial_command(self.spec, params, configs[0]["seed"]),
                extra_params=extra,
                tags=tags,
                provenance=provenance,
            ),
        )
        trial.set_user_attr(_ATTR_RUN, run_id)
        self._in_flight[trial.number] = {
            "trial": trial,
            "trial_id": trial_id,
            "run_id": run_id,
            "params": params,
            "config": configs[0],
            "design_index": design_index,
            "started": time.time(),
            "provenance": provenance,
            "keys": keys,
            "cached": cached,
            "stack": stack,
        }
        todo = [i for i in range(len(configs)) if i not in cached]
        return TrialTask(
            study_name=self.spec.name,
            storage_url=self.storage_url,
            trial_id=trial_id,
            number=trial.number,
            configs=tuple(configs[i] for i in todo),
            replicate_ids=tuple(todo),
            prune_metric=self.spec.pruner_metric,
            pruner_spec=self.spec.pruner_spec,
            data_dir=self.data_dir,
            blas_threads=blas.threads,
            keep_weights=self.log_models != "none",
            system_metrics=self.system_metrics,
            stack=stack,
            driver_host=socket.gethostname(),
            driver_pid=os.getpid(),
        )

    # -- the run cache ---------------------------------------------------------------------------
    def _cache_lookup(
        self, configs: Sequence[Mapping[str, Any]], *, stack: bool
    ) -> tuple[list[str], dict[int, Any]]:
        """Each replicate's cache key, and the finished runs found for them (by replicate)."""
        if self.cache is None:
            return [], {}
        keys = [run_key(cfg, data_dir=self.data_dir) for cfg in configs]
        hits = {}
        for i, key in enumerate(keys):
            hit = self.cache.get(
                key,
                tracking_uri=self.tracker.tracking_uri,
                need_timing=not stack,
                need_weights=i == 0 and self.log_models != "none",
            )
            if hit is not None:
                hits[i] = hit
        return keys, hits

    def _merge_cached(self, outcome: TrialOutcome, cached: Mapping[int, Any]) -> None:
        """Put the reused runs among the trained ones; a reused failure fails the trial too."""
        if not cached:
            return
        for i, hit in cached.items():
            outcome.replicates.append(
                ReplicateOutcome(
                    replicate=i,
                    seed=replicate_seed(int(self.spec.seed), i),
                    status=hit.status,
                    reason=hit.reason,
                    records=hit.records,
                    summary=hit.summary,
                    network_config=hit.network_config,
                    model_npz=hit.model_npz if i == 0 else None,
                )
            )
        outcome.replicates.sort(key=lambda r: r.replicate)
        if outcome.state != "complete":
            return
        bad = [r for r in outcome.replicates if r.status in ("diverged", "failed")]
        if bad:
            outcome.state = "failed"
            outcome.reason = "; ".join(f"seed {r.seed}: {r.status}: {r.reason}" for r in bad)
        else:
            outcome.reason = "; ".join(sorted({r.reason for r in outcome.replicates}))

    def _cache_store(
        self, info: Mapping[str, Any], outcome: TrialOutcome, run_ids: Mapping[int, str]
    ) -> None:
        """Store the runs this trial trained (after MLflow has them: the source run exists)."""
        if self.cache is None or not info.get("keys"):
            return
        for rep in outcome.replicates:
            if rep.replicate in info["cached"] or rep.replicate not in run_ids:
                continue
            cfg = dict(info["config"])
            cfg["seed"] = rep.seed
            self.cache.put(
                info["keys"][rep.replicate],
                status=rep.status,
                reason=rep.reason,
                records=rep.records,
                summary=rep.summary,
                source_run_id=run_ids[rep.replicate],
                timed=not outcome.stacked,
                tracking_uri=self.tracker.tracking_uri,
                network_config=rep.network_config,
                model_npz=rep.model_npz,
                config=cfg,
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
        """Record a finished trial (called under the lock), in the order a resume can repair:
        the durable outcome, then Optuna's tell, then the MLflow run(s), then the ledger
        entry (see :mod:`harness.study.ledger`)."""
        from optuna.exceptions import UpdateFinishedTrialError

        info = self._in_flight.pop(outcome.number)
        self._merge_cached(outcome, info.get("cached", {}))
        values = self._objective_values(outcome) if outcome.state == "complete" else None
        state = outcome.state
        reason = outcome.reason
        if state == "complete" and values is None:
            state, reason = "failed", f"objective is not finite ({reason})"
        pending = {
            "outcome": outcome,
            "state": state,
            "reason": reason,
            "values": values,
            "info": {k: v for k, v in info.items() if k != "trial"},
            "timestamp_ms": int(time.time() * 1000),
        }
        self.ledger.write_pending(outcome.number, pending)
        try:
            self._tell(study, pending)
        except UpdateFinishedTrialError:
            # another driver took this driver for dead and recovered the trial (it re-runs
            # as a retry): this result is not counted, so nothing is counted twice
            self.ledger.drop_pending(outcome.number)
            self.lease.release(info["trial_id"])
            return "interrupted", None
        # a retry after a tracking failure reuses what was logged (repair=True)
        attempts = iter([False])
        self._tracking(
            f"logging trial {outcome.number}",
            lambda: self._record(pending, repair=next(attempts, True)),
        )
        self.lease.release(info["trial_id"])
        return state, values

    def _tracking(self, what: str, call: Any) -> Any:
        """``call()``, waiting for a tracking server that stopped answering: a line says so,
        retries go on for :data:`TRACKING_WAIT_S` seconds (``$HARNESS_TRACKING_WAIT_S``), then
        :class:`TrackingUnavailable` stops the sweep with one line (a resume repairs the rest:
        the outcome is durable)."""
        wait_s = float(os.environ.get("HARNESS_TRACKING_WAIT_S", TRACKING_WAIT_S))
        deadline = None
        while True:
            try:
                result = call()
            except Exception as exc:
                if not _unreachable(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + wait_s
                    from harness.redact import redact_text

                    print(
                        f"harness sweep: the tracking store {redact_text(self.tracker.tracking_uri)} "
                        f"does not answer ({what}); waiting up to {wait_s:.0f} s for it",
                        file=sys.stderr,
                        flush=True,
                    )
                if now >= deadline:
                    raise TrackingUnavailable(
                        f"the tracking store {self.tracker.tracking_uri} did not answer for "
                        f"{wait_s:.0f} s ({what})"
                    ) from None
                time.sleep(min(2.0, max(0.0, deadline - now)))
                continue
            if deadline is not None:
                print("harness sweep: the tracking store answers again; going on", file=sys.stderr)
            return result

    def _tell(self, study: Any, pending: Mapping[str, Any]) -> None:
        from optuna.trial import TrialState

        outcome, state = pending["outcome"], pending["state"]
        if state == "complete":
            study.tell(outcome.number, pending["values"])
        elif state == "pruned":
            study.tell(outcome.number, state=TrialState.PRUNED)
        else:
            reason = str(pending["reason"])[:2000]
            _live_trial(study, outcome.trial_id).set_user_attr("fail_reason", reason)
            study.tell(outcome.number, state=TrialState.FAIL)

    def _record(self, pending: Mapping[str, Any], *, repair: bool = False) -> None:
        """The MLflow run(s) and the ledger entry of a told trial, then drop its durable
        outcome. Idempotent: a resume calls it again for a trial whose driver died in it."""
        outcome, info = pending["outcome"], pending["info"]
        state, reason, values = pending["state"], pending["reason"], pending["values"]
        self._log_trial(
            info, outcome, state, reason, values, timestamp=pending["timestamp_ms"], repair=repair
        )
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
        self.ledger.drop_pending(outcome.number)

    def _log_trial(
        self,
        info: Mapping[str, Any],
        outcome: TrialOutcome,
        state: str,
        reason: str,
        values: list[float] | None,
        *,
        timestamp: int | None = None,
        repair: bool = False,
    ) -> None:
        """Log a finished trial's run (and its replicate runs). With the durable outcome's
        ``timestamp`` logging again is a no-op for what was logged already (``repair``: the
        replicate runs that exist are reused, not created twice)."""
        from harness.runlog import history_csv, open_run, run_params

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
        # how the replicates trained: "3" stacked together, or why not (timing, conv layers)
        tags["train.stacked"] = str(outcome.stacked) if outcome.stacked else "no"
        cached = info.get("cached", {})
        if cached:
            tags["cache.reused"] = f"{len(cached)}/{len(outcome.replicates)}"
            if len(outcome.replicates) == 1:
                tags[TAG_SOURCE] = cached[0].source_run_id
                tags[TAG_KEY] = cached[0].key
        stacked = info.get("stack", self.stack)
        note = outcome.stack_note if stacked else self.stack_why or TIMED_TRIAL_NOTE
        if note and len(outcome.replicates) > 1:
            tags["train.stack_note"] = note[:500]
        tags.update(tracker.curve_tags(records))
        best = self._best_epochs()
        # one store transaction for every metric and tag of the trial
        tracker.log_batch(
            run_id,
            metrics=tracker.curve_rows(records, best=best) + final + outcome.system,
            tags=tags,
            timestamp=timestamp,
        )
        tracker.log_text(run_id, history_csv(records), "history.csv")
        run_ids: dict[int, str] = {}
        if len(outcome.replicates) == 1:
            run_ids[outcome.replicates[0].replicate] = run_id
        if len(outcome.replicates) > 1:
            existing: dict[str, str] = {}
            if repair:
                for run in tracker.children(run_id, self.experiment_id):
                    existing[run.data.tags.get("replicate", "")] = run.info.run_id
            for rep in outcome.replicates:
                child = existing.get(str(rep.replicate))
                reuse = {}
                if rep.replicate in cached:
                    hit = cached[rep.replicate]
                    reuse = {TAG_SOURCE: hit.source_run_id, TAG_KEY: hit.key}
                cfg = dict(info["config"])
                cfg["seed"] = rep.seed
                extra = {"trial.number": outcome.number, "replicate": rep.replicate}
                if child is None:
                    child = open_run(
                        tracker,
                        self.experiment_id,
                        cfg,
                        run_name=f"trial-{outcome.number:04d}/seed-{rep.replicate}",
                        parent_run_id=run_id,
                        command=_trial_command(self.spec, info["params"], rep.seed),
                        log_params=False,  # with the curves below: one transaction
                        tags={
                            "harness.kind": "replicate",
                            "optuna.trial_number": outcome.number,
                            "replicate": rep.replicate,
                            "status": rep.status,
                            "reason": rep.reason[:5000],
                            **tracker.curve_tags(rep.records),
                            **reuse,
                        },
                        provenance=info.get("provenance", self._provenance),
                        config_artifact=False,  # the params hold it; the trial run has the file
                    )
                # params and curves together (again on a repair: a run created just before
                # a crash has neither; logging the same values twice is a no-op)
                tracker.log_batch(
                    child,
                    params=run_params(cfg, extra),
                    metrics=tracker.curve_rows(rep.records, best=best),
                    timestamp=timestamp,
                )
                tracker.end_run(child, rep.status)
                run_ids[rep.replicate] = child
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
        self._cache_store(info, outcome, run_ids)
        tracker.end_run(run_id, MLFLOW_STATUS[state])

    def _best_epochs(self) -> list[tuple[str, str]]:
        """``(metric, "min" | "max")`` of the objectives that pick a best epoch (``reduce``
        best, min or max): their best epoch stays on a thinned MLflow curve."""
        out = []
        for objective in self.spec.objectives:
            reduce = objective["reduce"]
            if reduce == "best":
                reduce = "max" if objective["direction"] == "maximize" else "min"
            if reduce in ("min", "max"):
                out.append((str(objective["metric"]), reduce))
        return out

    def _log_model(self, run_id: str, network_config: Mapping[str, Any] | None, npz: bytes) -> None:
        import numpy as np

        from models.network import Sequential

        net = Sequential.from_config(dict(network_config or {}), rng=np.random.default_rng(0))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.npz"
            path.write_bytes(npz)
            net.load_weights(path)
        self.tracker.log_model(run_id, net)

    def _interrupt(self, study: Any, number: int, why: str, *, requeue: bool = False) -> None:
        """Mark an in-flight trial interrupted (told FAIL), KILL its run, maybe re-enqueue it."""
        from optuna.trial import TrialState

        info = self._in_flight.pop(number, None)
        if info is None:
            return
        trial = info["trial"]
        try:
            trial.set_user_attr(_ATTR_INTERRUPTED, True)
            trial.set_user_attr("fail_reason", why[:2000])
            study.tell(number, state=TrialState.FAIL)
        except Exception:  # already finished in storage: nothing to undo
            requeue = False
        self._kill_run(info["run_id"], why)
        self.lease.release(info["trial_id"])
        if requeue:
            fresh = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
            self._requeue(study, fresh)

    def _interrupt_in_flight(self, study: Any, why: str) -> None:
        for number in list(self._in_flight):
            self._interrupt(study, number, why)

    def _retries_of(self, study: Any, number: int) -> int:
        """How many times trial ``number``'s design point was already retried (its chain)."""
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        depth, seen = 0, set()
        trial = by_number.get(number)
        while trial is not None and _ATTR_RETRY in trial.user_attrs and trial.number not in seen:
            seen.add(trial.number)
            depth += 1
            trial = by_number.get(int(trial.user_attrs[_ATTR_RETRY]))
        return depth

    def _worker_died(self, study: Any, number: int, why: str) -> None:
        """A worker died under trial ``number``: retry it (bounded), else it failed."""
        reason = f"its worker process died ({why})"
        retries = self._retries_of(study, number)
        if retries < MAX_WORKER_RETRIES:
            self._interrupt(study, number, reason, requeue=True)
            self.worker_deaths += 1
            return
        info = self._in_flight[number]
        outcome = TrialOutcome(
            number=number,
            trial_id=info["trial_id"],
            state="failed",
            reason=f"{reason}, {retries + 1} times: not retried again",
        )
        self._finish_trial(study, outcome)

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> SweepResult:
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
        target = self._target()
        raw_storage = make_storage(self.storage_url, heartbeat=True)
        # the set-up of drivers on one study, one at a time (see harness.study.lease)
        with storage_lock(self.storage_url, f"study:{self.spec.name}"):
            study = self._open_study(raw_storage)
            self.storage = raw_storage
            self.study_id = raw_storage.get_study_id_from_name(study.study_name)
            self.lease = DriverLease(raw_storage, self.study_id)
            self.lease.start()
            try:
                self.parent_run_id = self._open_parent(study)
                self._reconcile(study)
                if self.design_based:
                    self._enqueue_design(study, target)
            except BaseException:
                self.lease.stop()
                raise
        already = len(self._finished_trials(study))
        bar = _Progress(
            min(target, 10**6),
            already,
            self.progress,
            self.spec.name,
            self.spec.objectives[0]["metric"],
        )
        status = "completed"
        t_loop = time.perf_counter()
        self._timings = {"setup_s": t_loop - t_start}
        # no more workers than trials left (--jobs 1000 for 4 trials starts 4 processes)
        workers = max(1, min(self.jobs, target - already))
        try:
            with _backend_client(self.backend, workers), warnings.catch_warnings():
                # the driver records Optuna's heartbeat itself (harness.study.lease)
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                self._loop(study, target, workers, bar)
        except KeyboardInterrupt:
            status = "interrupted"
            with self._lock:
                self._interrupt_in_flight(study, "interrupted by the user (Ctrl-C)")
        except Exception as exc:
            status = "interrupted"
            bar.close()
            try:
                with self._lock:
                    self._interrupt_in_flight(study, f"{type(exc).__name__}: {exc}")
                self._close_parent(study, status, t_start)
            except Exception:
                # the store that failed fails the wrap-up too: the resume repairs it
                self.lease.stop()
            if isinstance(exc, TrackingUnavailable):
                raise SweepInterrupted(
                    f"sweep {self.spec.name!r} stopped: {exc}. Completed trials are kept; run "
                    "the same command again once it answers to resume"
                ) from exc
            raise SweepInterrupted(
                f"sweep {self.spec.name!r} stopped: {type(exc).__name__}: {exc}. "
                "Completed trials are kept; run the same command again to resume."
            ) from exc
        finally:
            bar.close()
            self._timings["trials_s"] = time.perf_counter() - t_loop
        result = self._close_parent(study, status, t_start)
        if status == "interrupted":
            raise SweepInterrupted(
                f"sweep {self.spec.name!r} interrupted: {result.n_complete} complete trials kept; "
                "run the same command again to resume"
            )
        return result

    def _loop(self, study: Any, target: int, workers: int, bar: _Progress) -> None:
        """Ask a trial whenever a worker is free, record each as it finishes."""
        deadline = time.monotonic() + self.timeout if self.timeout else None
        pool = TrialPool(self.backend, workers)
        handles: dict[Any, int] = {}
        driver_s = 0.0
        restarts = 0
        exhausted = False
        try:
            while True:
                while len(handles) < workers and not exhausted and not pool.broken:
                    if deadline is not None and time.monotonic() >= deadline:
                        exhausted = True
                        break
                    t0 = time.perf_counter()
                    with self._lock:
                        trial = self._ask(study, target)
                        if trial is None:
                            exhausted = True
                            break
                        task = self._start_trial(study, trial)
                    driver_s += time.perf_counter() - t0
                    handles[pool.submit(task)] = task.number
                if not handles:
                    if self._recover_while_running(study):
                        exhausted = False
                        continue
                    return
                for handle in pool.wait(list(handles), timeout=1.0):
                    number = handles.pop(handle)
                    t0 = time.perf_counter()
                    try:
                        outcome = pool.result(handle)
                    except WorkerDied as exc:
                        with self._lock:
                            self._worker_died(study, number, str(exc))
                        exhausted = False  # its retry is in the queue
                        continue
                    with self._lock:
                        state, _ = self._finish_trial(study, outcome)
                    driver_s += time.perf_counter() - t0
                    bar.update(self._current_best(study), state)
                if pool.broken and not handles:
                    restarts += 1
                    if restarts > MAX_POOL_RESTARTS:
                        raise RuntimeError(
                            f"worker processes died {restarts} times; stopping the sweep"
                        )
                    pool.restart()
        except BaseException:
            pool.close(kill=True)  # the driver stops: its workers stop with it
            raise
        finally:
            self._timings["driver_s"] = driver_s
        pool.close()

    def _recover_while_running(self, study: Any) -> bool:
        """Nothing left to ask: recover the trials of drivers that died meanwhile (their design
        points would else wait for the next resume). True when something was re-enqueued."""
        from optuna.trial import TrialState

        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return False
        leases = study.user_attrs
        if all(self.lease.owner_alive(t, leases) for t in running):
            return False
        with storage_lock(self.storage_url, f"study:{self.spec.name}"):
            return self._reconcile(study) > 0

    def _current_best(self, study: Any) -> float | None:
        if len(self.spec.directions) != 1:
            return None
        try:
            return float(study.best_value)
        except ValueError:
            return None

    # -- wrap-up -------------------------------------------------------------------------------------
    def _close_parent(self, study: Any, status: str, t_start: float) -> SweepResult:
        """Summarise the study on its parent run; the last driver to stop ends the run."""
        from harness.study.lease import live_drivers
        from harness.study.summary import summarize_study

        t_wrap = time.perf_counter()
        result = SweepResult(
            study_name=self.spec.name,
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            storage_url=self.storage_url,
        )
        with storage_lock(self.storage_url, f"study:{self.spec.name}"):
            self.lease.stop()
            others = live_drivers(study.user_attrs, exclude=self.lease.id)
            result.entries = list(self.ledger.entries())
            summarize_study(self, study, result, plots=self.plots)
            result.warnings.extend(self.repair_warnings)
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
            if not others:  # other drivers still run trials under it: the last one ends it
                self.tracker.set_tags(self.parent_run_id, {"status": status})
                self.tracker.end_run(
                    self.parent_run_id, "completed" if status == "completed" else status
                )
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


def _live_trial(study: Any, trial_id: int) -> Any:
    """A writable ``optuna.trial.Trial`` for a stored RUNNING trial (one a dead driver left,
    or one told by a repair): Optuna's public handle for setting its user attributes, as a
    worker re-attaches by id."""
    import optuna

    return optuna.trial.Trial(study, trial_id)


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
