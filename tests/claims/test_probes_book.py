"""The report book (harness/claims/book.py) and what `harness demo` reproduces."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.claims import evaluate_claim, load_claim, parse_claim
from harness.claims.book import BookEntry, write_book
from harness.claims.probes import run_probe_protocol


def _sub_claim(cid: str, keep: list[str]) -> Any:
    """The shipped claim cut down to the protocols in ``keep`` and the checks they decide."""
    raw = load_claim(cid).raw
    checks = [c for c in raw["checks"] if set(c["protocols"]) <= set(keep)]
    ids = {c["id"] for c in checks}
    quotes = [
        q | {"checks": [c for c in q["checks"] if c in ids]}
        for q in raw["source"]["quotes"]
        if ids & set(q["checks"])
    ]
    sub = {k: v for k, v in raw.items() if k != "budgets"}
    sub.update(
        checks=checks,
        source=raw["source"] | {"quotes": quotes},
        protocols={p: raw["protocols"][p] for p in keep},
        headline=[h for h in raw.get("headline", []) if h in ids],
        figures=[{"name": "bar", "measure": next(iter(raw["measures"])), "x": "protocol"}],
    )
    return parse_claim(sub)


@pytest.fixture(scope="module")
def entries() -> list[BookEntry]:
    out = []
    for cid, keep, wall in (
        ("numerics", ["finite_diff", "softmax", "mass_shift"], 12.5),
        ("representation", ["fc_conv", "collapse", "stacked_conv"], 300.0),
    ):
        spec = _sub_claim(cid, keep)
        tables = {p: run_probe_protocol(spec, p) for p in keep}
        out.append(
            BookEntry(
                claim=spec,
                outcome=evaluate_claim(spec, tables, n_boot=100),
                report_md=f"{cid}/report.md",
                report_html=f"{cid}/report.html",
                wall_time_s=wall,
                n_runs=sum(len(t) for t in tables.values()),
                experiment_id="7",
                parent_run_id="abcdef0123456789",
                run_url="http://127.0.0.1:5000/#/experiments/7/runs/abcdef0123456789",
            )
        )
    return out


def test_the_book_lists_every_check_with_verdict_seed_files_and_links(tmp_path, entries):
    md, html, js = write_book(tmp_path, entries, budget="quick")
    data = json.loads(js.read_text(encoding="utf-8"))
    n_checks = sum(len(e.outcome.checks) for e in entries)
    assert len(data["checks"]) == n_checks > 0
    assert [c["claim"] for c in data["claims"]] == ["numerics", "representation"]
    assert data["wall_time_s"] == pytest.approx(312.5)
    for row in data["checks"]:
        assert row["verdict"] in ("supported", "refuted", "conditional", "inconclusive")
        assert row["seed_files"] and all(s.endswith(".txt") for s in row["seed_files"])
        assert row["report_html"].endswith("/report.html")
    l2 = next(c for c in data["checks"] if c["check"] == "L2")
    assert l2["seed_files"] == ["000_16e5fcb357a67462.txt"]  # its quotes' file, not the claim's
    assert {"U2", "U3", "L2", "X4", "A13"} <= set(data["catalogue_ids"])
    assert "B1" in data["catalogue_missing"] and "U2" not in data["catalogue_missing"]
    assert len(data["catalogue_missing"]) + len(set(data["catalogue_ids"])) == 58
    text = html.read_text(encoding="utf-8")
    assert 'id="f-verdict"' in text and 'id="f-seed"' in text
    assert text.count("<tr data-verdict=") == n_checks
    assert "001_a9e0aef2ba68dc0e.txt" in text
    assert "http://127.0.0.1:5000/#/experiments/7/runs/abcdef0123456789" in text
    mtext = md.read_text(encoding="utf-8")
    assert "| L2 |" in mtext and "5.0 min" in mtext and "(numerics/report.md)" in mtext


def test_demo_reproduces_only_the_three_headline_claims(monkeypatch, tmp_path):
    from harness import cli, reproduce

    got: list[str] = []

    class Stop(Exception):
        pass

    def fake(claim_id: str, **kwargs: Any) -> Any:
        got.append(claim_id)
        raise Stop

    monkeypatch.setattr(reproduce, "reproduce_claim", fake)
    monkeypatch.setattr(cli, "_reproduce", lambda args, argv, ids: got.extend(ids) or 0)
    assert cli.main(["demo", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 0
    assert got == list(cli.DEMO_CLAIMS) == ["batch_size", "mse_vs_ce", "sigmoid_vs_relu"]


def test_the_shipped_claims_have_a_check_for_every_catalogue_id():
    """The book's coverage line over every shipped claim: no catalogue id without a check."""
    from harness.claims import list_claims
    from harness.claims.book import CATALOGUE_IDS, _catalogue_ids

    checks = [{"check": c.id} for cid in list_claims() for c in load_claim(cid).checks]
    covered = _catalogue_ids(checks)
    assert [i for i in CATALOGUE_IDS if i not in covered] == []
    assert "X3" in _catalogue_ids([{"check": "X3_params"}])
