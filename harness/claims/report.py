"""Claim reports: ``reports/<claim-id>/report.md``, a standalone ``report.html`` and an index.

:func:`write_report` writes, under ``out_dir/<claim-id>/``:

- ``report.md``: the claim and its quotes (original and English gloss), the setup (data, model,
  protocols, seeds, budget, learning-rate protocol, which nuisance setting won), figures, the
  table of measured values (median and its order-statistic interval over seeds per group), the
  verdict of every check with its effect size and interval (method and level reached), caveats
  (the claim's own and automatic ones), how to reproduce;
- ``figures/*.png`` (seaborn, see :mod:`harness.claims.figures`);
- ``report.html``: the same document with every image embedded as a base64 data URI and inline
  CSS, so the single file can be mailed or attached to an MLflow run;
- ``outcome.json`` (verdicts and numbers), ``conditions.csv`` and ``measures.csv`` (per run).

:func:`write_index` writes ``index.md`` / ``index.html`` linking every claim with its verdicts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown as _markdown
import numpy as np
import pandas as pd

from harness.claims.figures import FigureContext, render_figure
from harness.claims.filters import value_label
from harness.claims.intervals import (
    LEVEL_TOLERANCE,
    fmt_est_ci,
    fmt_estimate,
    interval_for,
    median_interval,
    pct,
)
from harness.claims.outcome import CheckResult, ClaimOutcome, ConditionResult, ProtocolData
from harness.claims.results import RunTable
from harness.claims.spec import ClaimSpec
from harness.claims.text import fmt
from harness.claims.verdicts import Verdict

__all__ = ["ReportPaths", "write_index", "write_report"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC",
       "PingFang SC", "Microsoft YaHei", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1.2em; color: #1f2328; line-height: 1.55; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
blockquote { margin: 1em 0; padding: .4em 1em; border-left: 4px solid #8c959f;
             background: #f6f8fa; }
code { background: #f0f2f4; padding: .1em .3em; border-radius: 4px; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; border-radius: 6px; }
img { max-width: 100%; border: 1px solid #d0d7de; border-radius: 6px; margin: .5em 0; }
.verdict { padding: .1em .5em; border-radius: 4px; color: #fff; font-size: .9em; }
.v-supported { background: #1a7f37; } .v-refuted { background: #cf222e; }
.v-conditional { background: #9a6700; } .v-inconclusive { background: #6e7781; }
"""

_VERDICT_WORDS = {v: v.value.upper() for v in Verdict}


@dataclass
class ReportPaths:
    """Files written by :func:`write_report`."""

    directory: Path
    markdown: Path
    html: Path
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)

    @property
    def all(self) -> list[Path]:
        return [self.markdown, self.html, *self.figures, *self.data]


def _v(verdict: Verdict) -> str:
    return f"**{_VERDICT_WORDS[verdict]}**"


def _vc(check: CheckResult) -> str:
    """A check's verdict, or its outcome (ill-posed, not falsifiable) when it has one."""
    return f"**{check.outcome}**" if check.outcome is not None else _v(check.verdict)


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(map(_cell, headers)) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _spec_text(v: Any) -> str:
    if isinstance(v, Mapping):
        inner = ", ".join(f"{k}: {_spec_text(x)}" for k, x in v.items())
        return "{" + inner + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_spec_text(x) for x in v) + "]"
    return str(v)


# -- sections --------------------------------------------------------------------------------
def _summary(claim: ClaimSpec, outcome: ClaimOutcome) -> str:
    order = _ordered_checks(claim, outcome)
    rows = []
    for c in order:
        per = "; ".join(f"{p}: {r.verdict}" for p, r in c.protocols.items())
        rows.append([c.id + (" ★" if c.headline else ""), c.claim, _vc(c), per])
    text = _table(["check", "claim", "verdict", "per protocol"], rows)
    return (
        "## Verdicts at a glance\n\n" + text + "\n\n"
        "*supported*: the whole interval (median over seeds, order-statistic interval; the level "
        "it reaches is stated with each verdict) satisfies the rule under every protocol; "
        "*refuted*: it "
        "violates it under every protocol; *conditional*: supported under some protocols and "
        "refuted under others; *inconclusive*: anything else (the reason is given below)."
        + (" ★ = headline check." if any(c.headline for c in order) else "")
    )


def _ordered_checks(claim: ClaimSpec, outcome: ClaimOutcome) -> list[CheckResult]:
    return sorted(outcome.checks, key=lambda c: (not c.headline,))


