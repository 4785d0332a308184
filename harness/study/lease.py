"""Several drivers on one study: who owns a trial, who is alive, and one-at-a-time set-up.

Why: Optuna users scale out by starting the same script N times against one storage. Each
driver then must know which RUNNING trials belong to a live driver (leave them alone) and which
were left by a dead one (recover them), and the study's set-up (the spec check, the parent
MLflow run, the design queue, the repair of a crashed session) must happen once, not N times.

- **Ownership.** Every trial a driver asks gets the user attr ``harness.driver`` = the driver's
  id (``host:pid:start:uuid``) right after ``ask``.
- **Lease.** Each driver beats every :data:`BEAT_S` seconds: it writes its id and the time into
  the study's user attrs (``harness.lease.<id>``), which every storage has (journal file,
  Redis journal, RDB). On an RDB storage it also records Optuna's own heartbeat for each trial
  it runs (``RDBStorage.record_heartbeat``), so Optuna's tools see the trials as alive too.
- **Liveness.** A driver is dead when its lease says it ended, when it runs on this host and its
  process is gone (seen at once, so a resume right after a crash need not wait), or when its
  last beat is older than :data:`TTL_S` (another host that stopped beating). The lease, not
  Optuna's heartbeat, is the judge: Optuna reads stale heartbeats only through a private call,
  and its public ``fail_stale_trials`` would FAIL a dead driver's trials before the repair could
  tell them from their durable outcome and re-enqueue them. Only trials of dead
  drivers are recovered; a trial with no owner yet (the instant between ``ask`` and the owner
  attr) is recovered only when no other driver is alive or it is older than :data:`TTL_S`.
- **Set-up lock.** :func:`storage_lock` serialises the set-up of drivers on one study, with the
  lock the storage can offer: ``flock`` on a file next to a journal or SQLite file, a PostgreSQL
  advisory lock, a MySQL named lock, a Redis lock. The same lock guards the first creation of
  an MLflow SQLite or database store (two first-ever drivers would both run its migrations).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ATTR_OWNER",
    "BEAT_S",
    "LEASE_PREFIX",
    "TTL_S",
    "DriverLease",
    "driver_alive",
    "storage_lock",
]

ATTR_OWNER = "harness.driver"
LEASE_PREFIX = "harness.lease."
#: seconds between two beats of a driver
BEAT_S = 2.0
#: a driver on another host whose last beat is older than this is dead
TTL_S = 30.0
#: how long a driver waits for the set-up lock before it says so and stops
LOCK_WAIT_S = 300.0
_HOST = socket.gethostname()


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pid_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a recycled pid is another process: compare start times where /proc has them
    now = _process_start(pid)
    if start and now and now != start:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def new_driver_id() -> str:
    pid = os.getpid()
    return f"{_HOST}:{pid}:{_process_start(pid)}:{uuid.uuid4().hex[:8]}"


def driver_alive(
    driver_id: str, leases: Mapping[str, Any], *, now: float | None = None, ttl: float = TTL_S
) -> bool:
    """Whether the driver ``driver_id`` is alive, from the study's user attrs ``leases``."""
    now = time.time() if now is None else now
    lease = leases.get(LEASE_PREFIX + driver_id)
    if isinstance(lease, Mapping) and lease.get("ended"):
        return False
    host, _, rest = driver_id.partition(":")
    pid_text, _, rest = rest.partition(":")
    start = rest.partition(":")[0]
    if host == _HOST and pid_text.isdigit():
        return _pid_alive(int(pid_text), start)
    if not isinstance(lease, Mapping):
        return False  # never beat: it died before its first beat (or is not ours)
    return now - float(lease.get("t", 0.0)) < ttl


def heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` records Optuna's trial heartbeat (an RDB storage made with a
    ``heartbeat_interval``), told by its public methods."""
    import optuna

    return (
        isinstance(storage, optuna.storages.RDBStorage)
        and storage.get_heartbeat_interval() is not None
    )


def live_drivers(leases: Mapping[str, Any], *, exclude: str | None = None) -> list[str]:
    """Ids of the drivers alive according to the study's user attrs."""
    out = []
    for key, value in leases.items():
        if not key.startswith(LEASE_PREFIX) or not isinstance(value, Mapping):
            continue
        driver_id = key[len(LEASE_PREFIX) :]
        if driver_id != exclude and driver_alive(driver_id, leases):
            out.append(driver_id)
    return out


class DriverLease:
    """This driver's lease on a study and the trials it owns (beats in a daemon thread)."""

    def __init__(self, storage: Any, study_id: int, *, beat_s: float = BEAT_S) -> None:
        # the storage object the driver built (harness.study.storage.make_storage) and the
        # study's id in it: public BaseStorage calls only, never the study's private handle
        self.storage = storage
        self.study_id = study_id
        self.heartbeat = heartbeat_enabled(storage)
        self.id = new_driver_id()
        self.key = LEASE_PREFIX + self.id
        self.beat_s = beat_s
        self._trials: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.time()

    def beat(self, *, ended: bool = False) -> None:
        payload = {"t": time.time(), "host": _HOST, "pid": os.getpid(), "ended": ended}
        self.storage.set_study_user_attr(self.study_id, self.key, payload)
        if self.heartbeat and not ended:
            with self._lock:
                trials = list(self._trials)
            for trial_id in trials:
                with contextlib.suppress(Exception):  # the trial may have just finished
                    self.storage.record_heartbeat(trial_id)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="harness-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.beat_s):
            # a storage hiccup must not kill the driver; the next beat tries again
            with contextlib.suppress(Exception):
                self.beat()

    def claim(self, trial_id: int) -> None:
        """Mark ``trial_id`` as this driver's (call right after ``ask``)."""
        self.storage.set_trial_user_attr(trial_id, ATTR_OWNER, self.id)
        with self._lock:
            self._trials.add(trial_id)
        if self.heartbeat:
            with contextlib.suppress(Exception):
                self.storage.record_heartbeat(trial_id)

    def release(self, trial_id: int) -> None:
        with self._lock:
            self._trials.discard(trial_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.beat(ended=True)

    def owner_alive(self, trial: Any, leases: Mapping[str, Any]) -> bool:
        """Whether ``trial`` (RUNNING, or finished without its record) belongs to a live driver
        other than this one (its owner's lease: see the module doc)."""
        owner = trial.user_attrs.get(ATTR_OWNER)
        if owner == self.id:
            return False
        if owner is None:
            # asked an instant ago by a live driver, or left by a driver that died in that
            # instant: the first only while some other driver is alive and the trial is young
            start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            young = time.time() - start < TTL_S
            return young and bool(live_drivers(leases, exclude=self.id))
        return driver_alive(str(owner), leases)


# -- locks ---------------------------------------------------------------------------------------
def _lock_key(name: str) -> int:
    """A signed 64-bit key for a PostgreSQL advisory lock."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def file_lock(path: str | Path, *, what: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed), waited for at most ``wait_s``."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{what}: another process held the lock {path} for over {wait_s:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _journal_path(url: str) -> Path | None:
    from harness.study.storage import JOURNAL_SCHEME

    if url.startswith(JOURNAL_SCHEME):
        return Path(url[len(JOURNAL_SCHEME) :])
    if url.endswith(".journal") and "://" not in url:
        return Path(url)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


@contextlib.contextmanager
def storage_lock(url: str, name: str, *, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold an exclusive lock named ``name`` in the store ``url`` names (see the module doc).

    A store that offers no lock (an HTTP tracking server: it serialises its own writes) gives
    no lock.
    """
    what = f"lock {name!r}"
    path = _journal_path(url)
    if path is not None:
        tag = zlib.crc32(name.encode()) & 0xFFFFFFFF
        with file_lock(path.with_name(f".{path.name}.{tag:08x}.lock"), what=what, wait_s=wait_s):
            yield
        return
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        import redis

        client = redis.Redis.from_url(url)
        lock = client.lock(f"harness:lock:{name}", timeout=wait_s, blocking_timeout=wait_s)
        if not lock.acquire():
            raise TimeoutError(f"{what}: not acquired within {wait_s:.0f} s")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                lock.release()
        return
    if scheme in ("postgresql", "mysql"):
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as con:
                if scheme == "postgresql":
                    key = _lock_key(name)
                    con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    con.commit()
                    try:
                        yield
                    finally:
                        con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        con.commit()
                else:
                    lock_name = "harness:" + hashlib.sha1(name.encode()).hexdigest()[:40]
                    got = con.execute(
                        sqlalchemy.text("SELECT GET_LOCK(:n, :t)"), {"n": lock_name, "t": wait_s}
                    ).scalar()
                    if got != 1:
                        raise TimeoutError(f"{what}: not acquired within {wait_s:.0f} s")
                    try:
                        yield
                    finally:
                        con.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name})
        finally:
            engine.dispose()
        return
    yield
