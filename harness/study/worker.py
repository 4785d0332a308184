"""What a worker process does with one trial: train its replicate seeds, report, return.

A worker never touches MLflow (the driver is the only MLflow writer). It talks to the Optuna
storage only to report intermediate values and ask whether to prune, through a ``Trial`` object
re-attached by id, so pruning works across processes. Replicate seeds of one configuration are
trained in lockstep, epoch by epoch (as one stacked model when ``TrialTask.stack`` is set and the
model allows, see :class:`harness.train.StackedTrainer`), and the pruner sees the mean over seeds, so a configuration is
judged on its average and not on one lucky seed.

Everything in :class:`TrialTask` and :class:`TrialOutcome` is plain data (picklable), and
:func:`execute_trial` catches every exception of training into a failed outcome with its reason.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ReplicateOutcome", "TrialOutcome", "TrialTask", "average_records", "execute_trial"]


@dataclass(frozen=True)
class TrialTask:
    """One trial, as sent to a worker."""

    study_name: str
    storage_url: str
    trial_id: int
    number: int
    configs: tuple[dict[str, Any], ...]  # one resolved run config per replicate seed
    prune_metric: str | None = None  # None: the trial is never pruned
    pruner_spec: Any = None
    data_dir: str | None = None
    blas_threads: int = 1
    keep_weights: bool = True
    system_metrics: bool = False  # sample CPU and memory while training (--system-metrics)
    #: train the replicates as one stacked model when the model allows (harness.train.StackedTrainer)
    stack: bool = False
    #: the replicate index of each config (default 0, 1, ...): the driver leaves out the
    #: replicates it reuses from the run cache
    replicate_ids: tuple[int, ...] = ()
    #: the driver process (host name, pid): a worker on its host exits when it is gone
    driver_host: str = ""
    driver_pid: int = 0


@dataclass
class ReplicateOutcome:
    """One seed's run inside a trial."""

    replicate: int
    seed: int
    status: str
    reason: str
    records: list[dict[str, float]]
    summary: dict[str, float]
    network_config: dict[str, Any] | None = None
    model_npz: bytes | None = None  # the trained weights (network.save_weights), replicate 0 only


@dataclass
class TrialOutcome:
    """What the driver receives back for a trial."""

    number: int
    trial_id: int
    state: str  # "complete" | "pruned" | "failed"
    reason: str
    replicates: list[ReplicateOutcome] = field(default_factory=list)
    pruned_at_epoch: int | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    #: the worker's CPU seconds over the trial (all its threads: BLAS included), for the
    #: benchmarks' split of wall time into training, driver work and idle workers
    cpu_time_s: float = 0.0
    pid: int = 0
    #: ``(metric, value, step)`` system samples of the worker (harness.sysmetrics), if asked
    system: list[tuple[str, float, int]] = field(default_factory=list)
    #: how many replicates trained stacked (0: unstacked), and why not when asked to
    stacked: int = 0
    stack_note: str = ""

    def mean_records(self) -> list[dict[str, float]]:
        """Per-epoch records averaged over replicates (see :func:`average_records`)."""
        return average_records([rep.records for rep in self.replicates])


def average_records(
    per_seed: Sequence[Sequence[Mapping[str, float]]],
) -> list[dict[str, float]]:
    """Per-epoch records averaged over seeds: epochs present in any seed, each metric the mean
    of its finite values (NaN when none is finite)."""
    if len(per_seed) == 1:
        return [dict(r) for r in per_seed[0]]
    by_epoch: dict[int, dict[str, list[float]]] = {}
    for records in per_seed:
        for rec in records:
            slot = by_epoch.setdefault(int(rec["epoch"]), {})
            for k, v in rec.items():
                if k != "epoch":
                    slot.setdefault(k, []).append(v)
    out = []
    for epoch in sorted(by_epoch):
        rec = {"epoch": float(epoch)}
        for k, vs in by_epoch[epoch].items():
            finite = [v for v in vs if math.isfinite(v)]
            rec[k] = float(np.mean(finite)) if finite else float("nan")
        out.append(rec)
    return out


def _ignore_ctrl_c_in_workers() -> None:
    """In a worker process, leave Ctrl-C to the driver.

    A terminal sends SIGINT to the whole process group; without this, every idle worker prints
    a KeyboardInterrupt traceback while the driver is already stopping cleanly (it marks the
    in-flight trials interrupted and shuts the workers down). The driver itself (``--jobs 1``
    runs trials in it) keeps its handler.
    """
    import multiprocessing
    import signal
    import threading

    # dask runs tasks in worker threads, where signal handlers cannot be set (nor are needed)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if multiprocessing.parent_process() is not None and in_main_thread:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_WATCHDOG: list[int] = []
#: seconds between two checks that the driver is still alive
WATCHDOG_S = 1.0


def _exit_with_the_driver(task: TrialTask) -> None:
    """In a worker process on the driver's host, exit within seconds once the driver is gone.

    A SIGKILLed driver cannot shut its pool down; loky's idle workers would otherwise stay for
    its 300 s idle timeout, each holding its data, and a busy one would train on to the end.
    """
    import socket
    import threading

    pid = task.driver_pid
    if not pid or pid == os.getpid() or _WATCHDOG or task.driver_host != socket.gethostname():
        return
    _WATCHDOG.append(pid)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            try:
                os.kill(pid, 0)
                stat = Path(f"/proc/{pid}/stat")
                if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    os._exit(3)  # the driver is a zombie: dead, not yet reaped
            except ProcessLookupError:
                os._exit(3)
            except (OSError, IndexError):
                continue

    threading.Thread(target=watch, name="harness-driver-watchdog", daemon=True).start()


