"""System metrics of a run (``--system-metrics``): CPU and memory sampled with psutil.

The samples use MLflow's own system-metric names (``system/cpu_utilization_percentage``,
``system/system_memory_usage_megabytes``, ``system/system_memory_usage_percentage``) plus the
process's resident memory, so the run page's *System metrics* tab charts them. A sweep samples
in the worker that trains the trial and sends the samples back with the outcome (the driver stays
the only MLflow writer); ``harness train`` samples in its own process.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

__all__ = ["DEFAULT_INTERVAL_S", "SystemSampler"]

#: seconds between samples (MLflow's own monitor uses 10 s; a trial often lasts less)
DEFAULT_INTERVAL_S = 1.0


class SystemSampler:
    """Samples CPU and memory in a background thread between :meth:`start` and :meth:`stop`.

    ``rows`` are ``(metric, value, step)`` with ``step`` the sample index; one sample is taken
    at start and one at stop, so even a short run has two.
    """

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        import psutil

        self.interval_s = interval_s
        self.rows: list[tuple[str, float, int]] = []
        self.timestamps: list[float] = []
        self._process = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step = 0

    def _sample(self) -> None:
        import psutil

        mem = psutil.virtual_memory()
        step = self._step
        self._step += 1
        self.timestamps.append(time.time())
        self.rows += [
            ("system/cpu_utilization_percentage", float(psutil.cpu_percent(interval=None)), step),
            ("system/system_memory_usage_megabytes", (mem.total - mem.available) / 2**20, step),
            ("system/system_memory_usage_percentage", float(mem.percent), step),
            ("system/process_memory_rss_megabytes", self._process.memory_info().rss / 2**20, step),
            ("system/process_cpu_percentage", float(self._process.cpu_percent(None)), step),
        ]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> SystemSampler:
        import psutil

        psutil.cpu_percent(interval=None)  # the first reading of a counter is meaningless
        self._process.cpu_percent(None)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[tuple[str, float, int]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        return list(self.rows)

    def __enter__(self) -> SystemSampler:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
