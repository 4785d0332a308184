"""The ``harness`` command line: train, sweep, reproduce, ui, list, demo.

Every command has ``--help``. Errors in user input (a bad YAML value, an unknown component, a
missing dataset file) print one clear line and exit with status 2; they never leave a run open.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_USAGE = 2
BLAS_THREADS_HELP = (
    "BLAS threads per trial (default: 1 when its largest GEMM is small, else cores/jobs; "
    "see harness/threads.py)"
)


class UserError(Exception):
    """An error caused by the user's input: printed without a traceback."""


# -- shared helpers ----------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)",
    )
    if data:
        p.add_argument(
            "--data-dir",
            default=None,
            help="dataset cache directory (default: $HARNESS_DATA_DIR or ~/.cache/nn-harness)",
        )


def _blas_threads(value: str) -> int:
    """``--blas-threads``: an integer >= 1, checked before anything runs."""
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return threads


def _command_line(argv: Sequence[str]) -> str:
    return shlex.join(["harness", *argv])


def _load_run_yaml(path: str, overrides: Sequence[str]) -> tuple[dict[str, Any], str]:
    """A run config from a run or study YAML plus ``--set`` overrides; returns (config, name)."""
    from harness.config import apply_overrides, load_yaml
    from harness.runconfig import RUN_SECTIONS, resolve_run_config

    raw = apply_overrides(load_yaml(path), overrides)
    name = str(raw.get("name") or Path(path).stem)
    run_part = {k: raw[k] for k in RUN_SECTIONS if k in raw}
    return resolve_run_config(run_part, source=path), name


# -- train -------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.config import ConfigError
    from harness.experiment import build_run
    from harness.runlog import fail_run, finish_run, open_run, run_url
    from harness.tracking import Tracker

    config, name = _load_run_yaml(args.config, args.set or [])
    if args.data_dir:
        os.environ["HARNESS_DATA_DIR"] = args.data_dir
    # build first: data and model errors surface before any run is created
    try:
        run = build_run(
            config, progress=not args.no_progress, data_dir=args.data_dir, resolved=True
        )
    except ConfigError as exc:
        raise ConfigError(exc.path, exc.value, exc.allowed, source=args.config) from None
    tracker = Tracker(args.tracking_uri)
    experiment_id = tracker.experiment(args.experiment or name)
    run_id = open_run(
        tracker,
        experiment_id,
        config,
        run_name=args.run_name,
        command=_command_line(argv),
    )
    print(f"run {run_id} in experiment {args.experiment or name!r} ({tracker.tracking_uri})")
    try:
        history = run.trainer.run()
    except BaseException as exc:
        fail_run(tracker, run_id, exc)
        raise
    from harness.experiment import RunResult

    result = RunResult(config=config, history=history, network=run.network)
    finish_run(tracker, run_id, result, splits=run.splits, log_model=not args.no_model, title=name)
    summary = history.summary()
    shown = {
        k: summary[k]
        for k in ("final/train/loss", "final/val/loss", "final/val/accuracy", "final/val/r2")
        if k in summary
    }
    print(f"status: {history.status} ({history.reason})")
    for k, v in shown.items():
        print(f"  {k:<22} {v:.4f}")
    print(f"  {'throughput':<22} {summary['throughput/samples_per_s']:.0f} samples/s")
    print(f"open it: `harness ui`, then {run_url(tracker, experiment_id, run_id)}")
    return 0 if history.status not in ("diverged", "failed") else 1


# -- sweep -----------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.study.runner import SweepInterrupted, reset_study, run_sweep
    from harness.study.spec import load_study
    from harness.study.storage import default_storage_url

    spec = load_study(args.study, overrides=args.set or [])
    storage = args.storage or default_storage_url(spec.name)
    if args.scheduler:
        os.environ["DASK_SCHEDULER_ADDRESS"] = args.scheduler
    if args.fresh:
        reset_study(spec.name, storage)
    print(
        f"sweep {spec.name!r}: {args.jobs} worker(s) ({args.backend}), storage {storage}",
        flush=True,
    )
    try:
        result = run_sweep(
            spec,
            jobs=args.jobs,
            backend=args.backend,
            storage=storage,
            tracking_uri=args.tracking_uri,
            data_dir=args.data_dir,
            progress=not args.no_progress,
            command=_command_line(argv),
            blas_threads=args.blas_threads,
            log_models=args.log_models,
            n_trials=args.n_trials,
            timeout=args.timeout,
            plots=not args.no_plots,
        )
    except SweepInterrupted as exc:
        print(f"harness sweep: {exc}", file=sys.stderr)
        return 130 if "interrupted" in str(exc) else 1
    print(result.summary_text)
    from harness.runlog import run_url
    from harness.tracking import Tracker

    tracker = Tracker(args.tracking_uri)
    print(f"parent run: {run_url(tracker, result.experiment_id, result.parent_run_id)}")
    print(f"wall time {result.wall_time_s:.1f} s; browse with `harness ui`")
    return 0


