"""``harness/`` reaches Optuna and MLflow through their public API only (issue 12): a private
name comes back with an upgrade that renames it, silently, so this test names each one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: private attributes of Optuna and MLflow objects this project once read (a ``self.``/``cls.``
#: attribute of the project's own classes is not one of them)
PRIVATE_ATTRS = (
    "_storage",
    "_study_id",
    "_trial_id",
    "_pop_waiting_trial_id",
    "_thread_local",
    "_get_stale_trial_ids",
    "_tracking_client",
)
_ATTR = re.compile(r"\b(\w+)\.(" + "|".join(PRIVATE_ATTRS) + r")\b")
#: a private module or attribute under ``optuna.`` / ``mlflow.`` (``optuna.storages._heartbeat``);
#: a dunder such as ``mlflow.__version__`` is public
_MODULE = re.compile(r"\b(optuna|mlflow)(\.\w+)*\._[A-Za-z]")
#: ``from optuna.storages import _heartbeat`` / ``from mlflow.x import _y``
_FROM = re.compile(r"^\s*from\s+(optuna|mlflow)[\w.]*\s+import\s+.*(?<!as )\b_[A-Za-z]")


def private_uses(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of each use of a private Optuna or MLflow name in ``text``."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        attr = any(m.group(1) not in ("self", "cls") for m in _ATTR.finditer(code))
        if attr or _MODULE.search(code) or _FROM.search(code):
            out.append((number, line.strip()))
    return out


@pytest.mark.parametrize(
    ("line", "private"),
    [
        ("sid = study._study_id", True),
        ("self.storage = self.study._storage", True),
        ("t._trial_id in stale", True),
        ("study._thread_local.cached_all_trials = None", True),
        ("trial_id = study._pop_waiting_trial_id()", True),
        ("hb._get_stale_trial_ids(sid)", True),
        ("client._tracking_client.store", True),
        ("from optuna.storages._heartbeat import BaseHeartbeat", True),
        ("from optuna.storages import _heartbeat", True),
        ("import mlflow.tracking._tracking_service.utils", True),
        ("x = mlflow.store._unity_catalog", True),
        ("self._trial_ids[number] = trial_id", False),
        ("self._storage = storage", False),
        ('pip = f"mlflow=={mlflow.__version__}"', False),
        ("from optuna.storages import RDBStorage", False),
        ("from optuna.trial import TrialState as _State", False),
        ("trial_id = self.storage.get_trial_id_from_study_id_trial_number(sid, n)", False),
        ("x = 1  # we no longer read study._storage", False),
    ],
)
def test_the_pattern_tells_private_from_public(line: str, private: bool) -> None:
    assert bool(private_uses(line)) is private, line


def test_harness_uses_no_private_optuna_or_mlflow_api() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line}"
        for path in sorted((REPO / "harness").rglob("*.py"))
        for number, line in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert not found, "private Optuna/MLflow API in harness/ (use the public one):\n" + "\n".join(
        found
    )
