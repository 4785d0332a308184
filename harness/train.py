"""The training loop: a pure function of its inputs that returns a :class:`History`.

It does not log anywhere: tracking reads the history afterwards. Per epoch it records train/val
loss and accuracy (R² and MAE for regression), the wall time of the training steps only, the
throughput measured on training steps only (warm-up steps excluded), the learning rate, and, on
request, the zoo's per-layer telemetry. Epoch 0 is the state at initialization, before any update.

Guards turn failures into a status instead of an exception: a NaN/inf loss or an exploding loss
ends the run as ``diverged`` with the reason, and so does a classifier that ends at chance
(:func:`chance_reason`: final val accuracy within :data:`CHANCE_MARGIN` of the most frequent
class's share, after collapsing from above it or with a val loss no lower than at init). Callbacks (the study runner's Optuna pruning) run at
each epoch end and may stop the run by raising :class:`StopTraining`.

:class:`Trainer` exposes the loop as a generator (:meth:`Trainer.epochs`) so that a caller can
interleave several runs epoch by epoch (replicate seeds trained in lockstep).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.runconfig import direction_of
from models.base import NonFiniteError

__all__ = [
    "CHANCE_MARGIN",
    "STACK_REPLICATES",
    "STATUSES",
    "Callback",
    "History",
    "StackedTrainer",
    "StopTraining",
    "TrainSettings",
    "Trainer",
    "chance_level",
    "chance_reason",
    "fit",
    "needs_timing",
    "strings_in",
]

#: every status a run can end with
STATUSES = (
    "completed",
    "target_reached",
    "early_stopped",
    "max_steps",
    "diverged",
    "pruned",
    "failed",
    "interrupted",
)


#: A classifier whose final val accuracy is within this much of chance has not learned.
CHANCE_MARGIN = 0.02
#: ...and predicting one class for this share of the inputs means its output collapsed.
CONSTANT_SHARE = 0.9
#: Runs of fewer epochs are not judged against chance: a probe that trains an epoch or two to
#: record its state at init (or a smoke run) has not had the time to learn, which is "slow", not
#: "diverged". Neither are runs on data whose labels are dummies (the `gaussian` probe set).
CHANCE_MIN_EPOCHS = 3


def chance_level(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class (labels or one-hot rows)."""
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
    if labels.size == 0:
        return math.nan
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)


def chance_reason(
    records: Sequence[Mapping[str, float]],
    chance: float,
    modal_share: float = math.nan,
    margin: float = CHANCE_MARGIN,
) -> str:
    """Why a run that ended at chance accuracy diverged, or "" when it did not.

    Catalogue §5.6: a run whose validation accuracy drops to chance has diverged, which is not
    the same as a slow run. Ending within ``margin`` of chance is divergence when the run was
    above chance before (it collapsed), when it predicts one class for at least
    :data:`CONSTANT_SHARE` of the validation inputs (``modal_share``: its output collapsed to a
    constant), or when its val loss is no lower than at init; a run at chance that still spreads
    its predictions and whose loss falls (a short or slow run) is left as it is.
    """
    if not records or not math.isfinite(chance):
        return ""
    final = records[-1].get("val/accuracy", math.nan)
    if not math.isfinite(final) or final > chance + margin:
        return ""
    later = [r.get("val/accuracy", math.nan) for r in records[1:]]
    peak = max((a for a in later if math.isfinite(a)), default=math.nan)
    loss0 = records[0].get("val/loss", math.nan)
    loss1 = records[-1].get("val/loss", math.nan)
    head = (
        f"final val accuracy {final:.3f} is within {margin:g} of chance ({chance:.3f}, the "
        "most frequent class's share)"
    )
    if math.isfinite(peak) and peak > chance + margin:
        return f"{head} after reaching {peak:.3f}: it collapsed"
    if math.isfinite(modal_share) and modal_share >= CONSTANT_SHARE:
        return f"{head}; it predicts one class for {modal_share:.0%} of the inputs: it collapsed"
    if math.isfinite(loss0) and (not math.isfinite(loss1) or loss1 >= loss0):
        return f"{head}; its val loss ({loss1:.4g}) is no lower than at init ({loss0:.4g})"
    return ""


