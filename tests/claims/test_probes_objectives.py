"""Toy objectives (models/objectives.py): gradients, minima, the book's optimizer paths."""

from __future__ import annotations

import numpy as np
import pytest

from models import OPTIMIZERS
from models.gradcheck import numerical_gradient
from models.objectives import OBJECTIVES, SeedAdaGrad, optimize, sign_changes


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_gradient_matches_a_numerical_gradient(name):
    obj = OBJECTIVES.build(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = obj.random_start(rng)
        num = numerical_gradient(lambda q: obj.value(q), p.copy(), 1e-6)
        np.testing.assert_allclose(obj.gradient(p), num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_listed_minimum_is_a_stationary_point_and_its_own_basin(name):
    obj = OBJECTIVES.build(name)
    for i, m in enumerate(obj.minima):
        assert np.linalg.norm(obj.gradient(np.array(m))) < 1e-4
        assert obj.basin(np.array(m)) == i
    values = [obj.value(np.array(obj.minima[i])) for i in obj.global_minima]
    assert max(values) <= min(obj.value(np.array(m)) for m in obj.minima) + 1e-6


def test_sign_changes_skip_zeros():
    assert sign_changes([1, -1, 1]) == 2
    assert sign_changes([1, 0, 1, 0, -1]) == 1
    assert sign_changes([0, 0]) == 0


# the claim catalogue's pilot of the book's optimizer_compare_naive (§2.5, O1)
BOOK = [
    ({"name": "sgd", "lr": 0.95}, 30, 0.0133, (-0.350, 0.085)),
    ({"name": "momentum", "lr": 0.1, "momentum": 0.9}, 4, 0.0479, (0.896, 0.088)),
    ({"name": "adagrad", "lr": 1.5}, 0, 0.0007, (-0.120, 0.000)),
    ({"name": "adam", "lr": 0.3}, 2, 0.1022, (0.136, 0.318)),
]


@pytest.mark.parametrize(("spec", "flips", "f_end", "end"), BOOK)
def test_book_paths_match_the_catalogue(spec, flips, f_end, end):
    traj = optimize(OBJECTIVES.build("book_bowl"), OPTIMIZERS.build(spec), start=(-7, 2), steps=30)
    assert len(traj.points) == 31 and not traj.diverged
    assert traj.sign_changes(1) == flips
    assert traj.values[-1] == pytest.approx(f_end, abs=5e-4)
    np.testing.assert_allclose(traj.points[-1], end, atol=2e-3)


def test_sgd_effective_step_is_its_lr_and_adagrad_shrinks():
    bowl = OBJECTIVES.build("book_bowl")
    sgd = optimize(bowl, OPTIMIZERS.build({"name": "sgd", "lr": 0.95}), start=(-7, 2), steps=10)
    np.testing.assert_allclose(sgd.effective_steps(), 0.95)
    ada = optimize(bowl, OPTIMIZERS.build({"name": "adagrad", "lr": 1.5}), start=(-7, 2), steps=10)
    eff = ada.effective_steps()
    ok = ~np.isnan(eff).any(axis=1)
    assert np.all(np.diff(eff[ok], axis=0) <= 1e-12)


def test_the_seeds_adagrad_moves_against_any_gradient_and_grows_f():
    bowl = OBJECTIVES.build("book_bowl")
    traj = optimize(bowl, SeedAdaGrad(lr=1.5), start=(-7, 2), steps=30)
    assert traj.values[-1] > traj.values[0]
    # first step: h = g², p -= lr·g²/(|g| + eps) ≈ lr·|g|: always downwards, whatever the sign
    g = bowl.gradient(np.array([-7.0, 2.0]))
    np.testing.assert_allclose(traj.steps[0], -1.5 * np.abs(g), rtol=1e-6)


def test_a_run_that_leaves_the_plane_is_marked_diverged():
    traj = optimize(
        OBJECTIVES.build("book_bowl"),
        OPTIMIZERS.build({"name": "sgd", "lr": 5.0}),
        start=(1, 1),
        steps=100,
    )
    assert traj.diverged and len(traj.points) < 101
    assert np.all(np.isfinite(traj.points))


def test_records_hold_every_point():
    traj = optimize(
        OBJECTIVES.build("himmelblau"),
        OPTIMIZERS.build({"name": "sgd", "lr": 0.01}),
        start=(0, 0),
        steps=5,
    )
    recs = traj.records()
    assert [r["step"] for r in recs] == [0, 1, 2, 3, 4, 5]
    assert recs[0]["f"] == pytest.approx(170.0)  # (0 + 0 − 11)² + (0 + 0 − 7)²
    assert np.isnan(recs[0]["eff_step_x"]) and recs[1]["eff_step_x"] == pytest.approx(0.01)
