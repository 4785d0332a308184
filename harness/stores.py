"""Store probes: is the MLflow store, the Optuna storage or a directory usable, before any write?

Each check takes a few milliseconds on a local store and at most :data:`PROBE_TIMEOUT_S` on a
remote one, creates nothing (a writable directory is tested with a temporary file that is removed
at once), and raises :class:`~harness.config.ConfigError` naming the option, the URI or path and
what went wrong::

    tracking store: --tracking-uri = 'http://127.0.0.1:9' is not allowed: expected a reachable
    MLflow tracking server (connection refused after 0.0 s)

Without the probe an unreachable tracking server is retried by MLflow for about four minutes
(7 retries with exponential back-off) before the first error; :func:`bound_mlflow_retries` caps
that for the rest of the command too (unless the user set the variables).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from harness.config import ConfigError

__all__ = [
    "MLFLOW_HTTP_LIMITS",
    "PROBE_TIMEOUT_S",
    "bound_mlflow_retries",
    "check_dask_scheduler",
    "check_optuna_storage",
    "check_port_free",
    "check_tracking_uri",
    "check_writable_dir",
    "tracking_option",
]

#: seconds a probe of a remote store may take (connection and answer)
PROBE_TIMEOUT_S = 4.0
#: MLflow's HTTP retry settings while a harness command runs, unless already set: at most
#: 2 retries 1 s and 2 s apart, and 30 s per request (MLflow's defaults: 7 retries with a back-off
#: factor of 2 and 120 s per request, about 4 minutes before an error on a dead server)
MLFLOW_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_DB_SCHEMES = ("postgresql", "mysql", "mssql")
_TRACKING_FORMS = (
    "sqlite:///path/mlflow.db, http(s)://host:port (an MLflow server), "
    "postgresql://..., mysql://... or mssql://..."
)


def bound_mlflow_retries() -> None:
    """Cap MLflow's HTTP retries and timeouts for this process (values the user set stay)."""
    for key, value in MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def tracking_option(uri: str | None) -> str:
    """How the user named the tracking store: the option, the variable, or the default."""
    if uri:
        return "--tracking-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "$MLFLOW_TRACKING_URI"
    return "tracking_uri (default)"


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


# -- directories ---------------------------------------------------------------------------------
def _dir_problem(path: Path) -> str | None:
    """Why files cannot be created under ``path`` (which may not exist yet), or None."""
    probe = Path(os.path.abspath(path))
    while not probe.exists():
        if probe.parent == probe:
            return f"{probe} does not exist"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a directory"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".harness-probe-", dir=probe)
    except OSError as exc:
        return f"cannot create files in {probe}: {exc.strerror or exc}"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None


def check_writable_dir(path: str | Path, *, field: str, source: str) -> None:
    """Raise ConfigError unless ``path`` is (or can be created as) a writable directory."""
    problem = _dir_problem(Path(path))
    if problem:
        raise ConfigError(field, str(path), f"a writable directory ({problem})", source=source)


def _sqlite_problem(db: Path, timeout: float) -> str | None:
    """Why ``db`` cannot serve as a writable SQLite database, or None (nothing is created)."""
    if not db.exists():
        return _dir_problem(db.parent)
    if not db.is_file():
        return f"{db} is not a file"
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        return f"cannot open {db}: {exc}"
    try:
        con.execute("PRAGMA schema_version").fetchone()  # reads the header: "not a database"
        con.execute("BEGIN IMMEDIATE")  # takes the write lock: read-only files and locks fail
        con.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"{db}: {exc}"
    finally:
        con.close()
    return None


def _db_problem(url: str, timeout: float) -> str | None:
    """Connect to a database URL with SQLAlchemy and run ``SELECT 1``; the problem or None."""
    import sqlalchemy

    connect_args: dict[str, Any] = {}
    if _scheme(url) in ("postgresql", "mysql"):
        connect_args["connect_timeout"] = max(1, int(timeout))
    try:
        engine = sqlalchemy.create_engine(
            url, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool
        )
    except Exception as exc:  # bad URL or driver not installed
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        with engine.connect() as con:
            con.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        text = str(getattr(exc, "orig", None) or exc)
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    finally:
        engine.dispose()
    return None


