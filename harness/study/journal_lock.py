"""Optuna's journal file lock, with Ctrl-C held back while the main thread takes or holds it.

Why: a ``KeyboardInterrupt`` raised inside Optuna's :class:`JournalFileSymlinkLock` breaks it.
Raised inside ``release`` before the lock file is renamed, Optuna's handler unlinks a file that
was never made and a ``FileNotFoundError`` replaces the interrupt (a Ctrl-C'd sweep then stopped
with status 1 and that error, and the lock file stayed until Optuna's 30 s grace period).
Raised inside ``acquire`` while another writer holds the lock, Optuna's handler releases the
lock, which is the other writer's. So a SIGINT that arrives while the main thread is between
``acquire`` and the end of ``release`` is kept, and raised as ``KeyboardInterrupt`` the moment
the lock is released: the journal write completes, the lock is left clean.

Other threads never get a ``KeyboardInterrupt`` (Python raises it in the main thread only); the
handler is installed only over Python's default one, so it changes nothing outside the lock.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from optuna.storages.journal import JournalFileSymlinkLock

__all__ = ["InterruptSafeLock", "install_sigint_handler"]

_held = 0  # how many of these locks the main thread is taking or holding
_pending = False  # a SIGINT came while it was


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _held:
        _pending = True
        return
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt


def install_sigint_handler() -> None:
    """Hold SIGINT back inside the locks (main thread, default SIGINT handler only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def _enter() -> bool:
    global _held
    if threading.current_thread() is not threading.main_thread():
        return False
    _held += 1
    return True


def _leave() -> None:
    global _held, _pending
    _held -= 1
    if _held == 0 and _pending:
        _pending = False
        raise KeyboardInterrupt


class InterruptSafeLock(JournalFileSymlinkLock):
    """:class:`JournalFileSymlinkLock` (Optuna's default) with Ctrl-C held back (module
    docstring); call :func:`install_sigint_handler` in the main thread for it to take effect."""

    def __init__(self, filepath: str) -> None:
        super().__init__(filepath)
        # per thread (a driver's lease thread writes through the same lock): inside acquire,
        # where Optuna itself calls release to clear a stale lock
        self._local = threading.local()

    def acquire(self) -> bool:
        main = _enter()
        self._local.acquiring = True
        try:
            return super().acquire()
        except BaseException:
            if main:
                _leave()
            raise
        finally:
            self._local.acquiring = False

    def release(self) -> None:
        if getattr(self._local, "acquiring", False):
            super().release()  # Optuna clearing a stale lock: still acquiring
            return
        main = threading.current_thread() is threading.main_thread()
        try:
            super().release()
        finally:
            if main:
                _leave()