def _quotes(claim: ClaimSpec) -> str:
    parts = ["## The claim"]
    for q in claim.quotes:
        where = " ".join(x for x in (q.seed_file, q.section) if x)
        checks = f" · checks {', '.join(q.checks)}" if q.checks else ""
        parts.append(f"> {q.text}\n>\n> *{q.gloss}*\n>\n> — `{where}`{checks}")
    if claim.anchors:
        parts.append("**Published anchors** (context, not evidence for the verdicts):\n")
        parts.append("\n".join(f"- {a}" for a in claim.anchors))
    return "\n\n".join(parts)


def _setup(claim: ClaimSpec, outcome: ClaimOutcome) -> str:
    first = claim.protocols_to_run()[0]
    study = claim.study_for(first)
    train = study.get("train", {}) or {}
    lines = ["## Setup", ""]
    b = claim.budgets.get(claim.budget, {}) or {}
    bdesc = f" — {b['description']}" if b.get("description") else ""
    lines.append(f"- **Budget**: `{claim.budget}`{bdesc}")
    # probe protocols (harness/claims/probes.py) train nothing: name their probes instead
    probes = {
        p: claim.study_for(p)["probe"]
        for p in claim.protocols_to_run()
        if "probe" in claim.study_for(p)
    }
    trained = [p for p in claim.protocols_to_run() if p not in probes]
    if trained:
        study = claim.study_for(trained[0])
        train = study.get("train", {}) or {}
        where = f" (protocols {', '.join(trained)})" if probes else ""
        lines.append(f"- **Data**{where}: `{_spec_text(study.get('data', {}))}`")
        lines.append(f"- **Model**{where}: `{_spec_text(study.get('model', {}))}`")
        lines.append(f"- **Training**{where}: `{_spec_text(train)}`")
    for p, spec in probes.items():
        lines.append(
            f"- **Probe** `{p}` (no training; harness/claims/probes.py): `{_spec_text(spec)}`"
        )
    reps = sorted({r for d in outcome.protocols.values() for r in d.grouped.replicates})
    seeds = sorted(
        {int(s) for d in outcome.protocols.values() for s in d.all_measures["seed"].dropna()}
    )
    lines.append(
        f"- **Seeds**: {len(reps)} replicates per configuration (replicate indices "
        f"{', '.join(map(str, reps)) or 'none'}; seeds {', '.join(map(str, seeds[:12]))}"
        f"{' …' if len(seeds) > 12 else ''})"
    )
    lines.append(
        f"- **Statistics**: every statistic is computed per seed (seed r of one arm against "
        f"seed r of the other: paired), then summarised by the median over seeds with its exact "
        f"order-statistic interval (Student t for a mean), nominal level "
        f"{pct(outcome.level)}. "
        + _levels_text(
            [d.grouped.n_replicates for d in outcome.protocols.values() if d.grouped.n_replicates],
            outcome.level,
        )
    )
    lines += ["", "### Protocols (learning-rate and other nuisance handling)", ""]
    rows = []
    for ps in claim.protocols.values():
        nuis = ", ".join(ps.nuisance) or "—"
        how = ps.select.describe() if ps.select else "—"
        src = f"runs of `{ps.reuse}`" if ps.reuse else "own runs"
        if ps.pool:  # paired by replicate (= seed) across the pooled protocols
            src = "pooled runs of " + ", ".join(f"`{m}`" for m in ps.pool) + ", paired by seed"
        where = ps.where.describe() if ps.where else "—"
        n = sum(int(v) for v in outcome.protocols[ps.name].status_counts.values())
        rows.append(
            [
                f"`{ps.name}`",
                ps.description,
                src,
                where,
                ", ".join(ps.scientific) or "—",
                nuis,
                how,
                n,
            ]
        )
    lines.append(
        _table(
            [
                "protocol",
                "description",
                "runs",
                "filter",
                "scientific",
                "nuisance",
                "selected by",
                "runs (all)",
            ],
            rows,
        )
    )
    lines += ["", "### Searched parameters", ""]
    prow = []
    for name in claim.protocols_to_run():
        params = (claim.study_for(name).get("search", {}) or {}).get("params", {}) or {}
        for k, spec in params.items():
            vals = spec.get("choices") if isinstance(spec, Mapping) else None
            rng = (
                ", ".join(value_label(v) for v in vals)
                if vals
                else _spec_text({x: y for x, y in (spec or {}).items() if x != "role"})
            )
            role = claim.protocols[name].param_roles.get(k, "")
            prow.append([f"`{name}`", f"`{k}`", role, rng])
    lines.append(_table(["protocol", "parameter", "role", "values"], prow))
    lines += ["", "### Measures", ""]
    lines.append(
        _table(
            ["measure", "definition"], [[f"`{n}`", m.describe()] for n, m in claim.measures.items()]
        )
    )
    for name, d in outcome.protocols.items():
        if d.selection is not None and len(d.selection):
            lines += ["", f"### Nuisance selection in `{name}`", ""]
            sel = d.selection.copy()
            if "tie" in sel.columns:  # only worth a column when some group had all settings tied
                if sel["tie"].astype(bool).any():
                    sel["tie"] = ["all tied" if t else "" for t in sel["tie"]]
                else:
                    sel = sel.drop(columns="tie")
            lines.append(
                _table(
                    list(sel.columns),
                    [[_fmt_any(v) for v in row] for row in sel.itertuples(index=False)],
                )
            )
    return "\n".join(lines)