class StopTraining(Exception):
    """Raised by a callback to end training with a status (e.g. ``pruned``) and a reason."""

    def __init__(self, status: str, reason: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not in {STATUSES}")
        super().__init__(reason)
        self.status = status
        self.reason = reason


#: ``callback(epoch, record)`` after each epoch's record is complete; may raise StopTraining
Callback = Callable[[int, Mapping[str, float]], None]
#: one run's split metrics of an epoch, by split ("train", "val"): ``{"val/loss": ..., ...}``
Evaluated = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section of a resolved run config, as typed fields (see runconfig)."""

    batch_size: int
    epochs: int
    max_steps: int | None = None
    sampling: str = "shuffle"
    target: Mapping[str, Any] | None = None
    stop_at_target: bool = False
    early_stopping: Mapping[str, Any] | None = None
    divergence_factor: float = 1.0e3
    #: True: per-layer statistics at init and per step; "init": at init (epoch 0) only
    telemetry: bool | str = False
    eval_train: bool = True
    eval_batch_size: int = 2048
    warmup_steps: int = 20
    #: resolved ``train.record`` block (harness.run_records), or None: nothing extra recorded
    record: Mapping[str, Any] | None = None

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> TrainSettings:
        names = cls.__dataclass_fields__
        return cls(**{k: train[k] for k in names if k in train})


@dataclass
class History:
    """What a run measured. ``records[i]`` is the flat metric dict of epoch ``records[i]['epoch']``."""

    records: list[dict[str, float]] = field(default_factory=list)
    status: str = "completed"
    reason: str = ""
    epochs_to_target: int | None = None
    time_to_target_s: float | None = None
    steps: int = 0
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    throughput: float = float("nan")
    #: why ``throughput`` is NaN (not measured), or "" when it was measured
    throughput_note: str = ""
    #: trainable parameters of the network (capacity claims R1, R2, R8 correlate with it)
    n_params: float = float("nan")

    def metric(self, name: str) -> list[float]:
        """The series of ``name`` over the recorded epochs (NaN where absent)."""
        return [r.get(name, float("nan")) for r in self.records]

    @property
    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for r in self.records:
            names.update(dict.fromkeys(r))
        names.pop("epoch", None)
        return list(names)

    def final(self, name: str) -> float:
        for r in reversed(self.records):
            v = r.get(name)
            if v is not None:
                return v
        return float("nan")

    def best(self, name: str, mode: str | None = None) -> float:
        values = [v for v in self.metric(name) if math.isfinite(v)]
        if not values:
            return float("nan")
        return (min if (mode or direction_of(name)) == "min" else max)(values)

    def summary(self) -> dict[str, float]:
        """Run-level numbers: final and best of every metric, timings, steps."""
        out: dict[str, float] = {}
        for name in self.metric_names:
            if name.startswith(("train/", "val/", "test/")):
                out[f"final/{name}"] = self.final(name)
                out[f"best/{name}"] = self.best(name)
        out["time/train_s"] = self.train_time_s
        out["time/wall_s"] = self.wall_time_s
        out["throughput/samples_per_s"] = self.throughput
        out["steps"] = float(self.steps)
        out["epochs"] = float(self.records[-1]["epoch"]) if self.records else 0.0
        out["epochs_to_target"] = (
            float(self.epochs_to_target) if self.epochs_to_target is not None else math.inf
        )
        out["time_to_target_s"] = (
            self.time_to_target_s if self.time_to_target_s is not None else math.inf
        )
        out["model/n_params"] = self.n_params
        return out


def _regression_metrics(pred: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
    """MAE and R² of one run's predictions ``pred`` (N, ...) against targets ``y`` (N, ...)."""
    n = y.shape[0]
    y2 = y.reshape(n, -1).astype(np.float64)
    resid = pred.reshape(n, -1) - y2
    ss_res = float(np.sum(resid**2))
    ss_tot = float(np.sum((y2 - y2.mean(axis=0)) ** 2))
    return {
        f"{prefix}/mae": float(np.mean(np.abs(resid))),
        f"{prefix}/r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
    }


def _reached(value: float, target: float, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return value <= target if mode == "min" else value >= target


class Trainer:
    """Mini-batch training of a built zoo network on :class:`harness.data.DataSplits`.

    Parameters
    ----------
    network : models.network.Sequential
        A built network (``build_network`` returns one).
    optimizer : models.base.Optimizer
        Updates ``network.params`` in place.
    splits : harness.data.DataSplits
        ``train`` and ``val`` (``test`` is evaluated only at the end, when present).
    settings : TrainSettings
    order_rng : np.random.Generator
        Drives batch order (shuffling or sampling with replacement); nothing else draws from it.
    callbacks : sequence of Callback
    progress : bool
        Show a tqdm progress bar over epochs.
    label : str
        Prefix of the progress bar.
    """

    def __init__(
        self,
        network: Any,
        optimizer: Any,
        splits: Any,
        settings: TrainSettings,
        *,
        order_rng: np.random.Generator,
        callbacks: Sequence[Callback] = (),
        progress: bool = False,
        label: str = "train",
    ) -> None:
        self.network = network
        self.optimizer = optimizer
        self.splits = splits
        self.settings = settings
        self.order_rng = order_rng
        self.callbacks = list(callbacks)
        self.progress = progress
        self.label = label
        self.history = History(n_params=float(network.n_params))
        self._steps = 0
        self._timed_steps = 0
        self._timed_samples = 0
        self._timed_time = 0.0
        self._initial_loss: float | None = None
        self._best_monitor: float | None = None
        self._since_best = 0
        self.recorder = self._make_recorder()

    def _make_recorder(self) -> Any:
        if not self.settings.record:
            return None
        from harness.run_records import RunRecorder, resolve_record

        s, n = self.settings, self.splits.train.n
        total = s.epochs * math.ceil(n / s.batch_size)
        if s.max_steps is not None:
            total = min(total, s.max_steps)
        spec = resolve_record(s.record)
        assert spec is not None
        return RunRecorder(spec, self.splits.train.X, self.splits.train.y, total_steps=total)

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, split: Any, prefix: str) -> dict[str, float]:
        net, bs = self.network, self.settings.eval_batch_size
        out: dict[str, float] = {}
        with np.errstate(all="ignore"):
            metrics = net.evaluate(split.X, split.y, batch_size=bs)
        for key, value in metrics.items():
            out[f"{prefix}/{key}"] = float(value)
        if getattr(net.loss, "task", "classification") != "classification":
            with np.errstate(all="ignore"):
                pred = net.predict(split.X, batch_size=bs)
            out.update(_regression_metrics(pred, split.y, prefix))
        return out

    def _evaluates_train(self, epoch: int) -> bool:
        return self.settings.eval_train or epoch == 0

    def _epoch_record(
        self, epoch: int, extra: Mapping[str, float], evaluated: Evaluated | None = None
    ) -> dict[str, float]:
        """The record of ``epoch``; ``evaluated`` holds the split metrics when a caller measured
        them already (:class:`StackedTrainer` evaluates every replicate in one pass)."""
        record: dict[str, float] = {"epoch": float(epoch)}
        record.update(extra)
        if self._evaluates_train(epoch):
            record.update(
                evaluated["train"] if evaluated else self._evaluate(self.splits.train, "train")
            )
        record.update(evaluated["val"] if evaluated else self._evaluate(self.splits.val, "val"))
        record["lr"] = float(getattr(self.optimizer, "current_lr", float("nan")))
        if self.recorder is not None:  # train.record: weights, units, step windows
            record.update(self.recorder.on_epoch(epoch, self.network))
        return record

    def _telemetry_at_init(self) -> dict[str, float]:
        from models.telemetry import layer_statistics

        n = min(self.splits.train.n, 256)
        with np.errstate(all="ignore"):
            stats = layer_statistics(self.network, self.splits.train.X[:n], self.splits.train.y[:n])
        return {k: float(v) for k, v in stats.items()}

    # -- batches --------------------------------------------------------------------------------
    def _epoch_plan(self) -> tuple[str, Any]:
        """This epoch's batch order, drawn from ``order_rng``: ``("shuffle", perm)`` (one
        permutation, batches are its consecutive slices) or ``("replacement", [idx, ...])``
        (the book's Trainer: ``np.random.choice(train_size, batch_size)`` per batch).

        The stacked trainer draws the same plan from each replicate's stream, so a replicate's
        batches do not depend on how it is trained.
        """
        n, bs = self.splits.train.X.shape[0], self.settings.batch_size
        if self.settings.sampling == "replacement":
            return "replacement", [
                self.order_rng.choice(n, size=min(bs, n)) for _ in range(math.ceil(n / bs))
            ]
        return "shuffle", self.order_rng.permutation(n)

    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        X, y = self.splits.train.X, self.splits.train.y
        n, bs = X.shape[0], self.settings.batch_size
        kind, plan = self._epoch_plan()
        if kind == "replacement":
            for idx in plan:
                yield X[idx], y[idx]
            return
        # one gather per epoch, then contiguous views: cheaper than a fancy index per batch
        Xp, yp = X[plan], y[plan]
        for start in range(0, n, bs):
            yield Xp[start : start + bs], yp[start : start + bs]

    # -- the loop -------------------------------------------------------------------------------
    def _check_stop(self, epoch: int, record: Mapping[str, float]) -> tuple[str, str] | None:
        s = self.settings
        target = s.target
        if target is not None and self.history.epochs_to_target is None:
            mode = direction_of(target["metric"])
            if _reached(record.get(target["metric"], math.nan), float(target["value"]), mode):
                self.history.epochs_to_target = epoch
                self.history.time_to_target_s = self.history.train_time_s
                if s.stop_at_target:
                    return "target_reached", (
                        f"{target['metric']} reached {target['value']} at epoch {epoch}"
                    )
        es = s.early_stopping
        if es is not None and epoch > 0:
            monitor = es.get("monitor", "val/loss")
            mode = es.get("mode", "auto")
            mode = direction_of(monitor) if mode == "auto" else mode
            value = record.get(monitor, math.nan)
            delta = float(es.get("min_delta", 0.0))
            better = self._best_monitor is None or (
                value < self._best_monitor - delta
                if mode == "min"
                else value > self._best_monitor + delta
            )
            if math.isfinite(value) and better:
                self._best_monitor, self._since_best = value, 0
            else:
                self._since_best += 1
                if self._since_best >= int(es.get("patience", 5)):
                    return "early_stopped", (
                        f"{monitor} did not improve for {self._since_best} epochs "
                        f"(best {self._best_monitor:.6g})"
                    )
        return None

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        net, opt = self.network, self.optimizer
        acc = _EpochAccumulator()
        perf = time.perf_counter
        for xb, yb in self._batches():
            t0 = perf()
            loss = net.train_step(xb, yb, opt)
            dt = perf() - t0
            reason = self._after_step(epoch, acc, float(loss), dt, xb.shape[0])
            if reason:
                raise _Diverged(reason)
            if self.settings.max_steps is not None and self._steps >= self.settings.max_steps:
                break
        return self._epoch_extra(acc)

    def _after_step(
        self, epoch: int, acc: _EpochAccumulator, loss: float, dt: float, n: int
    ) -> str | None:
        """Count one finished step; the divergence reason when the loss exploded, else None."""
        s = self.settings
        self._steps += 1
        acc.n_batches += 1
        acc.batch_losses += loss
        acc.time += dt
        acc.samples += n
        if self._steps > s.warmup_steps:
            self._timed_steps += 1
            self._timed_samples += n
            self._timed_time += dt
        if self.recorder is not None:  # after the timed step: not part of step times
            self.recorder.on_step(self._steps, loss, self.network)
        if s.telemetry is True:  # "init": the network computes no per-step statistics
            for k, v in self.network.last_telemetry.items():
                acc.telemetry[k] = acc.telemetry.get(k, 0.0) + v
        if self._initial_loss is not None and loss > s.divergence_factor * max(
            self._initial_loss, 1e-12
        ):
            return (
                f"exploding loss {loss:.4g} > {s.divergence_factor:g} x initial "
                f"{self._initial_loss:.4g} at epoch {epoch}, step {self._steps}"
            )
        return None

    def _epoch_extra(self, acc: _EpochAccumulator) -> dict[str, float]:
        self.history.train_time_s += acc.time
        self.history.steps = self._steps
        out = {
            "train/batch_loss": acc.batch_losses / max(acc.n_batches, 1),
            "time/epoch_train_s": acc.time,
            "throughput/samples_per_s": acc.samples / acc.time if acc.time > 0 else math.nan,
            "steps": float(self._steps),
        }
        for k, v in acc.telemetry.items():
            out[k] = v / acc.n_batches
        return out

    def epochs(self) -> Iterator[dict[str, float]]:
        """Run the loop lazily, yielding each epoch's record (epoch 0 first).

        The history is complete (status, reason, timings) when the generator is exhausted.
        """
        self._begin()
        try:
            record, stop = self._first_record()
            yield record
            if self._after_record(0, record, stop):
                return
            for epoch in range(1, self.settings.epochs + 1):
                try:
                    with np.errstate(over="ignore", invalid="ignore"):
                        extra = self._train_epoch(epoch)
                except NonFiniteError as exc:
                    self.mark_diverged(f"non-finite loss at epoch {epoch}: {exc}")
                    return
                except _Diverged as exc:
                    self.mark_diverged(str(exc))
                    return
                record, stop = self._record(epoch, extra)
                yield record
                if self._after_record(epoch, record, stop):
                    return
            self.history.status, self.history.reason = (
                "completed",
                f"trained {self.settings.epochs} epochs",
            )
        except KeyboardInterrupt:
            self.history.status = "interrupted"
            self.history.reason = "interrupted by the user (Ctrl-C)"
            raise
        finally:
            self._finish()

    # the pieces of the loop, shared with StackedTrainer -----------------------------------------
    def _begin(self) -> None:
        self._wall0 = time.perf_counter()
        self._bar = None
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.settings.epochs, desc=self.label, unit="epoch", leave=False)

    def _first_record(
        self, evaluated: Evaluated | None = None
    ) -> tuple[dict[str, float], tuple[str, str] | None]:
        extra = self._telemetry_at_init() if self.settings.telemetry else {}
        record = self._epoch_record(0, extra, evaluated)
        self._initial_loss = record.get("train/loss", math.nan)
        if not math.isfinite(self._initial_loss):
            self._initial_loss = None
        self.history.records.append(record)
        return record, self._check_stop(0, record)

    def _record(
        self, epoch: int, extra: Mapping[str, float], evaluated: Evaluated | None = None
    ) -> tuple[dict[str, float], tuple[str, str] | None]:
        record = self._epoch_record(epoch, extra, evaluated)
        self.history.records.append(record)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                {
                    k.split("/")[0][0] + k.split("/")[1][:3]: f"{v:.4g}"
                    for k, v in record.items()
                    if k in ("train/loss", "val/loss", "val/accuracy")
                }
            )
        return record, self._check_stop(epoch, record)

    def _after_record(
        self, epoch: int, record: Mapping[str, float], stop: tuple[str, str] | None
    ) -> bool:
        """Run the callbacks after a yielded record; True when the run is over (status set)."""
        h, s = self.history, self.settings
        try:
            self._run_callbacks(epoch, record)
        except StopTraining as exc:
            h.status, h.reason = exc.status, exc.reason
            return True
        if stop:
            h.status, h.reason = stop
            return True
        if epoch > 0 and s.max_steps is not None and self._steps >= s.max_steps:
            h.status, h.reason = "max_steps", f"reached max_steps={s.max_steps}"
            return True
        return False

    def mark_diverged(self, reason: str) -> None:
        self.history.status, self.history.reason = "diverged", reason

    def _finish(self) -> None:
        h, s = self.history, self.settings
        if self._bar is not None:
            self._bar.close()
        h.steps = self._steps
        h.wall_time_s = time.perf_counter() - self._wall0
        h.throughput = self._timed_samples / self._timed_time if self._timed_time > 0 else math.nan
        if not self._timed_time > 0 and not h.throughput_note:
            h.throughput_note = (
                f"not measured: the run ({self._steps} training steps) was shorter than "
                f"the {s.warmup_steps} warm-up steps (train.warmup_steps)"
                if self._steps
                else "not measured: no training step"
            )
        if (
            h.status in ("completed", "max_steps", "early_stopped")
            and self._classifies()
            and len(h.records) > CHANCE_MIN_EPOCHS  # epoch 0 plus the trained epochs
            and not self._dummy_labels()
        ):
            why = chance_reason(h.records, chance_level(self.splits.val.y), self._modal_share())
            if why:
                h.status, h.reason = "diverged", why
        if self.splits.test is not None and h.records and h.status != "diverged":
            h.records[-1].update(self._evaluate(self.splits.test, "test"))

    def _modal_share(self) -> float:
        """Share of the validation inputs given the most frequent predicted class."""
        try:
            with np.errstate(all="ignore"):
                out = self.network.predict(
                    self.splits.val.X, batch_size=self.settings.eval_batch_size
                )
        except Exception:  # a broken network has no share; the other criteria still apply
            return math.nan
        out = np.asarray(out).reshape(out.shape[0], -1)
        if out.shape[0] == 0 or out.shape[1] < 2:
            return math.nan
        _, counts = np.unique(out.argmax(axis=1), return_counts=True)
        return float(counts.max() / out.shape[0])

    def _dummy_labels(self) -> bool:
        """True for probe data whose labels carry no signal (chance is all there is to reach)."""
        meta = getattr(self.splits, "meta", None) or {}
        builder = meta.get("builder") or {}
        return "dummy" in (meta.get("labels"), builder.get("labels"))

    def _classifies(self) -> bool:
        net = self.network
        return getattr(getattr(net, "loss", None), "task", "classification") == "classification"

    def _run_callbacks(self, epoch: int, record: Mapping[str, float]) -> None:
        for cb in self.callbacks:
            cb(epoch, record)

    def run(self) -> History:
        """Train to the end and return the history."""
        for _ in self.epochs():
            pass
        return self.history


