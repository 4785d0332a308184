"""The report book: ``reports/index.{md,html,json}`` over every reproduced claim and check.

``harness reproduce --all`` (and any reproduction of several claims) ends here. The book lists

- per claim: its title, budget, runs, wall time, verdict counts, links to its report (Markdown
  and HTML) and to its parent run in MLflow;
- per check: the id, the claim in English, the verdict, the seed files its quotes come from,
  and the claim it belongs to;
- the totals: checks per verdict, the wall time of the whole reproduction, and which catalogue
  ids have no check.

The HTML page is standalone (no network): two drop-downs filter the check table by verdict and
by seed file, and a text box by id or words. ``index.json`` holds the same rows for scripts.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.claims.outcome import ClaimOutcome, Outcome
from harness.claims.spec import ClaimSpec
from harness.claims.verdicts import Verdict

__all__ = ["CATALOGUE_IDS", "BookEntry", "book_rows", "write_book"]

#: The 58 ids of the claim catalogue's master table (``../shared/claims.md`` §1), so the book can
#: say which have no check yet. Check ids map to them by prefix (``A3_tanh`` → A3, ``E2`` errata
#: are extra).
CATALOGUE_IDS: tuple[str, ...] = (
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "L1",
    "L2",
    "L3",
    "L5",
    "L6",
    "A1",
    "A2",
    "A3",
    "A5",
    "A6",
    "A7",
    "A8",
    "A9",
    "A10",
    "A11",
    "A12",
    "A13",
    "A14",
    "I1",
    "I2",
    "I3",
    "I4",
    "I5",
    "O1",
    "O2",
    "O3",
    "O4",
    "O6",
    "H1",
    "R1",
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "N1",
    "N2",
    "N3",
    "N4",
    "X1",
    "X2",
    "X3",
    "X4",
    "U1",
    "U2",
    "U3",
    "U4",
    "U5",
)

#: Verdicts in the order the book counts them.
# the four verdicts, then the outcomes a check reports instead (ill-posed, not falsifiable)
_ORDER = [v.value for v in Verdict] + [o.value for o in Outcome]
_WORDS = {v: v.upper() for v in _ORDER}


@dataclass
class BookEntry:
    """One reproduced claim, as the book needs it."""

    claim: ClaimSpec
    outcome: ClaimOutcome
    report_md: str = ""
    report_html: str = ""
    wall_time_s: float = float("nan")
    #: the driver's CPU seconds over the claim (:attr:`harness.reproduce.ReproduceResult.driver_cpu_s`)
    driver_cpu_s: float = float("nan")
    n_runs: int = 0
    experiment_id: str = ""
    parent_run_id: str = ""
    run_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: Any, claim: ClaimSpec, *, run_url: str = "") -> BookEntry:
        """From a :class:`harness.reproduce.ReproduceResult`."""
        return cls(
            claim=claim,
            outcome=result.outcome,
            report_md=str(result.report_md),
            report_html=str(result.report_html),
            wall_time_s=float(result.wall_time_s),
            driver_cpu_s=float(result.driver_cpu_s),
            n_runs=int(result.n_runs),
            experiment_id=str(result.experiment_id),
            parent_run_id=str(result.parent_run_id),
            run_url=run_url,
        )


def _seed_files_by_check(claim: ClaimSpec) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for q in claim.quotes:
        for cid in q.checks:
            files = out.setdefault(cid, [])
            if q.seed_file not in files:
                files.append(q.seed_file)
    return out


def _rel(path: str, root: Path) -> str:
    if not path:
        return ""
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def book_rows(
    entries: Sequence[BookEntry], root: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(claims, checks)``: one row per claim and one per check, JSON-safe."""
    claims, checks = [], []
    for e in entries:
        by_check = _seed_files_by_check(e.claim)
        counts = dict.fromkeys(_ORDER, 0)
        for c in e.outcome.checks:
            counts[c.label] += 1
            checks.append(
                {
                    "claim": e.claim.id,
                    "check": c.id,
                    "text": c.claim,
                    "verdict": c.label,
                    "protocols": {p: r.verdict.value for p, r in c.protocols.items()},
                    "seed_files": by_check.get(c.id, e.claim.seed_files),
                    "headline": c.headline,
                    "report_html": _rel(e.report_html, root),
                    "report_md": _rel(e.report_md, root),
                }
            )
        claims.append(
            {
                "claim": e.claim.id,
                "title": e.claim.title,
                "budget": e.outcome.budget,
                "runs": e.n_runs,
                "wall_time_s": round(e.wall_time_s, 1),
                "driver_cpu_s": None if math.isnan(e.driver_cpu_s) else round(e.driver_cpu_s, 1),
                "verdicts": counts,
                "seed_files": e.claim.seed_files,
                "report_html": _rel(e.report_html, root),
                "report_md": _rel(e.report_md, root),
                "experiment_id": e.experiment_id,
                "parent_run_id": e.parent_run_id,
                "run_url": e.run_url,
            }
        )
    return claims, checks


