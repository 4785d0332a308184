"""The workers a sweep runs its trials on, with at most one trial per free worker in flight.

Why not ``joblib.Parallel`` over a generator of trials: joblib pulls ``n_jobs`` tasks ahead of
the free workers (``dispatch_one_batch`` slices the iterator), so the driver asked Optuna for
trials no worker was running, and one dead worker broke the whole ``Parallel`` call, throwing
those trials away. Here the driver submits a trial only when a worker is free, waits for the
first to finish, and a worker that dies fails only the trials it took (:class:`WorkerDied`),
after which the pool is replaced and the sweep goes on.

Backends (``--backend``): ``loky`` (joblib's reusable process pool, the default),
``multiprocessing`` (a spawn process pool), ``threading``, ``sequential`` (in the driver), and
``dask`` (the current ``distributed`` client, see ``runner._backend_client``). One worker runs
trials in the driver process, as before.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Sequence
from typing import Any

from harness.study.worker import TrialOutcome, TrialTask, execute_trial

__all__ = ["TrialPool", "WorkerDied"]


class WorkerDied(Exception):
    """The worker process running a trial died (killed, out of memory, crashed)."""


class _Inline:
    """A trial run in the driver itself, when waited for."""

    def __init__(self, task: TrialTask) -> None:
        self.task = task
        self.outcome: TrialOutcome | None = None


class TrialPool:
    """Submit trials to ``workers`` workers of ``backend``; wait for the first to finish."""

    def __init__(self, backend: str, workers: int) -> None:
        self.backend = backend
        self.workers = workers
        self.inline = backend == "sequential" or (workers <= 1 and backend != "dask")
        self._executor: Any = None
        self._client: Any = None
        self.broken = False

    def _pool(self) -> Any:
        if self.inline:
            return None
        if self.backend == "dask":
            if self._client is None:
                import distributed

                self._client = distributed.get_client()
            return self._client
        if self._executor is None:
            if self.backend == "loky":
                from joblib.externals.loky import get_reusable_executor

                self._executor = get_reusable_executor(max_workers=self.workers, timeout=60)
            elif self.backend == "multiprocessing":
                import multiprocessing

                self._executor = cf.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            elif self.backend == "threading":
                self._executor = cf.ThreadPoolExecutor(self.workers)
            else:
                raise ValueError(f"unknown backend {self.backend!r}")
        return self._executor

    def submit(self, task: TrialTask) -> Any:
        pool = self._pool()
        if pool is None:
            return _Inline(task)
        if self.backend == "dask":
            return pool.submit(execute_trial, task, pure=False)
        try:
            return pool.submit(execute_trial, task)
        except cf.BrokenExecutor:
            # a worker died since the last submit: the trials it broke fail on their own
            # (WorkerDied); this one goes to a fresh pool
            self.restart()
            return self._pool().submit(execute_trial, task)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The handles that are done (at least one, unless ``timeout`` passed first)."""
        if not handles:
            return []
        if self.inline:
            first = handles[0]
            first.outcome = execute_trial(first.task)
            return [first]
        if self.backend == "dask":
            import distributed

            try:
                done = distributed.wait(
                    list(handles), timeout=timeout, return_when="FIRST_COMPLETED"
                )
            except (TimeoutError, distributed.TimeoutError):
                return []
            return [h for h in handles if h in done.done]
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def result(self, handle: Any) -> TrialOutcome:
        """The trial's outcome; :class:`WorkerDied` when its worker died."""
        if isinstance(handle, _Inline):
            assert handle.outcome is not None
            return handle.outcome
        try:
            return handle.result()
        except cf.process.BrokenProcessPool as exc:  # loky's TerminatedWorkerError is one
            self.broken = True
            raise WorkerDied(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":  # dask gave up after the worker died
                raise WorkerDied(str(exc).splitlines()[0]) from exc
            raise

    def restart(self) -> None:
        """A fresh pool after a worker died (loky's reusable executor makes a new one)."""
        self.close(kill=True)
        self.broken = False

    def close(self, *, kill: bool = False) -> None:
        """Shut the pool down; ``kill``: without waiting for running trials."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        with contextlib.suppress(Exception):
            if self.backend == "loky":
                if kill:
                    executor.shutdown(wait=False, kill_workers=True)
            else:
                executor.shutdown(wait=not kill, cancel_futures=kill)
