"""``harness reproduce``: run a claim's studies, judge the claim, write and attach its report.

A claim (``studies/claims/<id>.yaml``) is data: the quote, the study behind it, its protocols and
its verdict rules. This module only orchestrates: each protocol's study runs through the sweep
machinery (so every run is a child in MLflow under the claim's parent run), the ledgers become
:class:`~harness.claims.RunTable` objects, the claim engine computes the verdicts from them, and
the report (Markdown, standalone HTML, figures) is written to ``reports/<claim-id>/`` and attached
to the parent run.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import flatten
from harness.redact import redact_text

__all__ = ["ReproduceResult", "reproduce_all", "reproduce_claim", "run_table", "write_book_for"]

#: harness run statuses → the claim engine's run statuses
_STATUS = {
    "completed": "completed",
    "target_reached": "completed",
    "max_steps": "completed",
    "early_stopped": "early_stopped",
    "diverged": "diverged",
    "pruned": "pruned",
    "failed": "failed",
    "interrupted": "failed",
}


@dataclass
class ReproduceResult:
    """One reproduced claim: its outcome, report files and where it is in MLflow."""

    claim_id: str
    budget: str
    outcome: Any
    report_md: Path
    report_html: Path
    experiment_id: str
    parent_run_id: str
    wall_time_s: float
    verdicts: dict[str, str] = field(default_factory=dict)
    #: CPU seconds of this process over the claim: the driver's own work (Optuna, MLflow,
    #: verdicts, figures, report) when trials run in workers (jobs ≥ 2), training too when inline
    driver_cpu_s: float = float("nan")
    n_runs: int = 0
    claim: Any = None  # the ClaimSpec reproduced (a claim may come from a file outside studies/)


def run_table(entries: Iterable[Mapping[str, Any]], protocol: str) -> Any:
    """A :class:`~harness.claims.RunTable` from a study's ledger entries (one row per seed)."""
    from harness.claims import RunTable

    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for entry in entries:
        config = dict(entry.get("config") or {})
        base = flatten({k: config[k] for k in ("data", "model", "train") if k in config})
        base.update(entry.get("params") or {})  # searched values as chosen (specs stay mappings)
        for rep in entry["replicates"]:
            status = _STATUS.get(rep["status"], "failed")
            if entry.get("state") == "pruned":
                status = "pruned"
            row = {
                "protocol": protocol,
                "trial": int(entry["number"]),
                "replicate": int(rep["replicate"]),
                "seed": int(rep["seed"]),
                "status": status,
                "reason": rep.get("reason", ""),
                "run_id": entry.get("run_id", ""),
            }
            row.update(base)
            row.update(rep.get("summary") or {})
            runs.append(row)
            for rec in rep["records"]:
                curve = {
                    "protocol": protocol,
                    "trial": int(entry["number"]),
                    "replicate": int(rep["replicate"]),
                }
                curve.update(rec)
                curve["epoch"] = int(rec["epoch"])
                curves.append(curve)
    return RunTable.from_records(runs, curves)


def _study_spec(claim: Any, protocol: str, budget: str) -> Any:
    from harness.study.spec import parse_study

    raw = dict(claim.study_for(protocol))
    # one Optuna study per (claim, protocol, budget): resuming never mixes budgets
    raw["name"] = f"claim-{claim.id}-{protocol}-{budget}"
    return parse_study(raw, source=f"{claim.source_path}#protocols.{protocol}")


def _log_probe(
    tracker: Any,
    experiment_id: str,
    parent: str,
    claim: Any,
    protocol: str,
    table: Any,
    wall_s: float,
) -> Any:
    """One MLflow child run per probe protocol (its grid, seeds, status counts and every
    evaluation as a table artifact); the table's ``run_id`` column points at it."""
    import json

    study = claim.study_for(protocol)
    run = tracker.start_run(
        experiment_id,
        run_name=f"{claim.id}/{protocol} (probe {study['probe']['name']})",
        parent_run_id=parent,
        tags={"harness.kind": "probe", "claim": claim.id, "claim.protocol": protocol},
    )
    searched = list((study.get("search") or {}).get("params") or {})
    tracker.log_params(
        run,
        {
            "probe": json.dumps(study["probe"], sort_keys=True, default=str),
            "probe.grid": ",".join(searched) or "(none)",
            "probe.grid_points": int(table.runs["trial"].nunique()),
            "replicates": int(study.get("replicates", 1)),
            "seed": int(study.get("seed", 0)),
        },
    )
    counts = table.status_counts()
    tracker.log_metrics(
        run,
        [("probe/wall_time_s", float(wall_s), 0)]
        + [(f"runs/{k}", float(v), 0) for k, v in counts.items()],
    )
    runs = table.runs.copy()
    runs["run_id"] = run
    shown = runs.map(lambda v: json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)
    tracker.log_table(run, shown, "probe_runs.json")
    tracker.end_run(
        run, "failed" if counts.get("failed") == len(runs) and len(runs) else "completed"
    )
    return type(table)(runs, table.curves)