def _catalogue_ids(checks: Sequence[Mapping[str, Any]]) -> set[str]:
    """Catalogue ids covered by checks: ``A3_tanh`` and ``A13_i`` count for A3 and A13; errata
    (E2, E3, ...) and checks named otherwise are not catalogue ids."""
    out = set()
    for c in checks:
        m = re.match(r"^([A-Z]\d+)(?![0-9])", str(c["check"]))
        if m and m.group(1) in CATALOGUE_IDS:
            out.add(m.group(1))
    return out


def _fmt_s(s: float) -> str:
    if s != s:  # NaN
        return "—"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _md(claims: list[dict[str, Any]], checks: list[dict[str, Any]], meta: Mapping[str, Any]) -> str:
    total = sum(c["wall_time_s"] for c in claims)
    counts = {v: sum(1 for c in checks if c["verdict"] == v) for v in _ORDER}
    lines = [
        "# Report book: the claims of the tutorial documents",
        "",
        f"{len(claims)} claims, {len(checks)} checks, budget {meta.get('budget', '?')}, "
        f"wall time {_fmt_s(total)} ({meta.get('created', '')}).",
        "",
        "Checks by verdict: "
        + ", ".join(f"**{_WORDS[v]}** {n}" for v, n in counts.items() if n)
        + ".",
        "",
        "## Claims",
        "",
        "| claim | title | budget | runs | wall time | verdicts | report | MLflow run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        vs = ", ".join(f"{n} {v}" for v, n in c["verdicts"].items() if n)
        run = (
            f"[{c['parent_run_id'][:8]}]({c['run_url']})"
            if c["run_url"]
            else c["parent_run_id"][:8]
        )
        lines.append(
            f"| {c['claim']} | {c['title']} | {c['budget']} | {c['runs']} | "
            f"{_fmt_s(c['wall_time_s'])} | {vs} | [report]({c['report_md']}) | {run or '—'} |"
        )
    lines += [
        "",
        "## Checks",
        "",
        "| check | claim | verdict | per protocol | seed files | report |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        per = "; ".join(f"{p}: {v}" for p, v in c["protocols"].items())
        lines.append(
            f"| {c['check']}{' ★' if c['headline'] else ''} | {c['text']} | "
            f"**{_WORDS[c['verdict']]}** | {per} | {', '.join(c['seed_files'])} | "
            f"[{c['claim']}]({c['report_md']}) |"
        )
    ids = sorted(_catalogue_ids(checks), key=lambda s: (s[0], int(s[1:])))
    missing = [i for i in CATALOGUE_IDS if i not in ids]
    lines += [
        "",
        f"Catalogue ids with a check ({len(set(ids) & set(CATALOGUE_IDS))} of "
        f"{len(CATALOGUE_IDS)}): {', '.join(ids)}.",
        "",
        f"Without a check in these reports: {', '.join(missing) or 'none'}.",
        "",
        "The HTML version of this page filters the checks by verdict and seed file.",
        "",
    ]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;width:100%;margin:1em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
.v{font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap}
.v-supported{background:#d4edda;color:#155724}.v-refuted{background:#f8d7da;color:#721c24}
.v-conditional{background:#fff3cd;color:#856404}.v-inconclusive{background:#e2e3e5;color:#383d41}
.filters{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:1em 0}
.muted{color:#666}
"""

_JS = """
function applyFilters(){
  const v=document.getElementById('f-verdict').value;
  const s=document.getElementById('f-seed').value;
  const q=document.getElementById('f-text').value.toLowerCase();
  let shown=0;
  document.querySelectorAll('#checks tbody tr').forEach(function(tr){
    const ok=(!v||tr.dataset.verdict===v)&&(!s||tr.dataset.seeds.split(' ').includes(s))
      &&(!q||tr.textContent.toLowerCase().includes(q));
    tr.style.display=ok?'':'none'; if(ok){shown++;}
  });
  document.getElementById('n-shown').textContent=shown;
}
"""


def _badge(v: str) -> str:
    return f'<span class="v v-{v}">{_WORDS[v]}</span>'


def _html(
    claims: list[dict[str, Any]], checks: list[dict[str, Any]], meta: Mapping[str, Any]
) -> str:
    e = html.escape
    total = sum(c["wall_time_s"] for c in claims)
    counts = {v: sum(1 for c in checks if c["verdict"] == v) for v in _ORDER}
    seeds = sorted({s for c in checks for s in c["seed_files"]})
    out = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        f"<title>Report book</title>\n<style>{_CSS}</style>\n<script>{_JS}</script>\n</head>\n<body>",
        "<h1>Report book: the claims of the tutorial documents</h1>",
        f"<p>{len(claims)} claims, {len(checks)} checks, budget {e(str(meta.get('budget', '?')))}, "
        f"wall time {_fmt_s(total)} <span class='muted'>({e(str(meta.get('created', '')))})</span>.</p>",
        "<p>Checks by verdict: "
        + ", ".join(f"{_badge(v)} {n}" for v, n in counts.items() if n)
        + "</p>",
        "<h2>Claims</h2>",
        "<table><thead><tr><th>claim</th><th>title</th><th>budget</th><th>runs</th>"
        "<th>wall time</th><th>verdicts</th><th>report</th><th>MLflow run</th></tr></thead><tbody>",
    ]
    for c in claims:
        vs = " ".join(f"{_badge(v)}&nbsp;{n}" for v, n in c["verdicts"].items() if n)
        rid = e(c["parent_run_id"][:8])
        run = f'<a href="{e(c["run_url"])}">{rid}</a>' if c["run_url"] else (rid or "—")
        out.append(
            f"<tr><td>{e(c['claim'])}</td><td>{e(c['title'])}</td><td>{e(c['budget'])}</td>"
            f"<td>{c['runs']}</td><td>{_fmt_s(c['wall_time_s'])}</td><td>{vs}</td>"
            f'<td><a href="{e(c["report_html"])}">html</a> · <a href="{e(c["report_md"])}">md</a></td>'
            f"<td>{run}<br><span class='muted'>experiment {e(c['experiment_id'])}</span></td></tr>"
        )
    out.append("</tbody></table>")
    out += [
        "<h2>Checks</h2>",
        '<div class="filters"><label>verdict <select id="f-verdict" onchange="applyFilters()">'
        '<option value="">all</option>'
        + "".join(f'<option value="{v}">{v} ({counts[v]})</option>' for v in _ORDER if counts[v])
        + '</select></label><label>seed file <select id="f-seed" onchange="applyFilters()">'
        '<option value="">all</option>'
        + "".join(f'<option value="{e(s)}">{e(s)}</option>' for s in seeds)
        + '</select></label><label>text <input id="f-text" oninput="applyFilters()" '
        'placeholder="id or words"></label>'
        f'<span class="muted"><span id="n-shown">{len(checks)}</span> of {len(checks)} shown</span></div>',
        '<table id="checks"><thead><tr><th>check</th><th>claim</th><th>verdict</th>'
        "<th>per protocol</th><th>seed files</th><th>report</th></tr></thead><tbody>",
    ]
    for c in checks:
        per = "<br>".join(f"{e(p)}: {_badge(v)}" for p, v in c["protocols"].items())
        out.append(
            f'<tr data-verdict="{c["verdict"]}" data-seeds="{e(" ".join(c["seed_files"]))}">'
            f"<td>{e(c['check'])}{' ★' if c['headline'] else ''}</td><td>{e(c['text'])}</td>"
            f"<td>{_badge(c['verdict'])}</td><td>{per}</td>"
            f"<td>{'<br>'.join(e(s) for s in c['seed_files'])}</td>"
            f'<td><a href="{e(c["report_html"])}">{e(c["claim"])}</a></td></tr>'
        )
    ids = sorted(_catalogue_ids(checks), key=lambda s: (s[0], int(s[1:])))
    missing = [i for i in CATALOGUE_IDS if i not in ids]
    out += [
        "</tbody></table>",
        f"<p class='muted'>Catalogue ids with a check ({len(set(ids) & set(CATALOGUE_IDS))} of "
        f"{len(CATALOGUE_IDS)}): {e(', '.join(ids))}. Without a check in these reports: "
        f"{e(', '.join(missing) or 'none')}. ★: a claim's headline check.</p>",
        "</body></html>\n",
    ]
    return "\n".join(out)


def write_book(
    reports_dir: str | Path, entries: Sequence[BookEntry], *, budget: str | None = None
) -> tuple[Path, Path, Path]:
    """Write ``index.md``, ``index.html`` and ``index.json`` under ``reports_dir``."""
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    claims, checks = book_rows(entries, root)
    budgets = sorted({c["budget"] for c in claims})
    meta = {
        "budget": budget or ", ".join(budgets) or "?",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(sum(c["wall_time_s"] for c in claims), 1),
    }
    md_path, html_path, json_path = root / "index.md", root / "index.html", root / "index.json"
    md_path.write_text(_md(claims, checks, meta), encoding="utf-8")
    html_path.write_text(_html(claims, checks, meta), encoding="utf-8")
    covered = _catalogue_ids(checks)
    payload = {
        **meta,
        "claims": claims,
        "checks": checks,
        "catalogue_ids": sorted(covered),
        "catalogue_missing": [i for i in CATALOGUE_IDS if i not in covered],
    }
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    return md_path, html_path, json_path
