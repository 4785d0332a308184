"""Credentials in storage or tracking URLs are never recorded or printed (issue 10, item 4).

A sweep on PostgreSQL with a password in the URL (the local server trusts any password, so the
sweep really runs) must leave no trace of the password in the MLflow store (tags, params), its
artifacts, the ledger, or what the command prints; an unreachable store with a password must
fail with a one-line error that does not show it either.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from harness.cli import main
from harness.redact import redact_text
from tests.study.test_runner import write_study

SECRET = "hunter2-" + uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:pw@db:5432/o", "postgresql://bob:***@db:5432/o"),
        ("postgresql+psycopg://u:p@ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("mysql://u:x@h/db?sslpassword=k&a=1", "mysql://u:***@h/db?sslpassword=***&a=1"),
        ("http://h:5000/?token=abc", "http://h:5000/?token=***"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("journal://mlruns/optuna/studies.journal", "journal://mlruns/optuna/studies.journal"),
        ("run --storage 'postgresql://a:b@h/d' x", "run --storage 'postgresql://a:***@h/d' x"),
    ],
)
def test_redact_text(url, expected):
    assert redact_text(url) == expected
    assert redact_text(expected) == expected  # idempotent


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _grep_tree(root: Path, needle: bytes) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            hits.append(str(p))
    return hits


def test_an_unreachable_store_with_a_password_fails_without_showing_it(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, "secret-unreachable")
    code = main(
        ["sweep", str(path), "--no-progress", "--storage", f"postgresql://u:{SECRET}@127.0.0.1:9/x"]
    )
    out = capsys.readouterr()
    assert code != 0
    assert SECRET not in out.out + out.err
    assert "u:***@127.0.0.1:9" in out.err
    assert len(out.err.strip().splitlines()) <= 4  # one error line (and a short hint)


@pytest.mark.postgres
def test_a_password_in_the_storage_url_is_nowhere_in_the_store_or_the_output(
    tmp_path, capsys, monkeypatch
):
    if not _listening(5432):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (start one to run this test)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[distributed]')")
    import optuna

    name = f"secret-{uuid.uuid4().hex[:8]}"
    storage = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test"
    path = write_study(tmp_path, name, **{"search.n_trials": 2})
    monkeypatch.chdir(tmp_path)
    tracking = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    try:
        code = main(
            [
                "sweep",
                str(path),
                "--no-progress",
                "--no-plots",
                "--storage",
                storage,
                "--tracking-uri",
                tracking,
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert SECRET not in out.out + out.err
        # the MLflow store (tags, params), its artifacts and the ledger
        assert _grep_tree(tmp_path / "mlruns", SECRET.encode()) == []
        from mlflow import MlflowClient

        client = MlflowClient(tracking)
        exp = client.get_experiment_by_name(name)
        parent = client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'study'")[0]
        assert parent.data.tags["study.storage"].startswith("postgresql://postgres:***@")
        assert "***" in parent.data.tags["command"]
    finally:
        optuna.delete_study(study_name=name, storage=storage)