def _http_problem(uri: str, timeout: float) -> str | None:
    """GET ``<uri>/health`` (what ``mlflow server`` answers), else one REST API call; the
    problem or None."""
    base = uri.rstrip("/")
    t0 = time.monotonic()
    codes = []
    for path in ("/health", "/api/2.0/mlflow/experiments/search?max_results=1"):
        try:
            with urllib.request.urlopen(base + path, timeout=timeout) as response:
                response.read(64)
            return None
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                return (
                    f"the server refused the credentials (HTTP {exc.code}); set "
                    "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
                )
            if exc.code >= 500:
                return f"the server answered HTTP {exc.code} {exc.reason}"
            codes.append(f"HTTP {exc.code} for {path.split('?')[0]}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                reason = "no answer"
            return f"{reason} after {time.monotonic() - t0:.1f} s"
    return f"it answers, but not as an MLflow server: {', '.join(codes)}"


# -- the tracking store ------------------------------------------------------------------------
def check_tracking_uri(uri: str | None, *, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Probe the MLflow store ``uri`` names (default: the local store); returns the resolved URI.

    SQLite: the database (or its directory) must be writable, and so must the artifact
    directory next to it. A server: it must answer within ``timeout``. A database server: a
    connection must open. Any other scheme is an error.
    """
    from harness.tracking import _artifact_root_for, resolve_tracking_uri

    resolved = resolve_tracking_uri(uri)
    option = tracking_option(uri)

    def fail(allowed: str, hint: str | None = None) -> ConfigError:
        return ConfigError(option, resolved, allowed, source="tracking store", hint=hint)

    scheme = _scheme(resolved)
    if scheme == "sqlite":
        path = resolved[len("sqlite:///") :] if resolved.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise fail("an SQLite database file, sqlite:///path/mlflow.db (not in memory)")
        problem = _sqlite_problem(Path(urllib.parse.unquote(path)), timeout)
        if problem:
            raise fail(f"a writable SQLite database ({problem})")
        root = _artifact_root_for(resolved)
        if root:
            artifacts = Path(urllib.parse.unquote(urllib.parse.urlparse(root).path))
            problem = _dir_problem(artifacts)
            if problem:
                raise fail(f"a store whose artifact directory {artifacts} is writable ({problem})")
        return resolved
    if scheme in ("http", "https"):
        bound_mlflow_retries()
        problem = _http_problem(resolved, timeout)
        if problem:
            raise fail(
                f"a reachable MLflow tracking server ({problem})",
                hint="Start it (`mlflow server --host 127.0.0.1 --port 5000`) or name another "
                "store with --tracking-uri.",
            )
        return resolved
    if scheme in _DB_SCHEMES:
        problem = _db_problem(resolved, timeout)
        if problem:
            raise fail(f"a database MLflow can connect to ({problem})")
        return resolved
    if scheme == "databricks":
        return resolved  # credentials live in the Databricks config; MLflow checks them
    if scheme in ("", "file"):
        raise fail(
            f"a database or server store: {_TRACKING_FORMS} (MLflow 3 no longer writes to a "
            "plain directory store)"
        )
    raise fail(f"a tracking URI of a known scheme: {_TRACKING_FORMS}")


# -- the Optuna storage --------------------------------------------------------------------------
def check_optuna_storage(
    url: str, *, option: str = "--storage", timeout: float = PROBE_TIMEOUT_S
) -> None:
    """Probe an Optuna storage URL (see :mod:`harness.study.storage`) without creating anything."""
    from harness.study.storage import JOURNAL_SCHEME, storage_kind

    def fail(allowed: str) -> ConfigError:
        return ConfigError(option, url, allowed, source="study storage")

    try:
        kind = storage_kind(url)
    except ValueError:
        raise fail(
            "a storage URL: a path ending in .journal, journal:///path, redis://host:port/db, "
            "postgresql://..., mysql://... or sqlite:///path"
        ) from None
    if kind == "journal":
        path = Path(url[len(JOURNAL_SCHEME) :] if url.startswith(JOURNAL_SCHEME) else url)
        if path.exists():
            if not path.is_file():
                raise fail(f"a journal file ({path} is not a file)")
            try:
                with path.open("ab"):
                    pass
            except OSError as exc:
                raise fail(f"a writable journal file ({exc.strerror or exc})") from None
        problem = _dir_problem(path.parent)
        if problem:
            raise fail(f"a journal file in a writable directory ({problem})")
        return
    if kind == "redis":
        import redis

        t0 = time.monotonic()
        try:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            client.ping()
        except Exception as exc:
            raise fail(
                f"a reachable Redis server ({exc} after {time.monotonic() - t0:.1f} s)"
            ) from None
        return
    if _scheme(url) == "sqlite":
        db = Path(urllib.parse.unquote(url[len("sqlite:///") :]))
        problem = _sqlite_problem(db, timeout) if str(db) not in ("", ".") else "no path"
        if not problem and not db.parent.is_dir():
            # MLflow creates the directories of its own SQLite file; Optuna does not
            problem = f"directory {db.parent} does not exist: create it, or use a .journal path"
        if problem:
            raise fail(f"a writable SQLite database ({problem})")
        return
    problem = _db_problem(url, timeout)
    if problem:
        raise fail(f"a database Optuna can connect to ({problem})")


# -- a dask scheduler ----------------------------------------------------------------------------
def check_dask_scheduler(
    address: str, *, option: str = "--scheduler", timeout: float = PROBE_TIMEOUT_S
) -> None:
    """Raise ConfigError unless a TCP connection to the dask scheduler at ``address``
    (``tcp://host:port`` or ``host:port``) opens within ``timeout`` (dask's own client waits
    30 s, after the sweep has opened its MLflow run). Other protocols (``tls://``, ``ucx://``,
    ``inproc://``) are left to dask."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme != "tcp":
        return
    host, _, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit():
        raise ConfigError(
            option, address, "a scheduler address tcp://host:port", source="dask scheduler"
        )
    t0 = time.monotonic()
    try:
        socket.create_connection((host, int(port_text)), timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ConfigError(
            option,
            address,
            f"a running dask scheduler ({reason} after {time.monotonic() - t0:.1f} s)",
            source="dask scheduler",
            hint="Start one (`dask scheduler`, then `dask worker <address>`), or "
            + ("unset it" if option.startswith("$") else "leave out --scheduler")
            + " for a local cluster of --jobs workers.",
        ) from None


# -- servers ---------------------------------------------------------------------------------------
def check_port_free(host: str, port: int, *, option: str = "--port") -> None:
    """Raise ConfigError when ``host:port`` cannot be bound (another server listens there).

    ``SO_REUSEADDR`` is set as servers set it, so a port in TIME_WAIT is not reported as busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(
            "--host",
            host,
            f"an interface address to bind, e.g. 127.0.0.1 ({exc.strerror or exc})",
            source="command line",
        ) from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (99, 49, 10049):  # EADDRNOTAVAIL: not an address of this machine
                raise ConfigError(
                    "--host",
                    host,
                    f"an address of this machine to bind, e.g. 127.0.0.1 ({exc.strerror})",
                    source="command line",
                ) from None
            busy = exc.errno in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
            why = "another process listens there" if busy else (exc.strerror or str(exc))
            raise ConfigError(
                option,
                port,
                f"a free port on {host} ({why})",
                source="command line",
                hint=f"Stop the other server, or pick another port: {option} {port + 1}.",
            ) from None
