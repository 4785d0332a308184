"""The default Optuna storage: one shared journal for every study; old per-study files still read."""

from __future__ import annotations

import optuna

from harness.study.storage import (
    SHARED_JOURNAL,
    default_storage_url,
    journal_path,
    legacy_storage_urls,
    make_storage,
)


def test_every_study_goes_to_one_journal_that_lists_them_all(tmp_path):
    a = default_storage_url("alpha", root=tmp_path)
    b = default_storage_url("beta", root=tmp_path)
    assert a == b == default_storage_url(root=tmp_path)
    assert journal_path(a) == (tmp_path / "mlruns" / "optuna" / SHARED_JOURNAL).resolve()
    for name in ("alpha", "beta"):
        study = optuna.create_study(study_name=name, storage=make_storage(a))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    # what optuna-dashboard and `optuna studies` list from that one file
    names = {s.study_name for s in optuna.get_all_study_summaries(storage=make_storage(a))}
    assert names == {"alpha", "beta"}


def test_a_study_of_the_old_layout_keeps_its_own_file(tmp_path):
    old = tmp_path / "mlruns" / "optuna" / "gamma.journal"
    old.parent.mkdir(parents=True)
    study = optuna.create_study(study_name="gamma", storage=make_storage(f"journal://{old}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    url = default_storage_url("gamma", root=tmp_path)
    assert journal_path(url) == old.resolve()
    assert len(optuna.load_study(study_name="gamma", storage=make_storage(url)).trials) == 3
    assert legacy_storage_urls(tmp_path) == [url]
    # another study still goes to the shared file
    assert journal_path(default_storage_url("delta", root=tmp_path)).name == SHARED_JOURNAL
    assert journal_path("postgresql://u@h/db") is None