# -- reproduce / demo ----------------------------------------------------------------------------
def _print_claim(result: Any) -> None:
    print(
        f"\n{result.claim_id} ({result.budget}): {result.n_runs} runs in {result.wall_time_s:.0f} s"
    )
    for check in result.outcome.checks:
        print(f"  {check.id:<12} {str(check.verdict.value).upper():<13} {check.claim}")
    print(f"  report: {result.report_html}")


def _reproduce(args: argparse.Namespace, argv: Sequence[str], claim_ids: list[str]) -> int:
    from harness.reproduce import reproduce_claim

    common = {
        "budget": args.budget,
        "jobs": args.jobs,
        "backend": args.backend,
        "tracking_uri": args.tracking_uri,
        "reports_dir": args.reports_dir,
        "data_dir": args.data_dir,
        "progress": not args.no_progress,
        "fresh": not args.resume,
        "study_plots": args.study_plots,
        "blas_threads": args.blas_threads,
    }
    results = []
    for claim_id in claim_ids:
        result = reproduce_claim(claim_id, **common)
        _print_claim(result)
        results.append(result)
    if len(results) > 1:
        from harness.claims import write_index

        _, index_html = write_index(Path(args.reports_dir), [r.outcome for r in results])
        print(f"\nindex of the reports: {index_html}")
    from harness.tracking import resolve_tracking_uri

    print(
        f"MLflow: `harness ui` (or `make ui`), then http://127.0.0.1:5000 "
        f"(store {resolve_tracking_uri(args.tracking_uri)}); experiments claim-<id>"
    )
    return 0


def cmd_reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.claims import list_claims

    available = list_claims()
    if args.all:
        claim_ids = available
    elif args.claims:
        unknown = [c for c in args.claims if c not in available and not Path(c).is_file()]
        if unknown:
            raise UserError(f"unknown claim {unknown[0]!r}; known claims: {', '.join(available)}")
        claim_ids = list(args.claims)
    else:
        raise UserError(f"name a claim or use --all; known claims: {', '.join(available)}")
    return _reproduce(args, argv, claim_ids)


def cmd_demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.claims import list_claims

    print(
        "nn-harness demo: reproducing every claim of the tutorial documents at the quick budget "
        f"with {args.jobs} worker(s); every run is logged to MLflow.",
        flush=True,
    )
    code = _reproduce(args, argv, list_claims())
    index = Path(args.reports_dir) / "index.html"
    print("\nDone. Open the reports:")
    print(f"  {index.resolve()}  (and reports/<claim>/report.md)")
    print("Browse every run in the MLflow UI:  make ui   (then http://127.0.0.1:5000)")
    return code


