"""Report writing: Markdown + standalone HTML with embedded figures, and the index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.claims import Verdict, evaluate_claim, parse_claim, write_index, write_report
from tests.claims.synth import grid_tables, saturating_curve
from tests.claims.toy import toy_claim


def _claim():
    raw = toy_claim()
    raw["study"]["search"]["params"]["act"] = {
        "type": "categorical",
        "choices": ["sigmoid", "relu"],
        "role": "scientific",
    }
    raw["study"]["replicates"] = 6  # 3 seeds decide nothing (their range: 75 %)
    raw["protocols"] = {
        "shared": {"description": "one lr for all"},
        "flipped": {"description": "a protocol where the effect reverses"},
    }
    raw["measures"] = {
        "acc": {"name": "final", "metric": "val/accuracy", "label": "final accuracy"},
        "epochs": {"name": "epochs_to", "metric": "val/accuracy", "target": 0.5},
        "ratio": {"name": "layer_ratio", "prefix": "grad_norm/", "suffix": ".W"},
    }
    raw["checks"] = [
        {
            "id": "C1",
            "claim": "accuracy rises with x",
            "why": "test rule",
            "statistic": {"name": "spearman", "measure": "acc", "x": "x", "where": {"act": "relu"}},
            "rule": {"op": ">=", "value": 0.8},
        },
        {
            "id": "C2",
            "claim": "relu reaches the target faster",
            "why": "test rule",
            "protocols": ["shared"],
            "statistic": {
                "name": "ratio",
                "measure": "epochs",
                "param": "act",
                "a": "relu",
                "b": "sigmoid",
            },
            "rule": {"op": "<=", "value": 0.5},
        },
    ]
    raw["source"]["quotes"][0]["checks"] = ["C1", "C2"]
    raw["figures"] = [
        {"name": "measure_vs_param", "measure": "acc", "x": "x", "hue": "act", "logx": True},
        {"name": "measure_vs_param", "measure": "epochs", "x": "x", "protocols": ["shared"]},
        {"name": "curves", "metric": "val/accuracy", "hue": "x", "title": "Learning curves"},
        {
            "name": "layer_profile",
            "prefix": "grad_norm/",
            "suffix": ".W",
            "hue": "act",
            "protocols": ["shared"],
        },
        {"name": "bar", "measure": "epochs", "x": "act"},
    ]
    raw["caveats"] = ["A hand-written caveat."]
    raw["headline"] = ["C2"]
    return parse_claim(raw)


def world(cfg, r, rng):
    x, act = cfg["x"], cfg["act"]
    slow = act == "sigmoid"
    ceiling = 0.6 + 0.04 * np.log2(x) + (0.0 if slow else 0.2)
    acc = saturating_curve(8, min(ceiling, 0.99), 3.0 if slow else 1.0, rng)
    curve = []
    for e, a in enumerate(acc):
        row = {"epoch": e, "val/accuracy": a, "train/loss": 2.3 * (1 - a)}
        for layer in range(4):
            decay = 0.25**layer if slow else 1.0
            row[f"grad_norm/dense_{layer}.W"] = decay * (1 + 0.1 * e) * (1 + 0.05 * r)
        curve.append(row)
    return {"curve": curve}


def flipped_world(cfg, r, rng):
    """Accuracy falls with x (so C1 is refuted under this protocol)."""
    out = world(cfg, r, rng)
    for row in out["curve"]:
        if row["epoch"] > 0:
            row["val/accuracy"] = 0.95 - 0.05 * np.log2(cfg["x"]) + 0.002 * r
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    claim = _claim()
    tables = grid_tables(claim, world)
    tables["flipped"] = grid_tables(claim, flipped_world)["flipped"]
    outcome = evaluate_claim(claim, tables, n_boot=300)
    out_dir = tmp_path_factory.mktemp("reports")
    meta = {
        "command": "harness reproduce toy --budget quick",
        "git_commit": "abc1234",
        "tracking_uri": "file:./mlruns",
        "parent_run_id": "r0",
        "wall_time_s": 3.2,
    }
    paths = write_report(claim, outcome, tables, out_dir=out_dir, meta=meta)
    return claim, outcome, paths, out_dir


def test_report_files_and_embedded_images(written):
    _, _, paths, out_dir = written
    assert paths.directory == out_dir / "toy"
    assert paths.markdown.is_file()
    assert paths.html.is_file()
    assert len(paths.figures) == 5
    assert all(p.stat().st_size > 5000 for p in paths.figures)
    html = paths.html.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 5
    assert 'src="figures/' not in html  # standalone: nothing points outside the file


def test_report_contains_quotes_verdicts_and_numbers(written):
    _, outcome, paths, _ = written
    md = paths.markdown.read_text(encoding="utf-8")
    html = paths.html.read_text(encoding="utf-8")
    for text in (md, html):
        assert "玩具引文" in text
        assert "A toy quote." in text
        assert "A hand-written caveat." in text
        assert "harness reproduce toy --budget quick" in text
        assert "abc1234" in text
    assert outcome.verdicts["C1"] is Verdict.CONDITIONAL
    assert outcome.verdicts["C2"] is Verdict.SUPPORTED
    assert "**CONDITIONAL**" in md
    assert "**SUPPORTED**" in md
    assert 'class="verdict v-conditional"' in html
    for section in (
        "## Setup",
        "## Figures",
        "## Measured values",
        "## Verdicts per check",
        "## Caveats",
    ):
        assert section in md
    # the measured-values table has a CI for the group medians
    assert "| 1 | sigmoid |" in md or "| 1 | relu |" in md
    data = json.loads((paths.directory / "outcome.json").read_text(encoding="utf-8"))
    assert {c["id"]: c["verdict"] for c in data["checks"]} == {
        "C1": "conditional",
        "C2": "supported",
    }
    assert (paths.directory / "conditions.csv").is_file()


def test_index_links_every_claim(written):
    _, outcome, _, out_dir = written
    md, html = write_index(out_dir, [outcome])
    text = md.read_text(encoding="utf-8")
    assert "[toy](toy/report.md)" in text
    assert "C1: **CONDITIONAL**" in text
    assert 'href="toy/report.html"' in html.read_text(encoding="utf-8")