def _log_report_views(tracker: Any, run_id: str, outcome: Any, paths: Any) -> None:
    """What the MLflow artifact viewer shows at the top of a claim's parent run, next to
    ``report/``: ``summary.md`` (the report's text), ``figure.png`` (its first figure) and
    ``verdicts.json`` (an MLflow table: one row per check with its verdict)."""
    import pandas as pd

    tracker.log_text(run_id, Path(paths.markdown).read_text(encoding="utf-8"), "summary.md")
    if paths.figures:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "figure.png"
            copy.write_bytes(Path(paths.figures[0]).read_bytes())
            tracker.log_file(run_id, copy)
    rows = [
        {
            "check": c.id,
            "verdict": str(c.verdict.value),
            "claim": c.claim,
            "protocols": ", ".join(
                f"{name}: {r.verdict.value!s}" for name, r in c.protocols.items()
            ),
            "explanation": c.explanation,
        }
        for c in outcome.checks
    ]
    if rows:
        tracker.log_table(run_id, pd.DataFrame(rows), "verdicts.json")


def timing_scope(claim: Any) -> dict[str, list[Any] | None]:
    """The protocols of ``claim`` whose runs feed a timing measure (``time_to``, a ``time/`` or
    ``throughput/`` column), each with which of its trials do: ``None`` for all of them (through
    a check, a figure or the protocol's own settings, or reused whole), else the ``where``
    filters of the protocols that reuse (``reuse``) only the trials they select."""
    from harness.train import needs_timing, strings_in

    timing = {name for name, m in claim.measures.items() if needs_timing(m)}
    direct: set[str] = set()
    for item in [*claim.checks, *getattr(claim, "figures", ())]:
        if any(s in timing for s in strings_in(item)) or needs_timing(item):
            direct.update(getattr(item, "protocols", ()) or ())
    for name, protocol in claim.protocols.items():
        if any(s in timing for s in strings_in(protocol)):
            direct.add(name)
    # a pool (``pool: [...]``) evaluates its members' runs: they need timing, all of them
    for name in sorted(direct):
        direct.update(getattr(claim.protocols.get(name), "pool", ()) or ())
    scope: dict[str, list[Any] | None] = dict.fromkeys(direct)
    # a protocol that evaluates another's runs (``reuse``) needs those runs timed: all of them,
    # or those its ``where`` keeps
    for name in sorted(direct):
        protocol = claim.protocols.get(name)
        source = getattr(protocol, "reuse", None)
        if not source or (source in scope and scope[source] is None):
            continue
        where = getattr(protocol, "where", None)
        if where is None:
            scope[source] = None
        else:
            filters = scope.setdefault(source, [])
            assert filters is not None
            filters.append(where)
    return scope


def timing_protocols(claim: Any) -> set[str]:
    """The protocols of ``claim`` some of whose runs feed a timing measure (:func:`timing_scope`)."""
    return set(timing_scope(claim))


def _protocol_stacking(claim: Any, protocol: str, stack: bool | None) -> bool:
    """Whether ``protocol``'s trials may train stacked: stacking is wanted and not all of them
    feed a timing measure (those that do train unstacked: :func:`_timed_trials`)."""
    from harness.train import STACK_REPLICATES

    wanted = STACK_REPLICATES if stack is None else stack
    scope = timing_scope(claim)
    return bool(wanted) and (protocol not in scope or scope[protocol] is not None)


def _timed_trials(claim: Any, protocol: str) -> Any:
    """``f(config) -> bool``: whether a trial of ``protocol`` (its resolved run config) feeds a
    timing measure through another protocol's ``where`` (it then trains unstacked); None when
    no trial of ``protocol`` is selected that way."""
    filters = timing_scope(claim).get(protocol)
    if not filters:
        return None

    def timed(config: Any) -> bool:
        import pandas as pd

        from harness.config import flatten

        row = pd.DataFrame([flatten(dict(config))])
        return any(bool(f.mask(row)[0]) for f in filters)

    return timed


