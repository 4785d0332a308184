"""Where Optuna studies persist: storage URLs and the objects behind them.

The default is ONE Optuna journal file for every study, ``mlruns/optuna/studies.journal``:
append-only, multi-process safe through file locks, and it had no errors and the lowest overhead
under several writer processes on this project's machines (SQLite RDB storage locks, optuna#820).
One file holds all studies, as Optuna's CLI (``optuna studies --storage ...``) and
optuna-dashboard expect: ``harness dashboard`` shows every study side by side. A study first run
with the older layout (one ``mlruns/optuna/<study>.journal`` per study) keeps its own file, so
it resumes where it stopped. Other URLs:

- ``journal:///abs/path.journal`` or a path ending in ``.journal``: a journal file elsewhere;
- ``redis://host:port/db``: a journal in Redis (several hosts can share it);
- ``postgresql://...``, ``mysql://...``: Optuna's RDB storage (several hosts; see the README);
- ``sqlite:///path.db``: accepted, with a warning that it locks under parallel writers.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "OPTUNA_DIR",
    "SHARED_JOURNAL",
    "default_storage_url",
    "journal_path",
    "legacy_storage_urls",
    "make_storage",
    "storage_kind",
]

JOURNAL_SCHEME = "journal://"
#: where the default journal lives, relative to the working directory
OPTUNA_DIR = Path("mlruns") / "optuna"
#: the one journal file of every study (the default storage)
SHARED_JOURNAL = "studies.journal"


def default_storage_url(study_name: str | None = None, root: str | Path | None = None) -> str:
    """``journal:///<root>/mlruns/optuna/studies.journal`` (absolute): the one place that knows
    the layout.

    A study that already has its own ``<study_name>.journal`` there (the layout before the shared
    file) keeps it. Without ``study_name``: the shared file (what the dashboard opens).
    """
    directory = ((Path(root) if root is not None else Path.cwd()) / OPTUNA_DIR).resolve()
    if study_name is not None:
        legacy = directory / f"{study_name}.journal"
        if legacy.is_file() and legacy.name != SHARED_JOURNAL:
            return f"{JOURNAL_SCHEME}{legacy}"
    return f"{JOURNAL_SCHEME}{directory / SHARED_JOURNAL}"


def legacy_storage_urls(root: str | Path | None = None) -> list[str]:
    """The per-study journal files of the older layout under ``<root>/mlruns/optuna``."""
    directory = ((Path(root) if root is not None else Path.cwd()) / OPTUNA_DIR).resolve()
    if not directory.is_dir():
        return []
    return [
        f"{JOURNAL_SCHEME}{p}"
        for p in sorted(directory.glob("*.journal"))
        if p.name != SHARED_JOURNAL and p.is_file()
    ]


def journal_path(url: str) -> Path | None:
    """The file of a journal storage URL (``journal:///abs`` or a ``.journal`` path), else None."""
    if storage_kind(url) != "journal":
        return None
    return Path(url[len(JOURNAL_SCHEME) :] if url.startswith(JOURNAL_SCHEME) else url)


def storage_kind(url: str) -> str:
    """'journal', 'redis' or 'rdb' for a storage URL."""
    if url.startswith(JOURNAL_SCHEME) or url.endswith(".journal"):
        return "journal"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    if "://" in url:
        return "rdb"
    raise ValueError(
        f"storage {url!r} is not a storage URL; expected a path ending in .journal, "
        "journal:///path, redis://host:port/db, postgresql://..., mysql://... or sqlite:///path"
    )


def make_storage(url: str, *, heartbeat: bool = False) -> Any:
    """An Optuna storage object for ``url`` (see the module docstring); ``heartbeat``: with
    Optuna's trial heartbeat on an RDB storage (the sweep driver's)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    kind = storage_kind(url)
    if kind == "journal":
        path = Path(url[len(JOURNAL_SCHEME) :] if url.startswith(JOURNAL_SCHEME) else url)
        path.parent.mkdir(parents=True, exist_ok=True)
        from harness.study.journal_lock import InterruptSafeLock, install_sigint_handler

        install_sigint_handler()  # a Ctrl-C inside the journal's lock waits for its release
        lock = InterruptSafeLock(str(path))
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    if kind == "redis":
        return optuna.storages.JournalStorage(JournalRedisBackend(url))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        warnings.warn(
            "SQLite Optuna storage locks under parallel writers (optuna#820); "
            "prefer the default journal file or PostgreSQL",
            stacklevel=2,
        )
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        # connections die between long trials on some servers; check them before use
        engine_kwargs = {"pool_pre_ping": True}
    from harness.study.lease import BEAT_S, TTL_S, storage_lock

    # two first-ever drivers would both create Optuna's tables; Optuna's heartbeat (what
    # harness.study.lease reads for drivers on other hosts) is recorded by the driver
    with storage_lock(url, "optuna-schema"), warnings.catch_warnings():
        # heartbeat_interval is "experimental" in Optuna 5: the warning is noise on every sweep
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=max(1, int(BEAT_S)) if heartbeat else None,
            grace_period=int(TTL_S) if heartbeat else None,
        )
