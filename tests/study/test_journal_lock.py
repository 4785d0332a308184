"""Ctrl-C and the journal's file lock: a SIGINT while the main thread holds the lock is raised
when it is released, with the write done and no lock file left (harness.study.journal_lock)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from harness.study.journal_lock import InterruptSafeLock, install_sigint_handler
from harness.study.storage import make_storage


@pytest.fixture(autouse=True)
def _restore_sigint():
    old = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, old)


def _sigint_now() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs here


def test_a_sigint_inside_the_lock_is_raised_at_its_release(tmp_path: Path):
    journal = tmp_path / "s.journal"
    journal.touch()
    install_sigint_handler()
    lock = InterruptSafeLock(str(journal))
    lock_file = tmp_path / "s.journal.lock"  # Optuna's symlink lock
    lock.acquire()
    _sigint_now()  # held back: no KeyboardInterrupt while the lock is held
    assert os.path.lexists(lock_file)
    with pytest.raises(KeyboardInterrupt):
        lock.release()
    assert not os.path.lexists(lock_file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.journal"]  # no .rename left
    lock.acquire()  # the lock is free again
    lock.release()


def test_a_sigint_outside_the_lock_is_raised_at_once(tmp_path: Path):
    install_sigint_handler()
    with pytest.raises(KeyboardInterrupt):
        _sigint_now()


def test_the_journal_storage_writes_through_the_lock_and_keeps_ctrl_c(tmp_path: Path):
    storage = make_storage(f"journal://{tmp_path / 'studies.journal'}")
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({"x": 1.0})
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1
    with pytest.raises(KeyboardInterrupt):
        _sigint_now()
