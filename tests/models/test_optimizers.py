"""First updates of every optimizer against values computed by hand, and the lr schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import OPTIMIZERS, SCHEDULES, ParamDict, SpecError, UnknownNameError

P0 = [1.0, -2.0]
GRADS = [[0.5, -1.0], [0.25, 0.5], [-1.0, 2.0]]


def run(spec: dict, steps: int = 3, schedule: dict | None = None) -> list[list[float]]:
    """Parameter values after each of ``steps`` updates with the fixed gradients GRADS."""
    opt = OPTIMIZERS.build(spec, schedule=schedule)
    params = {"w": np.array(P0)}
    history = []
    for g in GRADS[:steps]:
        opt.update(params, {"w": np.array(g)})
        history.append(params["w"].tolist())
    assert opt.iterations == steps
    return history


def test_sgd() -> None:
    # p1 = p0 − 0.1·g1; p2 = p1 − 0.1·g2; p3 = p2 − 0.1·g3
    expected = [[0.95, -1.9], [0.925, -1.95], [1.025, -2.15]]
    np.testing.assert_allclose(run({"name": "sgd", "lr": 0.1}), expected, rtol=1e-12, atol=1e-12)


def test_momentum() -> None:
    # v1 = −0.1·g1 = (−0.05, 0.1); p1 = (0.95, −1.9)
    # v2 = 0.9·v1 − 0.1·g2 = (−0.07, 0.04); p2 = (0.88, −1.86)
    # v3 = 0.9·v2 − 0.1·g3 = (0.037, −0.164); p3 = (0.917, −2.024)
    expected = [[0.95, -1.9], [0.88, -1.86], [0.917, -2.024]]
    got = run({"name": "momentum", "lr": 0.1, "momentum": 0.9})
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_nesterov() -> None:
    # v1 = (−0.05, 0.1); p1 = p0 + 0.9·v1 − 0.1·g1 = (0.905, −1.81)
    # v2 = (−0.07, 0.04); p2 = p1 + 0.9·v2 − 0.1·g2 = (0.817, −1.824)
    expected = [[0.905, -1.81], [0.817, -1.824]]
    got = run({"name": "nesterov", "lr": 0.1, "momentum": 0.9}, steps=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_adagrad() -> None:
    # h1 = g1² = (0.25, 1); p1 = p0 − 0.1·g1/(√h1 + 1e-7)
    # h2 = h1 + g2² = (0.3125, 1.25); p2 = p1 − 0.1·g2/(√h2 + 1e-7)
    eps = 1e-7
    p1 = [1 - 0.1 * 0.5 / (0.5 + eps), -2 + 0.1 * 1.0 / (1.0 + eps)]
    p2 = [
        p1[0] - 0.1 * 0.25 / (math.sqrt(0.3125) + eps),
        p1[1] - 0.1 * 0.5 / (math.sqrt(1.25) + eps),
    ]
    np.testing.assert_allclose(
        run({"name": "adagrad", "lr": 0.1}, steps=2), [p1, p2], rtol=1e-12, atol=1e-12
    )


def test_rmsprop() -> None:
    # h1 = 0.01·g1² = (0.0025, 0.01); p1 = p0 − 0.1·g1/(√h1 + eps)
    # h2 = 0.99·h1 + 0.01·g2² = (0.003100, 0.012400)
    eps = 1e-7
    p1 = [1 - 0.1 * 0.5 / (0.05 + eps), -2 + 0.1 * 1.0 / (0.1 + eps)]
    p2 = [
        p1[0] - 0.1 * 0.25 / (math.sqrt(0.0031) + eps),
        p1[1] - 0.1 * 0.5 / (math.sqrt(0.0124) + eps),
    ]
    got = run({"name": "rmsprop", "lr": 0.1, "decay_rate": 0.99}, steps=2)
    np.testing.assert_allclose(got, [p1, p2], rtol=1e-12, atol=1e-12)


def test_adam_bias_correction() -> None:
    # step 1: m = 0.1·g1, v = 0.001·g1²; m̂ = g1, v̂ = g1² → p1 = p0 − lr·g1/(|g1| + eps)
    eps = 1e-8
    p1 = [1 - 0.1 * 0.5 / (0.5 + eps), -2 + 0.1 * 1.0 / (1.0 + eps)]
    # step 2: m = 0.9·0.1·g1 + 0.1·g2, v = 0.999·0.001·g1² + 0.001·g2²
    m = [0.09 * 0.5 + 0.1 * 0.25, 0.09 * -1.0 + 0.1 * 0.5]  # (0.07, −0.04)
    v = [0.000999 * 0.25 + 0.001 * 0.0625, 0.000999 * 1.0 + 0.001 * 0.25]
    bc1, bc2 = 1 - 0.9**2, 1 - 0.999**2  # 0.19, 0.001999
    p2 = [p1[i] - 0.1 * (m[i] / bc1) / (math.sqrt(v[i] / bc2) + eps) for i in range(2)]
    got = run({"name": "adam", "lr": 0.1}, steps=2)
    np.testing.assert_allclose(got, [p1, p2], rtol=1e-12, atol=1e-12)
    # without bias correction the first step would be lr·(0.1·g)/√(0.001·g²) ≈ 0.316·lr
    assert abs(got[0][0] - P0[0]) == pytest.approx(0.1, rel=1e-6)


def test_adamw_decays_only_decay_keys() -> None:
    opt = OPTIMIZERS.build({"name": "adamw", "lr": 0.1, "weight_decay": 0.5})
    params = ParamDict({"W": np.array([2.0]), "b": np.array([2.0])})
    params.decay_keys = frozenset({"W"})
    opt.update(params, {"W": np.array([0.5]), "b": np.array([0.5])})
    adam_step = 0.1 * 0.5 / (0.5 + 1e-8)
    assert params["W"][0] == pytest.approx(2.0 * (1 - 0.1 * 0.5) - adam_step, rel=1e-12)
    assert params["b"][0] == pytest.approx(2.0 - adam_step, rel=1e-12)


def test_adamw_plain_dict_decays_everything() -> None:
    opt = OPTIMIZERS.build({"name": "adamw", "lr": 0.1, "weight_decay": 0.5})
    params = {"b": np.array([2.0])}
    opt.update(params, {"b": np.array([0.5])})
    assert params["b"][0] == pytest.approx(2.0 * 0.95 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-12)


def test_schedule_multiplies_lr_per_update() -> None:
    opt = OPTIMIZERS.build(
        {"name": "sgd", "lr": 0.1}, schedule={"name": "step", "step_size": 2, "gamma": 0.5}
    )
    lrs = []
    params = {"w": np.zeros(1)}
    for _ in range(5):
        lrs.append(opt.current_lr)
        opt.update(params, {"w": np.ones(1)})
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.025])
    np.testing.assert_allclose(params["w"], [-(0.1 + 0.1 + 0.05 + 0.05 + 0.025)])


@pytest.mark.parametrize(
    ("spec", "steps", "expected"),
    [
        ({"name": "constant"}, [0, 10], [1.0, 1.0]),
        ({"name": "constant", "total_steps": 100}, [5], [1.0]),
        ({"name": "step", "step_size": 3, "gamma": 0.1}, [0, 2, 3, 6], [1.0, 1.0, 0.1, 0.01]),
        ({"name": "exponential", "gamma": 0.5}, [0, 1, 3], [1.0, 0.5, 0.125]),
        ({"name": "cosine", "total_steps": 10}, [0, 5, 10, 20], [1.0, 0.5, 0.0, 0.0]),
        ({"name": "cosine", "total_steps": 4, "min_factor": 0.2}, [0, 2, 4], [1.0, 0.6, 0.2]),
    ],
)
def test_schedule_factors(spec: dict, steps: list[int], expected: list[float]) -> None:
    schedule = SCHEDULES.build(spec)
    np.testing.assert_allclose([schedule.factor(s) for s in steps], expected, atol=1e-12)


def test_schedules_accept_injected_total_steps() -> None:
    for name in SCHEDULES.names():
        spec = {"name": name, "step_size": 10} if name == "step" else name
        schedule = SCHEDULES.build(spec, total_steps=100)
        assert schedule.factor(0) == 1.0


def test_cosine_without_total_steps_says_so() -> None:
    with pytest.raises(ValueError, match=r"total_steps"):
        SCHEDULES.build("cosine").factor(0)


def test_every_optimizer_takes_lr_and_schedule_and_decreases_a_quadratic() -> None:
    for name in OPTIMIZERS.names():
        opt = OPTIMIZERS.build({"name": name, "lr": 0.05}, schedule="constant")
        assert opt.current_lr == pytest.approx(0.05)
        params = {"w": np.array([3.0, -2.0])}
        for _ in range(50):
            opt.update(params, {"w": 2 * params["w"]})  # gradient of |w|²
        assert np.linalg.norm(params["w"]) < np.linalg.norm([3.0, -2.0]), name


def test_bad_optimizer_specs() -> None:
    with pytest.raises(UnknownNameError, match=r"valid optimizer names: adagrad, adam"):
        OPTIMIZERS.build("adamm")
    with pytest.raises(SpecError, match=r"momentum"):
        OPTIMIZERS.build({"name": "sgd", "momentum": 0.9})
    opt = OPTIMIZERS.build({"name": "sgd", "lr": -1.0})
    with pytest.raises(ValueError, match=r"lr must be a number >= 0, got -1.0"):
        opt.update({"w": np.zeros(1)}, {"w": np.zeros(1)})