#: Whether a trial's replicate seeds train stacked (one batched model, :mod:`models.stacked`)
#: when the model allows it. The sweep runner and ``harness reproduce`` read it as the default of
#: their ``stack`` setting; ``--no-stack`` turns it off for one command.
STACK_REPLICATES = True

#: Metric-name prefixes of timing measures. A stacked step trains every replicate at once, so its
#: time is no single run's: studies and claims that measure any of these train unstacked.
TIMING_PREFIXES = ("time/", "throughput/", "time_to_target")
#: The claim measures that read timing columns.
TIMING_MEASURES = ("time_to",)

STACKED_TIMING_NOTE = (
    "not measured: trained stacked with the other replicates of its configuration (one batched "
    "model), so no step time is this run's alone; timing measures run unstacked (--no-stack)"
)


def strings_in(obj: Any, depth: int = 8) -> Iterator[str]:
    """Every string in a nesting of mappings (keys and values), sequences and objects with
    attributes (dataclasses, components), ``depth`` levels deep."""
    if isinstance(obj, str):
        yield obj
    elif depth <= 0:
        return
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from strings_in(k, depth - 1)
            yield from strings_in(v, depth - 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from strings_in(v, depth - 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from strings_in(dict(vars(obj)), depth - 1)


def needs_timing(obj: Any) -> bool:
    """Whether a metric name, a measure spec or any nesting of them refers to a timing measure:
    a name under :data:`TIMING_PREFIXES` or a measure named in :data:`TIMING_MEASURES`."""
    return any(s.startswith(TIMING_PREFIXES) or s in TIMING_MEASURES for s in strings_in(obj))


class StackedTrainer:
    """The replicates of one configuration trained together as one stacked model.

    Takes one :class:`Trainer` per replicate (same settings and data; networks and streams of
    their own seeds) and drives them epoch by epoch like the unstacked lockstep loop: every
    trainer checks its own targets and early stopping, runs its own callbacks and fills its own
    :class:`History`, which equals the unstacked run's to float rounding
    (``tests/harness/test_stacked_train.py``). The training steps are batched
    (:class:`models.stacked.StackedSequential`; each replicate's batches come from its own order
    stream, :meth:`Trainer._epoch_plan`), and so is the per-epoch evaluation: one stacked
    evaluation-mode pass per split gives every live replicate its ``train/...`` and ``val/...``
    metrics (:meth:`StackedSequential.evaluate`). Only the end of a run (the test split, the
    chance check) uses a replicate's own network.

    A replicate that diverges is marked ``diverged`` with its reason (the epoch and step) and
    leaves the stack mid-epoch; one that stops (target, early stopping, a callback's
    StopTraining) leaves after its epoch. The others go on.

    Timing: the history's step times, throughput and time to target are NaN, with
    :data:`STACKED_TIMING_NOTE` as ``throughput_note``; runs that measure time train unstacked.
    """

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        why = self.unsupported(trainers)
        if why:
            raise ValueError(why)
        self.trainers = list(trainers)

    @staticmethod
    def unsupported(trainers: Sequence[Trainer]) -> str | None:
        """Why these trainers cannot train stacked, or None."""
        from models.network import Sequential
        from models.optimizers import GradientOptimizer
        from models.stacked import STACK_MAX_MACS, stacking_pays, stacking_unsupported

        if len(trainers) < 2:
            return "one replicate: nothing to stack"
        first = trainers[0]
        for i, t in enumerate(trainers):
            if not isinstance(t.network, Sequential):
                return f"replicate {i}: the network is not a models.Sequential"
            why = stacking_unsupported(t.network)
            if why:
                return why
            if not isinstance(t.optimizer, GradientOptimizer) or t.optimizer.iterations:
                return f"replicate {i}: the optimizer is not a fresh zoo optimizer"
            if t.optimizer.get_config() != first.optimizer.get_config():
                return f"replicate {i}: its optimizer differs from replicate 0's"
            if t.settings != first.settings:
                return f"replicate {i}: its train settings differ from replicate 0's"
            if t.recorder is not None:
                return "train.record reads the network at every step: replicates train one by one"
            if t.splits.train is not first.splits.train or t.splits.val is not first.splits.val:
                return f"replicate {i}: its training data differ from replicate 0's"
            if t.network.get_config() != first.network.get_config():
                return f"replicate {i}: its network differs from replicate 0's"
        widths = [first.network.input_shape[0]] if first.network.input_shape else []
        widths += [
            layer.params["W"].shape[1] for layer in first.network.layers if "W" in layer.params
        ]
        batch = first.settings.batch_size
        if not stacking_pays(len(trainers), batch, widths):
            return (
                f"at batch {batch} this network's step is GEMM-bound (over "
                f"{STACK_MAX_MACS:,} multiply-adds per replicate): unstacked is as fast"
            )
        return None

    def run(self) -> list[History]:
        for _ in self.epochs():
            pass
        return [t.history for t in self.trainers]

    def epochs(self) -> Iterator[list[tuple[int, dict[str, float]]]]:
        """Yield, per epoch, ``(replicate index, record)`` of every replicate still training.

        Callbacks of epoch ``e`` run when the generator resumes, before epoch ``e + 1`` trains
        (as in the unstacked lockstep loop), so a caller may decide on pruning in between.
        """
        import copy

        from models.stacked import StackedSequential

        trainers = self.trainers
        for t in trainers:
            t._begin()
            t.history.throughput_note = STACKED_TIMING_NOTE
        alive = list(range(len(trainers)))
        try:
            stack = StackedSequential([t.network for t in trainers])
            optimizer = copy.deepcopy(trainers[0].optimizer)
            rows = list(alive)  # stack row -> trainer index
            evaluated = self._evaluate(stack, rows, 0)
            firsts = {i: trainers[i]._first_record(evaluated[i]) for i in alive}
            yield [(i, firsts[i][0]) for i in alive]
            ended = {i for i in alive if trainers[i]._after_record(0, *firsts[i])}
            alive = [i for i in alive if i not in ended]
            for epoch in range(1, trainers[0].settings.epochs + 1):
                if not alive:
                    return
                if ended:  # stopped after their epoch: out of the stack
                    stack.drop([r for r, i in enumerate(rows) if i in ended], optimizer)
                    rows = [i for i in rows if i not in ended]
                with np.errstate(over="ignore", invalid="ignore"):
                    extras, rows = self._train_epoch(epoch, stack, optimizer, rows)
                alive = [i for i in alive if i in extras]
                evaluated = self._evaluate(stack, rows, epoch) if rows else {}
                out = {i: trainers[i]._record(epoch, extras[i], evaluated[i]) for i in alive}
                yield [(i, out[i][0]) for i in alive]
                ended = {i for i in alive if trainers[i]._after_record(epoch, *out[i])}
                alive = [i for i in alive if i not in ended]
            for i in alive:
                t = trainers[i]
                t.history.status, t.history.reason = (
                    "completed",
                    f"trained {t.settings.epochs} epochs",
                )
        except KeyboardInterrupt:
            for i in alive:
                trainers[i].history.status = "interrupted"
                trainers[i].history.reason = "interrupted by the user (Ctrl-C)"
            raise
        finally:
            for t in trainers:
                t._finish()

    def _evaluate(self, stack: Any, rows: list[int], epoch: int) -> dict[int, Evaluated]:
        """Every stacked replicate's split metrics of ``epoch`` (what :meth:`Trainer._evaluate`
        measures), from one stacked evaluation pass per split; by trainer index."""
        first = self.trainers[rows[0]]
        bs = first.settings.eval_batch_size
        regression = getattr(first.network.loss, "task", "classification") != "classification"
        splits = [("val", first.splits.val)]
        if first._evaluates_train(epoch):
            splits.insert(0, ("train", first.splits.train))
        out: dict[int, dict[str, dict[str, float]]] = {i: {} for i in rows}
        for prefix, split in splits:
            with np.errstate(all="ignore"):
                metrics, preds = stack.evaluate(
                    split.X, split.y, batch_size=bs, predictions=regression
                )
            for r, i in enumerate(rows):
                rec = {f"{prefix}/{k}": float(v) for k, v in metrics[r].items()}
                if preds is not None:
                    rec.update(_regression_metrics(preds[r], split.y, prefix))
                out[i][prefix] = rec
        return dict(out)

    def _train_epoch(
        self, epoch: int, stack: Any, optimizer: Any, rows: list[int]
    ) -> tuple[dict[int, dict[str, float]], list[int]]:
        """One epoch of every stacked replicate; returns the extras of those still alive (the
        diverged are marked in their trainers and dropped from the stack) and the new rows."""
        trainers = self.trainers
        t0 = trainers[rows[0]]
        X, y = t0.splits.train.X, t0.splits.train.y
        n, bs = X.shape[0], t0.settings.batch_size
        max_steps = t0.settings.max_steps
        plans = [trainers[i]._epoch_plan() for i in rows]
        if plans[0][0] == "shuffle":
            perms = np.stack([plan for _, plan in plans])  # (R, n)
            Xs, ys = X[perms], y[perms]
            batches: list[Any] = [slice(a, a + bs) for a in range(0, n, bs)]
        else:
            batches = [np.stack([plan[k] for _, plan in plans]) for k in range(len(plans[0][1]))]
        accs = {i: _EpochAccumulator() for i in rows}
        sel = np.arange(len(rows))  # rows of this epoch's batch arrays still in the stack
        full = len(rows)
        for b in batches:
            if isinstance(b, slice):
                xb, yb = Xs[:, b], ys[:, b]
                if len(sel) < full:
                    xb, yb = xb[sel], yb[sel]
            else:
                idx = b[sel]
                xb, yb = X[idx], y[idx]
            losses = stack.train_step(xb, yb, optimizer)
            gone: list[int] = []
            for r, i in enumerate(rows):
                if r in stack.non_finite:
                    trainers[i].mark_diverged(
                        f"non-finite loss at epoch {epoch}: {stack.non_finite[r]}"
                    )
                    gone.append(r)
                    continue
                if stack.telemetry:
                    trainers[i].network.last_telemetry = stack.last_telemetry[r]
                reason = trainers[i]._after_step(
                    epoch, accs[i], float(losses[r]), math.nan, xb.shape[1]
                )
                if reason:
                    trainers[i].mark_diverged(reason)
                    gone.append(r)
            if gone:
                stack.write_back(gone)  # a diverged run keeps its last weights, as unstacked
                stack.drop(gone, optimizer)
                keep = [r for r in range(len(rows)) if r not in gone]
                rows = [rows[r] for r in keep]
                sel = sel[keep]
            if not rows:
                return {}, rows
            if max_steps is not None and trainers[rows[0]]._steps >= max_steps:
                break
        stack.write_back()
        for i in rows:
            trainers[i].optimizer.iterations = optimizer.iterations
        return {i: trainers[i]._epoch_extra(accs[i]) for i in rows}, rows


class _Diverged(Exception):
    pass


@dataclass
class _EpochAccumulator:
    """One run's sums over the steps of an epoch."""

    batch_losses: float = 0.0
    n_batches: int = 0
    time: float = 0.0
    samples: int = 0
    telemetry: dict[str, float] = field(default_factory=dict)


def fit(
    network: Any,
    optimizer: Any,
    splits: Any,
    settings: TrainSettings,
    *,
    order_rng: np.random.Generator,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> History:
    """Train ``network`` and return its :class:`History` (see :class:`Trainer`)."""
    trainer = Trainer(
        network,
        optimizer,
        splits,
        settings,
        order_rng=order_rng,
        callbacks=callbacks,
        progress=progress,
    )
    return trainer.run()
