"""A design-based study takes only enqueued points, by the storage's compare-and-set, through
Optuna's public API (issue 12): a point another driver takes first is skipped, never replaced
by a fresh trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from harness.study.lease import heartbeat_enabled
from harness.study.runner import SweepRunner
from harness.study.spec import load_study
from harness.study.storage import make_storage
from tests.study.test_runner import write_study


class RacingStorage:
    """The driver's storage, where another driver moves the trials ``steal`` (by number) to
    RUNNING an instant before this driver tries to."""

    def __init__(self, storage: Any, study_id: int, steal: set[int]) -> None:
        self.storage = storage
        self.study_id = study_id
        self.steal = steal

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    def set_trial_state_values(self, trial_id: int, state: TrialState, **kw: Any) -> bool:
        number = self.storage.get_trial(trial_id).number
        if number in self.steal:
            assert self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
        return bool(self.storage.set_trial_state_values(trial_id, state=state, **kw))


def _runner_with_two_points(tmp_path: Path, steal: set[int]) -> tuple[SweepRunner, Any]:
    spec = load_study(write_study(tmp_path, "design_ask"))
    url = f"journal://{tmp_path / 'design_ask.journal'}"
    runner = SweepRunner(spec, storage=url, ledger_dir=tmp_path / "ledger", progress=False)
    assert runner.design_based
    storage = make_storage(url)
    study = runner._open_study(storage)
    for lr in (0.1, 0.2):
        study.enqueue_trial({"train.optimizer.lr": lr, "train.batch_size": 16})
    runner.study_id = storage.get_study_id_from_name(study.study_name)
    runner.storage = RacingStorage(storage, runner.study_id, steal)
    return runner, study


def test_a_point_taken_by_another_driver_is_skipped(tmp_path):
    runner, study = _runner_with_two_points(tmp_path, steal={0})
    trial = runner._ask(study, target=10)
    assert trial is not None and trial.number == 1
    assert trial.params == {} and trial.suggest_float("train.optimizer.lr", 0.01, 1.0) == 0.2
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2


def test_no_fresh_trial_when_other_drivers_took_every_point(tmp_path):
    runner, study = _runner_with_two_points(tmp_path, steal={0, 1})
    assert runner._ask(study, target=10) is None
    assert len(study.get_trials()) == 2  # the two points, nothing asked beyond them


def test_heartbeat_told_by_public_methods(tmp_path):
    journal = make_storage(f"journal://{tmp_path / 'j.journal'}")
    assert not heartbeat_enabled(journal)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    rdb = optuna.storages.RDBStorage(url, heartbeat_interval=1)
    assert heartbeat_enabled(rdb)
    assert not heartbeat_enabled(optuna.storages.RDBStorage(url))