def _fmt_any(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return fmt(float(v))
    return str(v)


def _measured(claim: ClaimSpec, outcome: ClaimOutcome) -> str:
    lines = [
        "## Measured values",
        "",
        f"Median over seeds per group, with the order-statistic interval of the median "
        f"(nominal {pct(outcome.level)}; the level each seed count reaches is in the setup). "
        "∞ = target not reached; n/a = no value (failed runs).",
    ]
    for name, d in outcome.protocols.items():
        g = d.grouped
        if not g.n_groups:
            lines += ["", f"### `{name}`", "", "No runs."]
            continue
        sel = _selected_nuisance(d)
        headers = [
            *d.scientific,
            *(["selected " + n for n in d.nuisance] if sel else []),
            "runs",
            "diverged",
        ]
        cols: list[list[str]] = []
        for m in claim.measures:
            if m not in g.arrays:  # a measure this protocol does not read (engine.used_measures)
                continue
            arr = g.arrays[m]
            cells = []
            for i in range(g.n_groups):
                # only seeds that ran count; a failed run (NaN) is an unknown value
                ran = g.status[i] != ""
                est, iv = interval_for(arr[i][ran], "median", outcome.level)
                cells.append(fmt_estimate(est, iv))
            cols.append(cells)
            unit = claim.measures[m].unit
            headers.append(f"{m} ({unit})" if unit else m)
        rows = []
        for i in range(g.n_groups):
            row = g.groups.iloc[i]
            cells = [value_label(row[p]) for p in d.scientific]
            if sel:
                cells += list(
                    sel.get(
                        tuple(value_label(row[p]) for p in d.scientific), ["—"] * len(d.nuisance)
                    )
                )
            cells += [str(int(row["n_runs"])), str(int(row["n_diverged"]))]
            cells += [c[i] for c in cols]
            rows.append(cells)
        lines += ["", f"### `{name}`", "", _table(headers, rows)]
    return "\n".join(lines)


def _levels_text(reps: list[int], nominal: float) -> str:
    """What each seed count reaches, e.g. "With 3 seeds the interval is their range, 75 %"."""
    parts = []
    for n in sorted(set(reps)):
        iv = median_interval(list(range(n)), nominal)
        parts.append(f"{n} seeds: {iv.label()}")
    text = "Intervals over seeds: " + "; ".join(parts) + "."
    if any(median_interval(list(range(n)), nominal).too_weak_to_decide for n in reps):
        text += (
            f" Where the level reached is more than {100 * LEVEL_TOLERANCE:.0f} points below "
            f"{pct(nominal)}, no verdict is decisive: a rule that interval satisfies or violates "
            "is inconclusive, and the verdict line says why."
        )
    return text


def _selected_nuisance(d: ProtocolData) -> dict[tuple[str, ...], list[str]]:
    """Scientific labels → winning nuisance labels, from the kept runs."""
    if not d.nuisance or d.measures.empty:
        return {}
    out: dict[tuple[str, ...], list[str]] = {}
    for _, row in d.measures.iterrows():
        key = tuple(value_label(row[p]) for p in d.scientific)
        out.setdefault(key, [value_label(row[n]) for n in d.nuisance])
    return out


def _effect_text(c: ConditionResult) -> str:
    e = c.effect
    parts = []
    if "d_z" in e:
        parts.append(f"d_z = {fmt(e['d_z'])}")
    if "cliffs_delta" in e:
        parts.append(f"Cliff's δ = {fmt(e['cliffs_delta'])}")
    for k in ("a", "b"):
        if k in c.extra and isinstance(c.extra[k], float):
            parts.append(f"{k} = {fmt(c.extra[k])}")
    if "argbest" in c.extra:
        parts.append(
            f"best at {c.extra['argbest']}" + (" (edge)" if c.extra.get("at_edge") else "")
        )
    if "seed_sd" in c.extra:
        parts.append(f"seed s.d. = {fmt(c.extra['seed_sd'])}")
    if c.extra.get("censored"):
        parts.append(str(c.extra["censored"]))
    return "; ".join(parts) or "—"


def _checks(claim: ClaimSpec, outcome: ClaimOutcome) -> str:
    lines = ["## Verdicts per check"]
    for c in _ordered_checks(claim, outcome):
        lines += ["", f"### {c.id}: {c.claim} — {_vc(c)}", "", c.explanation, ""]
        lines.append(f"*Why this rule*: {c.why}")
        rows = []
        for r in c.conditions:
            rows.append(
                [
                    f"`{r.protocol}`",
                    r.statistic,
                    fmt_est_ci(r.estimate, *r.ci),
                    r.interval or f"{r.level:.0%}",
                    r.rule,
                    _v(r.verdict),
                    r.n_seeds,
                    r.n_runs,
                    r.n_failed,
                    r.n_diverged,
                    _effect_text(r),
                ]
            )
        lines += [
            "",
            _table(
                [
                    "protocol",
                    "statistic",
                    "estimate [interval]",
                    "method, level reached",
                    "rule",
                    "verdict",
                    "seeds",
                    "runs",
                    "failed",
                    "diverged",
                    "effect / details",
                ],
                rows,
            ),
        ]
        notes = [f"- `{r.protocol}`: {r.explanation}" for r in c.conditions]
        lines += ["", *notes]
        for r in c.conditions:
            if r.strata:
                srows = [
                    [
                        s.label,
                        fmt_est_ci(s.estimate, *s.ci),
                        s.interval,
                        f"set aside ({s.set_aside})" if s.set_aside else _v(s.verdict),
                    ]
                    for s in r.strata
                ]
                lines += [
                    "",
                    f"Per stratum ({r.protocol}, {r.statistic}):",
                    "",
                    _table(["stratum", "estimate [interval]", "method, level", "verdict"], srows),
                ]
    return "\n".join(lines)


def _caveats(claim: ClaimSpec, outcome: ClaimOutcome) -> str:
    items = [*claim.caveats, *outcome.caveats]
    if not items:
        return "## Caveats\n\nNone recorded."
    return "## Caveats\n\n" + "\n".join(f"- {c}" for c in items)


def _reproduce(claim: ClaimSpec, meta: Mapping[str, Any]) -> str:
    cmd = meta.get("command") or f"harness reproduce {claim.id} --budget {claim.budget}"
    lines = ["## How to reproduce", "", "```bash", str(cmd), "```", ""]
    known = [
        ("git commit", "git_commit"),
        ("budget", "budget"),
        ("wall time", "wall_time_s"),
        ("MLflow tracking URI", "tracking_uri"),
        ("MLflow experiment", "experiment_name"),
        ("MLflow experiment id", "experiment_id"),
        ("MLflow parent run", "parent_run_id"),
    ]
    rows = []
    for label, key in known:
        if key in meta and meta[key] not in (None, ""):
            v = meta[key]
            rows.append([label, f"{fmt(float(v))} s" if key == "wall_time_s" else f"`{v}`"])
    for k, v in meta.items():
        if k not in {key for _, key in known} | {"command"}:
            rows.append([k, f"`{v}`"])
    if rows:
        lines.append(_table(["", ""], rows))
    src = f"`{claim.source_path}`" if claim.source_path else f"`studies/claims/{claim.id}.yaml`"
    lines += ["", f"Claim file: {src}. The verdicts are computed from the runs only."]
    return "\n".join(lines)


def _document(
    claim: ClaimSpec,
    outcome: ClaimOutcome,
    figures: Sequence[tuple[str, Path]],
    meta: Mapping[str, Any],
) -> str:
    now = meta.get("created") or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f"# {claim.title}\n\nClaim `{claim.id}` · budget `{claim.budget}` · generated {now}"
    figs = ["## Figures"]
    for caption, path in figures:
        figs.append(f"![{caption}](figures/{path.name})\n\n*{caption}*")
    if len(figs) == 1:
        figs.append("No figures.")
    sections = [
        head,
        _summary(claim, outcome),
        _quotes(claim),
        _setup(claim, outcome),
        "\n\n".join(figs),
        _measured(claim, outcome),
        _checks(claim, outcome),
        _caveats(claim, outcome),
        _reproduce(claim, meta),
    ]
    return "\n\n".join(sections) + "\n"


def _to_html(md_text: str, title: str, base: Path) -> str:
    body = _markdown.markdown(md_text, extensions=["tables", "fenced_code"])

    def embed(m: re.Match[str]) -> str:
        src = m.group(1)
        p = base / src
        if not p.is_file():
            return m.group(0)
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="(figures/[^"]+\.png)"', embed, body)
    for v, word in _VERDICT_WORDS.items():
        body = body.replace(
            f"<strong>{word}</strong>", f'<strong class="verdict v-{v.value}">{word}</strong>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60]


def write_report(
    claim: ClaimSpec,
    outcome: ClaimOutcome,
    tables: Mapping[str, RunTable] | RunTable | None = None,
    *,
    out_dir: str | Path,
    meta: Mapping[str, Any] | None = None,
) -> ReportPaths:
    """Write the report of one evaluated claim under ``out_dir/<claim.id>/``.

    Parameters
    ----------
    claim, outcome
        The claim and :func:`harness.claims.engine.evaluate_claim`'s result for it.
    tables
        The run tables the outcome came from (the outcome already holds the kept runs; the
        tables are accepted for symmetry with ``evaluate_claim`` and are not re-read).
    out_dir
        The reports root (``reports``); the claim gets its own folder inside.
    meta
        Run metadata shown under "How to reproduce": ``command``, ``git_commit``, ``budget``,
        ``wall_time_s``, ``tracking_uri``, ``experiment_name``, ``experiment_id``,
        ``parent_run_id``, ``created``; other keys are listed as they are.
    """
    meta = dict(meta or {})
    root = Path(out_dir) / claim.id
    fig_dir = root / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):  # a re-run must not leave figures of an older claim file
        old.unlink()
    ctx = FigureContext(outcome.protocols, claim.measures)
    figures: list[tuple[str, Path]] = []
    for entry in claim.figures:
        cfg = entry.figure.get_config()
        what = cfg.get("measure") or cfg.get("metric") or cfg.get("prefix") or ""
        fname = f"{entry.index + 1:02d}_{entry.name}_{_slug(str(what))}.png"
        path = render_figure(entry.figure, ctx, entry.protocols, fig_dir / fname, entry.title)
        caption = (
            entry.title or f"{entry.name.replace('_', ' ')}: {what} ({', '.join(entry.protocols)})"
        )
        figures.append((caption, path))
    md_text = _document(claim, outcome, figures, meta)
    md_path = root / "report.md"
    md_path.write_text(md_text, encoding="utf-8")
    html_path = root / "report.html"
    html_path.write_text(_to_html(md_text, claim.title, root), encoding="utf-8")
    data = []
    js = root / "outcome.json"
    js.write_text(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    data.append(js)
    cond = root / "conditions.csv"
    outcome.conditions_frame().to_csv(cond, index=False)
    data.append(cond)
    meas = root / "measures.csv"
    frames = []
    for d in outcome.protocols.values():
        kept = set(map(tuple, d.measures[["trial", "replicate"]].itertuples(index=False)))
        f = d.all_measures.copy()
        pairs = f[["trial", "replicate"]].itertuples(index=False)
        f["kept"] = [tuple(k) in kept for k in pairs]  # False: another nuisance setting won
        frames.append(f)
    pd.concat(frames, ignore_index=True).to_csv(meas, index=False)
    data.append(meas)
    return ReportPaths(root, md_path, html_path, [p for _, p in figures], data)


def write_index(reports_dir: str | Path, entries: Sequence[ClaimOutcome]) -> tuple[Path, Path]:
    """Write ``index.md`` and ``index.html`` linking every claim's report with its verdicts."""
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for o in entries:
        verdicts = "<br>".join(f"{c.id}: {_vc(c)}" for c in o.checks)
        link = f"[{o.claim_id}]({o.claim_id}/report.md)"
        rows.append([link, o.title, o.budget, verdicts])
    md_text = (
        "# Claim reports\n\n"
        + _table(["claim", "title", "budget", "verdicts"], rows)
        + "\n\nEach report holds the quotes, the setup, figures, measured values with intervals and "
        "the reasons behind every verdict.\n"
    )
    md_path = root / "index.md"
    md_path.write_text(md_text, encoding="utf-8")
    html_text = _to_html(md_text.replace("/report.md)", "/report.html)"), "Claim reports", root)
    html_path = root / "index.html"
    html_path.write_text(html_text, encoding="utf-8")
    return md_path, html_path