def _attach_trial(task: TrialTask) -> Any:
    """The live Optuna trial of ``task`` (for report/should_prune), or None without pruning."""
    if task.prune_metric is None:
        return None
    import optuna

    from harness.study.samplers import make_pruner
    from harness.study.storage import make_storage

    study = optuna.load_study(
        study_name=task.study_name,
        storage=make_storage(task.storage_url),
        pruner=make_pruner(task.pruner_spec),
    )
    return optuna.trial.Trial(study, task.trial_id)


def execute_trial(task: TrialTask) -> TrialOutcome:
    """Train every replicate of ``task`` and return the outcome (never raises for training)."""
    from threadpoolctl import threadpool_limits

    _ignore_ctrl_c_in_workers()
    _exit_with_the_driver(task)
    t0, cpu0 = time.perf_counter(), time.process_time()
    outcome = TrialOutcome(
        number=task.number, trial_id=task.trial_id, state="complete", reason="", pid=os.getpid()
    )
    sampler = None
    if task.system_metrics:
        from harness.sysmetrics import SystemSampler

        sampler = SystemSampler().start()
    with threadpool_limits(limits=task.blas_threads, user_api="blas"):
        try:
            _run_replicates(task, outcome)
        except Exception as exc:  # a trial that raises is a failed trial, not a crashed study
            outcome.state = "failed"
            outcome.reason = f"{type(exc).__name__}: {exc}"
            outcome.reason += "\n" + "".join(traceback.format_exc(limit=8))
    if sampler is not None:
        outcome.system = sampler.stop()
    outcome.wall_time_s = time.perf_counter() - t0
    outcome.cpu_time_s = time.process_time() - cpu0
    return outcome


def _run_replicates(task: TrialTask, outcome: TrialOutcome) -> None:
    from harness.experiment import build_run
    from harness.train import StackedTrainer, StopTraining

    trial = _attach_trial(task)
    metric = task.prune_metric or ""
    prune_reason: list[str] = []

    def stop_if_pruned(epoch: int, record: Any) -> None:
        if prune_reason:
            raise StopTraining("pruned", prune_reason[0])

    runs = [
        build_run(cfg, callbacks=[stop_if_pruned], data_dir=task.data_dir, resolved=True)
        for cfg in task.configs
    ]
    trainers = [run.trainer for run in runs]
    rounds: Iterator[list[dict[str, float]]]
    why = StackedTrainer.unsupported(trainers) if task.stack else "not asked"
    if why is None:
        outcome.stacked = len(trainers)
        rounds = ([rec for _, rec in recs] for recs in StackedTrainer(trainers).epochs())
    else:
        outcome.stack_note = why
        rounds = _lockstep([t.epochs() for t in trainers])
    for records in rounds:
        if not records or trial is None or prune_reason:
            continue
        epoch = int(records[0]["epoch"])
        values = [r[metric] for r in records if math.isfinite(r.get(metric, math.nan))]
        if epoch == 0 or not values:
            continue
        value = float(np.mean(values))
        trial.report(value, epoch)
        outcome.intermediate[epoch] = value
        if trial.should_prune():
            prune_reason.append(
                f"pruned at epoch {epoch}: mean {metric} = {value:.4g} over {len(values)} seed(s)"
            )
            outcome.pruned_at_epoch = epoch
    for i, run in enumerate(runs):
        h = run.trainer.history
        index = task.replicate_ids[i] if task.replicate_ids else i
        rep = ReplicateOutcome(
            replicate=index,
            seed=int(task.configs[i]["seed"]),
            status=h.status,
            reason=h.reason,
            records=h.records,
            summary=h.summary(),
        )
        if task.keep_weights and index == 0 and h.status != "diverged":
            rep.network_config = run.network.get_config()
            rep.model_npz = _weights_bytes(run.network)
        outcome.replicates.append(rep)
    bad = [r for r in outcome.replicates if r.status in ("diverged", "failed")]
    if prune_reason:
        outcome.state, outcome.reason = "pruned", prune_reason[0]
    elif bad:
        outcome.state = "failed"
        outcome.reason = "; ".join(f"seed {r.seed}: {r.status}: {r.reason}" for r in bad)
    else:
        outcome.reason = "; ".join(sorted({r.reason for r in outcome.replicates}))


def _lockstep(gens: Sequence[Iterator[dict[str, float]]]) -> Iterator[list[dict[str, float]]]:
    """Advance every replicate's epoch generator once per round; yield the round's records."""
    active = list(range(len(gens)))
    while active:
        records: list[dict[str, float]] = []
        for i in list(active):
            try:
                records.append(next(gens[i]))
            except StopIteration:
                active.remove(i)
        yield records


def _weights_bytes(network: Any) -> bytes:
    """The network's ``save_weights`` file as bytes (sent back to the driver, not re-pickled)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.npz"
        network.save_weights(path)
        return path.read_bytes()