def reproduce_command(
    claim_id: str,
    *,
    budget: str,
    jobs: int,
    blas_threads: int | None = None,
    stack: bool | None = None,
    cache: bool = True,
) -> str:
    """The ``harness reproduce`` line that re-runs this claim with the same choices.

    Recorded on the claim's parent run: every option that changes how the runs are trained
    (BLAS threads, stacking) or whether they are trained at all (the run cache) is in it.

    >>> reproduce_command("batch_size", budget="quick", jobs=2, blas_threads=1, stack=False)
    'harness reproduce batch_size --budget quick --jobs 2 --blas-threads 1 --no-stack'
    """
    parts = ["harness", "reproduce", claim_id, "--budget", budget, "--jobs", str(jobs)]
    if blas_threads is not None:
        parts += ["--blas-threads", str(blas_threads)]
    if stack is False:
        parts.append("--no-stack")
    if not cache:
        parts.append("--no-cache")
    return " ".join(parts)


def reproduce_claim(
    claim_id: str,
    *,
    budget: str = "quick",
    jobs: int = 2,
    backend: str = "loky",
    tracking_uri: str | None = None,
    storage: str | None = None,
    reports_dir: str | Path = "reports",
    data_dir: str | None = None,
    progress: bool = True,
    fresh: bool = True,
    command: str | None = None,
    study_plots: bool = False,
    echo: Any = None,
    blas_threads: int | None = None,
    on_protocol_done: Any = None,
    stack: bool | None = None,
    cache: bool = True,
) -> ReproduceResult:
    """Run, judge and report one claim (see the module docstring).

    ``fresh`` (the default) discards earlier Optuna studies of this claim and budget, so the
    verdict comes from runs made now; ``fresh=False`` resumes them (an interrupted reproduction
    keeps its finished runs). ``blas_threads`` overrides the per-trial BLAS thread choice
    (:mod:`harness.threads`). ``stack`` (default :data:`harness.train.STACK_REPLICATES`) trains
    each trial's seeds as one stacked model, except in the protocols that feed a timing measure
    (:func:`timing_protocols`), which train unstacked so that times stay per run. ``cache``
    reuses finished runs of the same resolved config, seed and code (:mod:`harness.runcache`):
    the claims share baseline runs.
    """
    from harness.claims import evaluate_claim, load_claim, write_report
    from harness.claims.probes import (
        check_probe_claim,
        is_probe_protocol,
        pad_for_claim,
        run_probe_protocol,
    )
    from harness.study.runner import reset_study, run_sweep
    from harness.tracking import Tracker, provenance_tags

    if echo is None:  # the harness's messages go through logging (harness.terminal)
        import logging

        echo = logging.getLogger("harness").info
    t0, cpu0 = time.perf_counter(), time.process_time()
    claim = load_claim(claim_id, budget=budget)
    check_probe_claim(claim)
    command = command or reproduce_command(
        claim.id, budget=budget, jobs=jobs, blas_threads=blas_threads, stack=stack, cache=cache
    )
    tracker = Tracker(tracking_uri)
    experiment = f"claim-{claim.id}"
    experiment_id = tracker.experiment(
        experiment,
        description=f"{claim.title} (claim {claim.id}; reports/{claim.id}/report.html)",
        tags={"harness.claim": claim.id, "claim.seed_files": ",".join(claim.seed_files)},
    )
    tags = provenance_tags(command)
    tags.update(
        {
            "harness.kind": "claim",
            "claim": claim.id,
            "claim.budget": budget,
            "claim.seed_files": ",".join(claim.seed_files),
            "mlflow.note.content": claim.title,
            "status": "running",
        }
    )
    parent = tracker.start_run(experiment_id, run_name=f"{claim.id} [{budget}]", tags=tags)
    tracker.log_params(
        parent,
        {
            "claim.id": claim.id,
            "claim.budget": budget,
            "claim.protocols": ",".join(claim.protocols_to_run()),
            "claim.replicates": claim.replicates,
            "claim.checks": ",".join(c.id for c in claim.checks),
        },
    )
    tables: dict[str, Any] = {}
    n_runs = 0
    try:
        probes = [p for p in claim.protocols_to_run() if is_probe_protocol(claim, p)]
        for protocol in probes:  # no training: evaluated here, in seconds
            t_probe = time.perf_counter()
            table = run_probe_protocol(claim, protocol, echo=echo)
            tables[protocol] = _log_probe(
                tracker,
                experiment_id,
                parent,
                claim,
                protocol,
                table,
                time.perf_counter() - t_probe,
            )
            n_runs += len(tables[protocol])
        for protocol in claim.protocols_to_run():
            if protocol in probes:
                continue
            spec = _study_spec(claim, protocol, budget)
            if fresh:
                reset_study(spec.name, storage)
            echo(f"[{claim.id}] protocol {protocol}: study {spec.name}")
            result = run_sweep(
                spec,
                jobs=jobs,
                backend=backend,
                storage=storage,
                tracking_uri=tracker.tracking_uri,
                data_dir=data_dir,
                progress=progress,
                command=command,
                parent_run_id=parent,
                experiment=experiment,
                log_models="none",
                tags={"claim": claim.id, "claim.protocol": protocol},
                plots=study_plots,
                blas_threads=blas_threads,
                stack=_protocol_stacking(claim, protocol, stack),
                timed_trials=_timed_trials(claim, protocol),
                cache=cache,
            )
            tables[protocol] = run_table(result.entries, protocol)
            if probes:  # a mixed claim: the probe measures' columns exist, as NaN
                tables[protocol] = pad_for_claim(claim, tables[protocol])
            n_runs += len(tables[protocol])
            if on_protocol_done is not None:  # the overall bar of a multi-claim command
                on_protocol_done(f"{claim.id}/{protocol}")
        outcome = evaluate_claim(claim, tables)
    except BaseException as exc:
        tracker.set_tags(parent, {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
        tracker.end_run(parent, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    wall = time.perf_counter() - t0
    meta = {
        "command": redact_text(command),
        "git_commit": tags.get("git.commit", "unknown")
        + (" (dirty)" if tags.get("git.dirty") == "true" else ""),
        "budget": budget,
        "wall_time_s": round(wall, 1),
        "tracking_uri": redact_text(tracker.tracking_uri),
        "experiment_name": experiment,
        "experiment_id": experiment_id,
        "parent_run_id": parent,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": n_runs,
    }
    paths = write_report(claim, outcome, tables, out_dir=Path(reports_dir), meta=meta)
    verdicts = {c.id: c.label for c in outcome.checks}
    tracker.set_tags(
        parent,
        {f"verdict.{k}": v for k, v in verdicts.items()} | {"status": "completed"},
    )
    tracker.log_metrics(parent, [("claim/runs", float(n_runs), 0), ("claim/wall_time_s", wall, 0)])
    tracker.log_dir(parent, paths.directory, "report")
    _log_report_views(tracker, parent, outcome, paths)
    tracker.end_run(parent, "completed")
    driver_cpu = time.process_time() - cpu0
    return ReproduceResult(
        claim_id=claim.id,
        budget=budget,
        outcome=outcome,
        report_md=Path(paths.markdown),
        report_html=Path(paths.html),
        experiment_id=experiment_id,
        parent_run_id=parent,
        wall_time_s=wall,
        verdicts=verdicts,
        n_runs=n_runs,
        claim=claim,
        driver_cpu_s=driver_cpu,
    )


def write_book_for(
    results: Sequence[ReproduceResult],
    reports_dir: str | Path,
    *,
    tracking_uri: str | None = None,
) -> Path:
    """The report book (:mod:`harness.claims.book`) over ``results``; returns ``index.html``."""
    from harness.claims import load_claim
    from harness.claims.book import BookEntry, write_book
    from harness.runlog import run_url
    from harness.tracking import Tracker

    tracker = Tracker(tracking_uri)
    entries = [
        BookEntry.from_result(
            r,
            r.claim if r.claim is not None else load_claim(r.claim_id, budget=r.budget),
            run_url=run_url(tracker, r.experiment_id, r.parent_run_id),
        )
        for r in results
    ]
    budgets = sorted({r.budget for r in results})
    _md, html, _json = write_book(Path(reports_dir), entries, budget=", ".join(budgets))
    return html


def reproduce_all(
    claim_ids: Sequence[str] | None = None, *, reports_dir: str | Path = "reports", **kwargs: Any
) -> tuple[list[ReproduceResult], Path]:
    """Reproduce several claims (all by default) and write the report book; returns (results,
    the book's ``index.html``)."""
    from harness.claims import list_claims

    ids = list(claim_ids or list_claims())
    results = [reproduce_claim(cid, reports_dir=reports_dir, **kwargs) for cid in ids]
    index_html = write_book_for(results, reports_dir, tracking_uri=kwargs.get("tracking_uri"))
    return results, index_html
