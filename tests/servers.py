"""A local server process for a test: a free port, the start, the readiness poll and the stop.

One place for what the UI, dashboard and tracking-server tests each wrote out: the server runs in
its own session (so a stop reaches its workers too), answers on 127.0.0.1 only, and a test that
cannot start it fails with the server's own output rather than hanging.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    cmd: Sequence[str],
    *,
    ready_url: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 180.0,
    capture: bool = True,
) -> subprocess.Popen:
    """Start ``cmd`` in its own session and return once ``ready_url`` answers.

    ``capture`` keeps the server's stdout and stderr (text) for the test to read; without it they
    go to /dev/null (a long-lived server whose pipe nobody drains would block on a full pipe).
    Fails the test, with the output when there is one, if the server exits or is not ready
    within ``timeout_s``.
    """
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=out,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"{_name(cmd)} exited ({proc.returncode}):\n{text}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    pytest.fail(f"{_name(cmd)} did not answer {ready_url} in {timeout_s:.0f} s")


def _name(cmd: Sequence[str]) -> str:
    """The command as a reader knows it: ``-m harness ui``, not the interpreter's path."""
    return " ".join(map(str, cmd[1:4] if len(cmd) > 1 else cmd))


def stop_server(proc: subprocess.Popen, *, grace_s: float = 30.0) -> str:
    """SIGTERM the server's process group, SIGKILL it after ``grace_s``; its captured output."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it exited between poll and kill
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        out = proc.communicate(timeout=grace_s)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=grace_s)[0]
    return out or ""


def kill_server(proc: subprocess.Popen) -> None:
    """SIGKILL the server's process group (a crash, not a stop) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
