"""End of a sweep: the trial table, best trial, plots and warnings, attached to the parent run.

The parent run gets pre-aggregated artifacts (pitfalls §2.8: nobody should have to open hundreds
of child runs): ``trials.csv`` (every trial with its parameters, state, objective, the median over
replicate seeds with its interval, MLflow run id), ``best.json``, ``plots/*.png`` and
``warnings.txt``.

Intervals over seeds are the claims' intervals (:func:`harness.claims.intervals.seed_interval`):
the exact order-statistic interval of the median, whose ends are seed values (so an accuracy's
interval never leaves [0, 1]) and whose level is the one actually reached with that many seeds
(3 seeds: their range, 75 %). ``trials.csv`` names method and level in its ``ci_method`` and
``ci_level`` columns, the printed summary in its last line.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.claims.intervals import Interval, seed_interval

__all__ = ["format_summary", "metric_bounds", "seed_interval", "summarize_study", "trials_table"]


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The range of a metric where it has one: accuracies lie in [0, 1]."""
    return (0.0, 1.0) if "accuracy" in metric.rsplit("/", 1)[-1] else None


def seeds_summary(values: list[float], metric: str) -> tuple[float, float, float, Interval]:
    """Mean and s.d. of the finite per-seed values, the median and its interval."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    mean = float(finite.mean()) if finite.size else math.nan
    sd = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    med, iv = seed_interval(values, metric_bounds(metric))
    return mean, sd, med, iv


def trials_table(runner: Any, study: Any) -> Any:
    """One row per Optuna trial (interrupted ones included, flagged), as a DataFrame."""
    import pandas as pd

    from harness.study.spec import objective_value

    ledger = {int(e["number"]): e for e in runner.ledger.entries()}
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "interrupted": bool(t.user_attrs.get("interrupted", False)),
            "retry_of": t.user_attrs.get("retry_of"),
            "design_index": t.user_attrs.get("design_index"),
            "mlflow_run_id": t.user_attrs.get("mlflow_run_id", ""),
            "duration_s": t.duration.total_seconds() if t.duration else math.nan,
        }
        for i, objective in enumerate(runner.spec.objectives):
            metric = objective["metric"]
            row[f"value/{metric}"] = t.values[i] if t.values else math.nan
        for key, value in t.params.items():
            row[f"param/{key}"] = value
        entry = ledger.get(t.number)
        if entry is not None:
            row["reason"] = entry.get("reason", "")
            row["pruned_at_epoch"] = entry.get("pruned_at_epoch")
            for objective in runner.spec.objectives:
                per_seed = [
                    objective_value(rep["records"], objective, summary=rep["summary"])
                    for rep in entry["replicates"]
                ]
                metric = objective["metric"]
                mean, sd, med, iv = seeds_summary(per_seed, metric)
                row[f"seeds/{metric}/mean"] = mean
                row[f"seeds/{metric}/sd"] = sd
                row[f"seeds/{metric}/median"] = med
                row[f"seeds/{metric}/ci_low"] = iv.low if len(per_seed) > 1 else math.nan
                row[f"seeds/{metric}/ci_high"] = iv.high if len(per_seed) > 1 else math.nan
                row[f"seeds/{metric}/ci_level"] = iv.level if len(per_seed) > 1 else math.nan
                row[f"seeds/{metric}/ci_method"] = iv.label() if len(per_seed) > 1 else ""
            row["n_seeds"] = len(entry["replicates"])
        else:
            row["reason"] = t.user_attrs.get("fail_reason", "")
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(result: Any, table: Any, spec: Any, *, top: int = 10) -> str:
    """The end-of-sweep text: counts, best trial and its run id, the top trials, warnings."""
    lines = [
        f"study {result.study_name}: {result.n_complete} complete, {result.n_pruned} pruned, "
        f"{result.n_failed} failed (interrupted trials are not counted)"
    ]
    metric_cols = [f"value/{o['metric']}" for o in spec.objectives]
    if result.best_number is not None:
        vals = ", ".join(f"{v:.5g}" for v in (result.best_values or []))
        lines.append(f"best trial #{result.best_number}: {vals}  (MLflow run {result.best_run_id})")
        for k, v in (result.best_params or {}).items():
            lines.append(f"    {k} = {v}")
    done = table[(table["state"] == "COMPLETE")] if len(table) else table
    if len(done):
        ascending = spec.directions[0] == "minimize"
        done = done.sort_values(metric_cols[0], ascending=ascending).head(top)
        param_cols = [c for c in table.columns if c.startswith("param/")]
        with_seeds = [c for c in metric_cols if c.replace("value/", "seeds/") + "/ci_low" in done]
        header = [
            "#",
            *[c.split("/", 1)[1] for c in metric_cols],
            *[f"median [interval] ({c.split('/', 1)[1]})" for c in with_seeds],
            *[c[6:] for c in param_cols],
        ]
        body = []
        methods: set[str] = set()
        for _, row in done.iterrows():
            cells = [str(row["number"])]
            cells += [f"{row[c]:.4g}" for c in metric_cols]
            for c in with_seeds:
                base = c.replace("value/", "seeds/")
                lo, hi = row[base + "/ci_low"], row[base + "/ci_high"]
                if isinstance(lo, float) and not math.isnan(lo):
                    cells.append(_fmt_interval(row[base + "/median"], lo, hi))
                    level = float(row[base + "/ci_level"])
                    methods.add(
                        str(row[base + "/ci_method"])
                        + (", below 95 %: too few seeds" if level < 0.95 else "")
                    )
                else:
                    cells.append("—")

            cells += [_short(row[c]) for c in param_cols]
            body.append(cells)
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
        lines.append("")
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in body:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if methods:
            lines.append(
                "intervals: order-statistic interval of the median over seeds ("
                + "; ".join(sorted(methods))
                + ")"
            )
    lines += _not_completed(table)
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _fmt_interval(med: float, lo: float, hi: float) -> str:
    """The median and its interval with one rounding, so the median prints inside it."""
    from harness.claims.intervals import fmt_est_ci

    return fmt_est_ci(float(med), float(lo), float(hi))


def _not_completed(table: Any, *, limit: int = 20) -> list[str]:
    """The failed and pruned trials with their reasons (interrupted ones are not counted)."""
    if not len(table) or "state" not in table.columns:
        return []
    bad = table[table["state"].isin(["FAIL", "PRUNED"])]
    if "interrupted" in bad.columns:
        bad = bad[~bad["interrupted"].astype(bool)]
    if bad.empty:
        return []
    lines = ["", f"failed and pruned trials ({len(bad)}):"]
    for _, row in bad.head(limit).iterrows():
        reason = str(row.get("reason") or "no reason recorded").strip().splitlines()[0]
        state = "failed" if row["state"] == "FAIL" else "pruned"
        lines.append(f"  #{row['number']} {state}: {reason[:160]}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (trials.csv has every reason)")
    return lines


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 28 else text[:25] + "..."


def summarize_study(runner: Any, study: Any, result: Any, *, plots: bool = True) -> None:
    """Fill ``result`` (counts, best trial) and attach the study artifacts to the parent run."""
    from optuna.trial import TrialState

    tracker, parent = runner.tracker, runner.parent_run_id
    finished = runner._finished_trials(study)
    result.n_complete = sum(t.state == TrialState.COMPLETE for t in finished)
    result.n_pruned = sum(t.state == TrialState.PRUNED for t in finished)
    result.n_failed = sum(t.state == TrialState.FAIL for t in finished)
    table = trials_table(runner, study)
    best_trials = []
    if result.n_complete:
        best_trials = (
            [study.best_trial] if len(runner.spec.directions) == 1 else list(study.best_trials)
        )
    if best_trials:
        best = best_trials[0]
        result.best_number = best.number
        result.best_values = list(best.values)
        result.best_params = dict(best.params)
        result.best_run_id = best.user_attrs.get("mlflow_run_id")
    metrics: list[tuple[str, float, int]] = [
        ("trials/complete", result.n_complete, 0),
        ("trials/pruned", result.n_pruned, 0),
        ("trials/failed", result.n_failed, 0),
    ]
    if best_trials and len(runner.spec.directions) == 1:
        metrics.append((f"best/{runner.spec.objectives[0]['metric']}", best_trials[0].value, 0))
    tracker.log_metrics(parent, metrics)
    if result.best_params is not None:
        # tags, not params: a resumed study may find a new best, and MLflow params are immutable
        tracker.set_tags(
            parent,
            {f"best.{k}": v for k, v in result.best_params.items()}
            | {"best.trial_number": result.best_number, "best.run_id": result.best_run_id},
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        table.to_csv(out / "trials.csv", index=False)
        tracker.log_file(parent, out / "trials.csv")
        if len(table):  # the same table as an MLflow table: the artifact viewer shows it
            tracker.log_table(parent, table, "trials_table.json")
        best_doc = {
            "trials": [
                {
                    "number": t.number,
                    "values": list(t.values),
                    "params": dict(t.params),
                    "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
                }
                for t in best_trials
            ]
        }
        tracker.log_text(parent, json.dumps(best_doc, indent=2, default=str), "best.json")
        if plots and len(table):
            result.warnings.extend(_render_plots(runner, study, table, out / "plots"))
            if (out / "plots").is_dir():
                tracker.log_dir(parent, out / "plots", "plots")
                if (out / "plots" / "figure.png").is_file():  # the sweep's paper figure, on top
                    tracker.log_file(parent, out / "plots" / "figure.png")
                    result.artifacts.append("figure.png")
                result.artifacts += [f"plots/{p.name}" for p in (out / "plots").glob("*.png")]
        if result.warnings:
            tracker.log_text(parent, "\n".join(result.warnings) + "\n", "warnings.txt")
        summary = format_summary(result, table, runner.spec)
        tracker.log_text(parent, summary + "\n", "summary.txt")
    result.summary_text = summary


def _render_plots(runner: Any, study: Any, table: Any, out: Path) -> list[str]:
    """Render the study plots; returns the edge-of-space warnings."""
    from harness.study import plots as study_plots

    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    try:
        entries = list(runner.ledger.entries())
        rendered = study_plots.render_study_plots(
            study,
            out,
            spec=runner.spec,
            curves=curves_frame(entries),
            trials=table,
            seed_curves=study_plots.seed_curves_frame(entries),
        )
        warnings.extend(rendered.warnings)
    except Exception as exc:  # plots must not sink the sweep's results
        warnings.append(f"plots failed: {type(exc).__name__}: {exc}")
    return warnings


def curves_frame(entries: Any) -> Any:
    """Per-epoch curves of every finished trial (mean over its seeds) as a DataFrame."""
    import pandas as pd

    from harness.study.worker import average_records

    rows = []
    for entry in entries:
        for rec in average_records([rep["records"] for rep in entry["replicates"]]):
            rows.append({"trial": entry["number"], "state": entry["state"], **rec})
    return pd.DataFrame(rows)