# -- ui ------------------------------------------------------------------------------------------
def ui_command(tracking_uri: str, *, host: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line serving ``tracking_uri`` (local store or DB)."""
    from harness.tracking import _artifact_root_for

    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    root = _artifact_root_for(tracking_uri)
    if root:
        cmd += ["--default-artifact-root", root]
    return cmd


def cmd_ui(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking URI is a server already: open {uri}")
        return 0
    cmd = ui_command(uri, host=args.host, port=args.port)
    env = dict(os.environ)
    # a lighter server (2 processes, ~0.5 GB instead of ~14): no background job runner
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    print(f"MLflow UI on http://{args.host}:{args.port} (store: {uri}); Ctrl-C stops it")
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    os.execvpe(cmd[0], cmd, env)
    return 0  # pragma: no cover (exec does not return)


# -- list ----------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import models
    from harness.data import describe_datasets

    print("datasets:")
    for d in describe_datasets():
        shape = "x".join(str(s) for s in d.get("shape", ()))
        print(f"  {d['name']:<16} {d.get('task', ''):<15} {shape:<10} {d.get('description', '')}")
    for title, registry in (
        ("networks", models.NETWORKS),
        ("layers", models.LAYERS),
        ("activations", models.ACTIVATIONS),
        ("losses", models.LOSSES),
        ("initializers", models.INITIALIZERS),
        ("optimizers", models.OPTIMIZERS),
        ("schedules", models.SCHEDULES),
        ("regularizers", models.REGULARIZERS),
    ):
        print(f"{title}: {', '.join(registry.names())}")
    try:
        from harness.study.samplers import PRUNERS, SAMPLERS

        print(f"samplers: {', '.join(SAMPLERS.names())}")
        print(f"pruners: {', '.join(PRUNERS.names())}")
    except ImportError:
        pass
    studies = sorted(Path("studies").glob("*.yaml")) if Path("studies").is_dir() else []
    if studies:
        print(f"studies: {', '.join(str(p) for p in studies)}")
    claims = (
        sorted(Path("studies/claims").glob("*.yaml")) if Path("studies/claims").is_dir() else []
    )
    if claims:
        print(f"claims: {', '.join(p.stem for p in claims)}")
    return 0


# -- parser ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description=(
            "Hyperparameter studies and claim reports on a NumPy model zoo, tracked in MLflow. "
            "Start with `harness list`, `harness train studies/smoke.yaml`, `harness ui`."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train one model from a run or study YAML and log it to MLflow",
        description="Train once from the YAML's data/model/train sections (a study's search is "
        "ignored) and log the run: params, per-epoch metrics, tags, artifacts, the model.",
    )
    p.add_argument("config", help="a YAML file with data/model/train sections (e.g. a study)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any field by dotted key, e.g. --set train.batch_size=64 (repeatable)",
    )
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the YAML name)")
    p.add_argument("--run-name", default=None, help="MLflow run name")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-model", action="store_true", help="do not log the pyfunc model")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sweep",
        help="run (or resume) an Optuna study: trials in parallel worker processes, tracked in MLflow",
        description="Run the study's trials in joblib worker processes; every trial is a child "
        "MLflow run under one parent run per study. Rerunning the command resumes an interrupted "
        "study (completed trials are kept, interrupted ones rerun with their original parameters).",
    )
    p.add_argument("study", help="a study YAML, e.g. studies/smoke.yaml")
    p.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--backend", default="loky", help="joblib backend: loky (default), multiprocessing, dask..."
    )
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: journal file mlruns/optuna/<study>.journal; "
        "postgresql://..., redis://... for several hosts)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="with --backend dask: address of a running dask scheduler (default: "
        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --jobs workers)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override any study field (repeatable)"
    )
    p.add_argument("--n-trials", type=int, default=None, help="override search.n_trials (total)")
    p.add_argument("--timeout", type=float, default=None, help="stop asking after this many s")
    p.add_argument("--fresh", action="store_true", help="delete the stored study and start over")
    p.add_argument(
        "--blas-threads",
        type=_blas_threads,
        default=None,
        help=BLAS_THREADS_HELP,
    )
    p.add_argument(
        "--log-models",
        choices=("best", "all", "none"),
        default="best",
        help="log the trained model of the best trial (default), of all trials, or none",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the study plots at the end")
    _add_common(p)
    p.set_defaults(func=cmd_sweep)

    def add_reproduce_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--budget",
            choices=("quick", "full"),
            default="quick",
            help="quick: minutes on 2 cores (default); full: more seeds, longer, MNIST-1D",
        )
        p.add_argument("--jobs", "-j", type=int, default=2, help="worker processes (default 2)")
        p.add_argument("--backend", default="loky", help="joblib backend (default loky)")
        p.add_argument(
            "--reports-dir", default="reports", help="where reports go (default reports)"
        )
        p.add_argument(
            "--resume",
            action="store_true",
            help="keep the finished runs of an earlier, interrupted reproduction",
        )
        p.add_argument(
            "--study-plots", action="store_true", help="also render each protocol's study plots"
        )
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.add_argument("--blas-threads", type=_blas_threads, default=None, help=BLAS_THREADS_HELP)
        _add_common(p)

    p = sub.add_parser(
        "reproduce",
        help="reproduce claims of the tutorial documents as reports with verdicts",
        description="Run the study behind each claim (studies/claims/<id>.yaml), compute the "
        "verdict from the measured data (supported / refuted / conditional / inconclusive, with "
        "effect size and a CI over seeds), write reports/<id>/report.md and report.html, and "
        "attach them to the claim's MLflow parent run.",
    )
    p.add_argument("claims", nargs="*", help="claim ids (see `harness list`) or claim YAML files")
    p.add_argument("--all", action="store_true", help="every claim, plus reports/index.html")
    add_reproduce_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "demo",
        help="the main job on embedded data: every claim at the quick budget, with reports",
        description="What `make demo` runs: `harness reproduce --all --budget quick`, then says "
        "where the reports and the MLflow UI are.",
    )
    add_reproduce_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "ui",
        help="start the MLflow UI on the same store, bound to 127.0.0.1",
        description="Start `mlflow ui` on the harness's tracking store.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    _add_common(p, data=False)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser(
        "list",
        help="list registered datasets, zoo components, samplers, studies and claims",
        description="List everything that can be named in a study file.",
    )
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    from harness.config import ConfigError
    from harness.data import DataError
    from models.registry import SpecError

    argv = list(sys.argv[1:] if argv is None else argv)
    # MLflow prints a progress bar per artifact download/upload; our own bars are enough
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, argv))
    except (ConfigError, SpecError, UserError, DataError) as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
