"""An arm that never reaches the target within the budget: the effect is a bound, said as such."""

from __future__ import annotations

import numpy as np
import pytest

from harness.claims import evaluate_claim, load_claim
from harness.claims.verdicts import Verdict
from tests.claims.synth import grid_tables
from tests.claims.test_engine import mse_world


def censored_world(cfg, r, rng):
    """As ``mse_world``, but MSE on the softmax never reaches 90 % in seeds 0-3."""
    res = mse_world(cfg, r, rng)
    loss = cfg["train.loss"]
    if isinstance(loss, dict) and loss["output"] == "softmax" and r < 4:
        res["curve"] = [
            {**row, "val/accuracy": min(row["val/accuracy"], 0.5)} for row in res["curve"]
        ]
    return res


def test_a_censored_ratio_is_reported_as_a_bound_at_the_budget():
    claim = load_claim("mse_vs_ce")
    out = evaluate_claim(claim, grid_tables(claim, censored_world))
    cond = out.checks[0].protocols["best_lr"].conditions[0]
    assert cond.verdict is Verdict.SUPPORTED
    text = cond.explanation
    assert "censored: in 6 of 6 seeds the first arm never reached the target" in text
    assert "the effect is a bound, ≥" in text
    assert "censored at the 100-epoch budget" in text


def test_uncensored_ratios_say_nothing_about_censoring():
    claim = load_claim("mse_vs_ce")
    out = evaluate_claim(claim, grid_tables(claim, mse_world))
    cond = out.checks[0].protocols["best_lr"].conditions[0]
    assert "censored" not in cond.explanation


def test_a_stratum_where_an_arm_diverged_is_set_aside_and_said_so():
    claim = load_claim("mse_vs_ce")
    out = evaluate_claim(claim, grid_tables(claim, mse_world))
    cond = out.checks[1].protocols["every_lr"].conditions[0]  # MSE on logits diverges at lr >= 1
    aside = {s.label: s.set_aside for s in cond.strata if s.set_aside}
    assert list(aside) == ["train.optimizer.lr=1", "train.optimizer.lr=3"]
    assert all("diverged in 6 of 6" in v for v in aside.values())
    assert "Set aside" in cond.explanation
    assert f"Per train.optimizer.lr: {len(cond.strata) - 2} supported" in cond.explanation


def test_runs_column_counts_only_the_two_compared_arms():
    claim = load_claim("mse_vs_ce")
    out = evaluate_claim(claim, grid_tables(claim, mse_world))
    cond = out.checks[0].protocols["best_lr"].conditions[0]  # 2 of the 3 losses, at their best lr
    assert cond.n_runs == 2 * claim.replicates


@pytest.fixture(scope="module")
def censored():
    claim = load_claim("mse_vs_ce")
    return claim, evaluate_claim(claim, grid_tables(claim, censored_world))


def _figure(claim, out, spec, protocols):
    from harness.claims.figures import FIGURES, FigureContext

    ctx = FigureContext(out.protocols, claim.measures)
    return FIGURES.build(spec).draw(ctx, protocols, None)


_VS_LR = {
    "name": "measure_vs_param",
    "measure": "epochs_to_target",
    "x": "train.optimizer.lr",
    "hue": "train.loss",
    "logx": True,
}
_BAR = {"name": "bar", "measure": "epochs_to_target", "x": "train.loss", "hue": "protocol"}


@pytest.mark.parametrize(("spec", "protocol"), [(_VS_LR, "every_lr"), (_BAR, "best_lr")])
def test_figures_draw_a_censored_arm_at_the_budget_line_not_drop_it(censored, spec, protocol):
    from harness.claims.figures import _CENSORED

    claim, out = censored
    ax = _figure(claim, out, spec, [protocol]).axes[0]
    labels = ax.get_legend().get_texts()
    assert _CENSORED in [t.get_text() for t in labels]
    assert "budget: 100 epochs" in [t.get_text() for t in labels]
    # the MSE-on-softmax medians are ∞ (4 of 6 seeds censored): triangles at the budget, each
    # with an upward arrow
    tri = [c for c in ax.collections if c.get_paths() and len(c.get_offsets())]
    ys = np.concatenate([c.get_offsets()[:, 1] for c in tri if c.get_label() == _CENSORED])
    assert ys.size >= 1 and np.allclose(ys, 100.0)
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) >= ys.size


def test_figures_without_censoring_draw_no_budget_marks():
    from harness.claims.figures import _CENSORED

    claim = load_claim("mse_vs_ce")
    out = evaluate_claim(claim, grid_tables(claim, mse_world))
    ax = _figure(claim, out, _BAR, ["best_lr"]).axes[0]
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()] if legend is not None else []
    assert _CENSORED not in texts
    assert not any(t.startswith("budget:") for t in texts)
