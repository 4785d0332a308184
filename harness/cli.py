"""The ``harness`` command line: train, sweep, reproduce, ui, dashboard, list, demo.

Every command has ``--help``. One error path for every mistake a user can make (a bad YAML value,
an unknown component, a command-line option out of range, missing or non-finite data, a store that
cannot be reached or written, a refused resume): one line

    harness <command>: error: <where>: <field> = <value> is not allowed: expected <what>

plus at most a few lines of help, exit status 2, no traceback (``--debug`` shows it), and nothing
written before it: each command runs the pre-flight (:mod:`harness.validate`) before its first
side effect.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import os
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

log = logging.getLogger("harness")

EXIT_USAGE = 2
EXIT_INTERNAL = 1
#: help lines printed under an error line (a missing dataset lists its files and checksums)
MAX_HINT_LINES = 10
#: where a command-line mistake is reported
CLI = "command line"
#: joblib backends a sweep can run its trials on (joblib's own, and dask's)
BACKENDS = ("loky", "multiprocessing", "threading", "sequential", "dask")
BLAS_THREADS_HELP = (
    "BLAS threads per trial (default: 1 when its largest GEMM is small, else cores/jobs; "
    "see harness/threads.py)"
)


SYSTEM_METRICS_HELP = (
    "log CPU and memory (psutil, every second) as system/... metrics of each run: the run "
    "page's System metrics tab"
)


class UserError(Exception):
    """An error caused by the user's input: printed without a traceback."""


class UsageError(Exception):
    """argparse could not parse the command line (the message is already in our format)."""

    def __init__(self, prog: str, message: str, hint: str, raw: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.hint = hint
        self.raw = raw  # argparse's own message


class HarnessParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors go through the harness's one error format."""

    def error(self, message: str) -> Any:
        hint = f"see `{self.prog} --help`"
        raise UsageError(self.prog, _usage_message(self, message), hint, message)


def _options_of(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _usage_message(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's message in the form ``command line: <option> = <value> is not allowed: ...``."""
    m = re.match(r"argument ([^:/ ]+)(?:/\S+)?: (.*)$", message, re.S)
    if m:
        option, rest = m.groups()
        if rest.startswith("= "):  # from our own type functions
            return f"{CLI}: {option} {rest}"
        choice = re.match(r"invalid choice: (.*?) \(choose from (.*)\)$", rest)
        if choice:
            allowed = choice.group(2).replace("'", "")
            return f"{CLI}: {option} = {choice.group(1)} is not allowed: expected one of {allowed}"
        if rest.startswith("expected"):
            return f"{CLI}: {option} = <missing> is not allowed: expected a value after it"
        return f"{CLI}: {option} is not allowed: {rest}"
    m = re.match(r"unrecognized arguments: (.*)$", message)
    if m:
        extra = m.group(1).split()[0]
        if not extra.startswith("-"):  # a word where no more arguments are taken
            why = (
                " (one key=value per --set: repeat --set for each)"
                if "=" in extra and "--set" in _options_of(parser)
                else ""
            )
            return (
                f"{CLI}: argument = {extra!r} is not allowed: expected only the arguments "
                f"in the usage of `{parser.prog}`{why}"
            )
        close = difflib.get_close_matches(extra, _options_of(parser), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"{CLI}: option = {extra!r} is not allowed: expected an option of `{parser.prog}`{hint}"
        )
    m = re.match(r"the following arguments are required: (.*)$", message)
    if m:
        return f"{CLI}: {m.group(1)} = <missing> is not allowed: expected a value (see usage)"
    return f"{CLI}: {message}"


# -- option types: each message continues "<option> " ------------------------------------------
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(
                f"= {text} is not allowed: expected an integer >= {low}"
            )
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"= {text} is not allowed: expected a finite number of seconds > 0"
        )
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"= {text} is not allowed: expected a port number in [1, 65535]"
        )
    return value


#: ``--blas-threads``: an integer >= 1, checked before anything runs
_blas_threads = _int_at_least(1)


def _curve_points(text: str) -> str:
    """``--curve-points``: an integer >= 3 or ``all``, checked before anything runs."""
    from harness.tracking import resolve_curve_points

    try:
        resolve_curve_points(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"= {text} is not allowed: expected an integer >= 3 (points per series per run) "
            "or 'all' (every epoch)"
        ) from None
    return text


_curve_points.__name__ = "integer >= 3 or 'all'"
CURVE_POINTS_HELP = (
    "points per metric curve per MLflow run: first, last, best and evenly spaced epochs "
    "(default: $HARNESS_CURVE_POINTS or 50); 'all' logs every epoch. history.csv and the "
    "ledger keep every epoch either way"
)


# -- shared helpers ----------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)",
    )
    if data:
        p.add_argument("--curve-points", type=_curve_points, default=None, help=CURVE_POINTS_HELP)
        p.add_argument(
            "--data-dir",
            default=None,
            help="dataset cache directory (default: $HARNESS_DATA_DIR or ~/.cache/nn-harness)",
        )


def _command_line(argv: Sequence[str]) -> str:
    return shlex.join(["harness", *argv])


def _warn(command: str, message: str) -> None:
    """``harness <command>: warning: <message>`` on stderr, through the ``harness`` logger."""
    logging.getLogger("harness").warning(message)


def _check_override_keys(overrides: Sequence[str], allowed: Sequence[str], source: str) -> None:
    """Every ``--set`` key must start with a top-level key of the file (``trian.epochs`` is a
    typo, not a new section)."""
    from harness.config import ConfigError, parse_override

    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as exc:
            raise exc.located(CLI) from None
        top = key.split(".")[0]
        if top not in allowed:
            close = difflib.get_close_matches(top, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                key,
                value,
                f"a key under one of {', '.join(allowed)}{hint}",
                source=f"{source} (--set)",
            )


#: top-level keys that only one kind of file has, and the command that runs that kind
_FILE_KINDS = (
    ({"protocols", "measures", "claim"}, "a claim file", "harness reproduce"),
    ({"search", "objective"}, "a study file", "harness sweep"),
)


def _wrong_kind(exc: Exception, path: str, command: str) -> Exception:
    """``exc`` with a hint when ``path`` is another kind of file than ``command`` runs (a claim
    given to ``harness train``)."""
    from harness.config import ConfigError, load_yaml

    if not isinstance(exc, ConfigError) or exc.hint:
        return exc
    try:
        raw = load_yaml(path)
    except ConfigError:
        return exc
    for keys, kind, runner in _FILE_KINDS:
        if keys & set(raw) and runner != command:
            exc.hint = f"{path} looks like {kind}: run it with `{runner} {path}`."
            break
    return exc


def _load_run_yaml(path: str, overrides: Sequence[str]) -> tuple[dict[str, Any], str]:
    """A run config from a run or study YAML plus ``--set`` overrides; returns (config, name).

    As strict as a study file: an empty file, an unknown top-level key or an override of an
    unknown key is an error.
    """
    from harness.config import ConfigError, apply_overrides, check_keys, load_yaml
    from harness.runconfig import RUN_SECTIONS, resolve_run_config
    from harness.study.spec import STUDY_KEYS

    raw = load_yaml(path)
    if not raw:
        raise ConfigError(
            "",
            None,
            f"a run or study YAML with at least one of {', '.join(RUN_SECTIONS)} (the file is "
            "empty)",
            source=path,
        )
    try:
        check_keys("", raw, STUDY_KEYS)
    except ConfigError as exc:
        raise _wrong_kind(exc.located(path), path, "harness train") from None
    _check_override_keys(overrides, STUDY_KEYS, path)
    raw = apply_overrides(raw, overrides)
    name = str(raw.get("name") or Path(path).stem)
    run_part = {k: raw[k] for k in RUN_SECTIONS if k in raw}
    return resolve_run_config(run_part, source=path), name


# -- train -------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.experiment import RunResult, build_run
    from harness.runlog import fail_run, finish_run, open_run, run_url
    from harness.tracking import Tracker
    from harness.validate import check_train

    config, name = _load_run_yaml(args.config, args.set or [])
    # the pre-flight: config, data, network and store errors surface before any run is created
    check_train(config, tracking_uri=args.tracking_uri, data_dir=args.data_dir, source=args.config)
    if args.data_dir:
        os.environ["HARNESS_DATA_DIR"] = args.data_dir
    run = build_run(config, progress=not args.no_progress, data_dir=args.data_dir, resolved=True)
    tracker = Tracker(args.tracking_uri)
    experiment_id = tracker.experiment(
        args.experiment or name, description=f"harness train {args.config}"
    )
    run_id = open_run(
        tracker,
        experiment_id,
        config,
        run_name=args.run_name,
        command=_command_line(argv),
    )
    print(f"run {run_id} in experiment {args.experiment or name!r} ({tracker.tracking_uri})")
    sampler = None
    if args.system_metrics:
        from harness.sysmetrics import SystemSampler

        sampler = SystemSampler().start()
    try:
        history = run.trainer.run()
    except BaseException as exc:
        if sampler is not None:
            tracker.log_metrics(run_id, sampler.stop())
        fail_run(tracker, run_id, exc)
        raise
    if sampler is not None:
        tracker.log_metrics(run_id, sampler.stop())
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
    throughput = summary["throughput/samples_per_s"]
    if math.isfinite(throughput):
        print(f"  {'throughput':<22} {throughput:.0f} samples/s")
    else:
        print(f"  {'throughput':<22} {history.throughput_note or 'not measured'}")
    print(f"open it: `harness ui`, then {run_url(tracker, experiment_id, run_id)}")
    return 0 if history.status not in ("diverged", "failed") else 1


# -- sweep -----------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.config import ConfigError, load_yaml
    from harness.study.runner import SweepInterrupted, reset_study, run_sweep
    from harness.study.spec import STUDY_KEYS, parse_study
    from harness.study.storage import default_storage_url
    from harness.validate import blas_oversubscription, check_sweep

    raw = load_yaml(args.study)
    _check_override_keys(args.set or [], STUDY_KEYS, args.study)
    try:
        spec = parse_study(
            raw, source=args.study, overrides=args.set or [], source_path=Path(args.study)
        )
    except ConfigError as exc:
        raise _wrong_kind(exc, args.study, "harness sweep") from None
    storage = args.storage or default_storage_url(spec.name)
    if args.scheduler:
        if args.backend != "dask":
            raise ConfigError(
                "--scheduler",
                args.scheduler,
                f"it only with --backend dask (the trials run on {args.backend})",
                source=CLI,
            )
        from harness.stores import check_dask_scheduler

        check_dask_scheduler(args.scheduler)
        os.environ["DASK_SCHEDULER_ADDRESS"] = args.scheduler
    # the pre-flight, then (--fresh) the deletion: a mistake never costs a finished study
    check_sweep(
        spec,
        storage=storage,
        tracking_uri=args.tracking_uri,
        data_dir=args.data_dir,
        fresh=args.fresh,
        backend=args.backend,
    )
    warning = blas_oversubscription(args.jobs, args.blas_threads)
    if warning:  # after the pre-flight: an error stays the only line
        _warn("sweep", warning)
    if args.fresh:
        reset_study(spec.name, storage)
    from harness.redact import redact_text

    log.info(
        f"sweep {spec.name!r}: up to {args.jobs} worker(s) ({args.backend}), "
        f"storage {redact_text(storage)}"
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
            system_metrics=args.system_metrics,
            stack=False if args.no_stack else None,
            cache=not args.no_cache,
        )
    except SweepInterrupted as exc:
        print(f"harness sweep: {redact_text(str(exc))}", file=sys.stderr)
        return 130 if "interrupted" in str(exc) else 1
    print(result.summary_text)
    from harness.runlog import run_url
    from harness.tracking import Tracker

    tracker = Tracker(args.tracking_uri)
    print(f"parent run: {run_url(tracker, result.experiment_id, result.parent_run_id)}")
    print(f"wall time {result.wall_time_s:.1f} s; browse with `harness ui`")
    return 0


#: the help of --no-stack (sweep, reproduce, demo)
NO_STACK_HELP = (
    "train each trial's replicate seeds one by one instead of as one stacked model (same "
    "numbers to float rounding; studies and claim protocols that measure time always train "
    "unstacked)"
)


#: the help of --no-cache (sweep, reproduce, demo)
NO_CACHE_HELP = (
    "train every run even when a finished run of the same resolved config, seed and code "
    "version is in the run cache (mlruns/runcache); reused runs carry the MLflow tag "
    "cache.source_run"
)


# -- reproduce / demo ----------------------------------------------------------------------------
def _print_claim(result: Any) -> None:
    print(
        f"\n{result.claim_id} ({result.budget}): {result.n_runs} runs in {result.wall_time_s:.0f} s"
    )
    for check in result.outcome.checks:
        print(f"  {check.id:<12} {check.label.upper():<13} {check.claim}")
    print(f"  report: {result.report_html}")


def _reproduce(args: argparse.Namespace, argv: Sequence[str], claim_ids: list[str]) -> int:
    from harness.config import ConfigError
    from harness.reproduce import reproduce_claim
    from harness.stores import check_tracking_uri, check_writable_dir
    from harness.validate import blas_oversubscription, check_claim

    # the stores first (seconds at most), then every claim's every protocol, before any run
    check_tracking_uri(args.tracking_uri)
    check_writable_dir(args.reports_dir, field="--reports-dir", source="command line")
    for claim_id in claim_ids:
        try:
            check_claim(
                claim_id,
                budget=args.budget,
                tracking_uri=args.tracking_uri,
                data_dir=args.data_dir,
                fresh=not args.resume,
                backend=args.backend,
            )
        except ConfigError as exc:
            if not Path(claim_id).is_file():
                raise
            raise _wrong_kind(exc, claim_id, "harness reproduce") from None
    warning = blas_oversubscription(args.jobs, args.blas_threads)
    if warning:  # after the pre-flight: an error stays the only line
        _warn(args.command, warning)

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
        "stack": False if args.no_stack else None,
        "cache": not args.no_cache,
    }
    from harness.claims import load_claim
    from harness.terminal import OverallProgress

    # one bar over every protocol of every claim (done/total, ETA) when there is more than one
    n_protocols = sum(len(load_claim(c, budget=args.budget).protocols_to_run()) for c in claim_ids)
    overall = OverallProgress(
        n_protocols,
        enabled=not args.no_progress,
        desc=f"{len(claim_ids)} claim(s)",
        unit="protocol",
    )
    results = []
    try:
        for claim_id in claim_ids:
            result = reproduce_claim(claim_id, **common, on_protocol_done=overall.advance)
            _print_claim(result)
            results.append(result)
    finally:
        overall.close()
    if len(results) > 1:
        from harness.reproduce import write_book_for

        index_html = write_book_for(results, args.reports_dir, tracking_uri=args.tracking_uri)
        total = sum(r.wall_time_s for r in results)
        print(f"\nreport book ({len(results)} claims, {total:.0f} s): {index_html}")
    from harness.tracking import resolve_tracking_uri

    print(
        f"MLflow: `harness ui` (or `make ui`), then http://127.0.0.1:5000 "
        f"(store {resolve_tracking_uri(args.tracking_uri)}); experiments claim-<id>"
    )
    return 0


def cmd_reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.claims import list_claims
    from harness.config import ConfigError

    available = list_claims()
    if args.all:
        claim_ids = available
    elif args.claims:
        unknown = [c for c in args.claims if c not in available and not Path(c).is_file()]
        if unknown:
            close = difflib.get_close_matches(unknown[0], available, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                "claim",
                unknown[0],
                f"a claim id or claim YAML file{hint}; known claims: {', '.join(available)}",
                source=CLI,
            )
        claim_ids = list(args.claims)
    else:
        raise ConfigError.missing(
            "claim", f"a claim id or --all; known claims: {', '.join(available)}", source=CLI
        )
    return _reproduce(args, argv, claim_ids)


#: What ``harness demo`` (``make demo``) reproduces: the three headline claims, in minutes;
#: ``harness reproduce --all`` runs the whole catalogue.
DEMO_CLAIMS = ("batch_size", "mse_vs_ce", "sigmoid_vs_relu")


def cmd_demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.claims import list_claims

    print(
        f"nn-harness demo: reproducing the headline claims ({', '.join(DEMO_CLAIMS)}) at the "
        f"quick budget with {args.jobs} worker(s); every run is logged to MLflow. "
        "`harness reproduce --all` runs the whole catalogue.",
        flush=True,
    )
    claims = [c for c in DEMO_CLAIMS if c in list_claims()]
    code = _reproduce(args, argv, claims)
    index = Path(args.reports_dir) / "index.html"
    print("\nDone. Open the reports:")
    print(f"  {index.resolve()}  (and reports/<claim>/report.md)")
    print("Browse every run in the MLflow UI:  make ui   (then http://127.0.0.1:5000)")
    print("The Optuna studies in optuna-dashboard:  make dashboard   (http://127.0.0.1:8080)")
    _say_how_to_reach_harness()
    return code


def _say_how_to_reach_harness() -> None:
    """After `make demo` the script is in the virtual environment, not on the PATH: say so."""
    import shutil

    venv_bin = Path(sys.prefix) / "bin"
    found = shutil.which("harness")
    if sys.prefix != sys.base_prefix and (found is None or Path(found).parent != venv_bin):
        rel = os.path.relpath(venv_bin) if venv_bin.is_relative_to(Path.cwd()) else venv_bin
        print(f"`harness` is in {rel}: `source {rel}/activate` puts it on the PATH")


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
    if _harness_app_registered():  # experiments open on their runs (harness/mlflow_app.py)
        from harness.mlflow_app import APP_NAME

        cmd += ["--app-name", APP_NAME]
    return cmd


def _harness_app_registered() -> bool:
    """Whether the installed package registers the ``mlflow.app`` plugin (an install from an
    older checkout does not: then the plain UI)."""
    import importlib.metadata

    from harness.mlflow_app import APP_NAME

    return any(ep.name == APP_NAME for ep in importlib.metadata.entry_points(group="mlflow.app"))


def cmd_ui(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.stores import check_port_free, check_tracking_uri

    uri = check_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking URI is a server already: open {uri}")
        return 0
    # a busy port is one line here, not an error buried in the server's log after exec
    check_port_free(args.host, args.port)
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


# -- dashboard -------------------------------------------------------------------------------------
def cmd_dashboard(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.dashboard import resolve_target, serve
    from harness.stores import check_optuna_storage, check_port_free
    from harness.study.storage import legacy_storage_urls

    if args.storage:
        check_optuna_storage(args.storage)
    check_port_free(args.host, args.port)
    target = resolve_target(args.study, storage_url=args.storage)
    what = f"study {target.study_name!r}" if target.study_name else "every study"
    print(
        f"optuna-dashboard on {target.url(args.host, args.port)} ({what}; storage "
        f"{target.storage_url}); Ctrl-C stops it",
        flush=True,
    )
    if args.study is None and not args.storage:
        for url in legacy_storage_urls():
            print(
                f"  (a study of the older layout has its own journal: {url}; "
                "`harness dashboard <study>` opens it)"
            )
    if args.dry_run:
        return 0
    serve(target, host=args.host, port=args.port)
    return 0


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
    from harness.claims.probes import PROBES
    from models.objectives import OBJECTIVES

    print(f"probes (claims without training): {', '.join(PROBES.names())}")
    print(f"toy objectives (probe toy_descent): {', '.join(OBJECTIVES.names())}")
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
    parser = HarnessParser(
        prog="harness",
        description=(
            "Hyperparameter studies and claim reports on a NumPy model zoo, tracked in MLflow. "
            "Start with `harness list`, `harness train studies/smoke.yaml`, `harness ui`."
        ),
    )
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=HarnessParser
    )

    p = sub.add_parser(
        "train",
        help="train one model from a run or study YAML and log it to MLflow",
        description="Train once from the YAML's data/model/train sections (a study's search is "
        "ignored) and log the run: params, metric curves (--curve-points), tags, artifacts, "
        "the model.",
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
    p.add_argument("--system-metrics", action="store_true", help=SYSTEM_METRICS_HELP)
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
    p.add_argument(
        "--jobs", "-j", type=_int_at_least(1), default=1, help="worker processes (default 1)"
    )
    p.add_argument(
        "--backend",
        default="loky",
        choices=BACKENDS,
        help="joblib backend: loky (default), multiprocessing, threading, sequential or dask",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default: the journal file mlruns/optuna/studies.journal; "
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
    p.add_argument(
        "--n-trials", type=_int_at_least(1), default=None, help="override search.n_trials (total)"
    )
    p.add_argument("--timeout", type=_seconds, default=None, help="stop asking after this many s")
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
    p.add_argument("--system-metrics", action="store_true", help=SYSTEM_METRICS_HELP)
    p.add_argument("--no-stack", action="store_true", help=NO_STACK_HELP)
    p.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    _add_common(p)
    p.set_defaults(func=cmd_sweep)

    def add_reproduce_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--budget",
            choices=("tiny", "quick", "full"),
            default="quick",
            help="quick: minutes on 2 cores (default); full: more seeds, longer, MNIST-1D; "
            "tiny: 1 seed, 1-2 epochs, a smoke test (claims that define it)",
        )
        p.add_argument(
            "--jobs", "-j", type=_int_at_least(1), default=2, help="worker processes (default 2)"
        )
        p.add_argument(
            "--backend", default="loky", choices=BACKENDS, help="joblib backend (default loky)"
        )
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
        p.add_argument("--no-stack", action="store_true", help=NO_STACK_HELP)
        p.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
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
    p.add_argument(
        "--all", action="store_true", help="every claim, plus the report book reports/index.html"
    )
    add_reproduce_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "demo",
        help="the main job on embedded data: the three headline claims at the quick budget",
        description="What `make demo` runs: `harness reproduce batch_size mse_vs_ce "
        "sigmoid_vs_relu --budget quick` (the headline claims, a few minutes), then says where "
        "the reports and the MLflow UI are. `harness reproduce --all` runs every claim.",
    )
    add_reproduce_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "ui",
        help="start the MLflow UI on the same store, bound to 127.0.0.1",
        description="Start `mlflow ui` on the harness's tracking store.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    _add_common(p, data=False)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser(
        "dashboard",
        help="start optuna-dashboard on the sweeps' Optuna storage, bound to 127.0.0.1",
        description="Serve optuna-dashboard (trials, history, importances, parallel coordinates) "
        "on the storage `harness sweep` writes: the shared journal mlruns/optuna/studies.journal "
        "(every study), or --storage. Naming a study opens its page.",
    )
    p.add_argument("study", nargs="?", default=None, help="a study name (default: all studies)")
    p.add_argument(
        "--storage", default=None, help="Optuna storage URL (default: the sweeps' journal)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default 8080)")
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be served, and serve nothing"
    )
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser(
        "list",
        help="list registered datasets, zoo components, samplers, studies and claims",
        description="List everything that can be named in a study file.",
    )
    p.set_defaults(func=cmd_list)
    for command_parser in sub.choices.values():
        _add_debug(command_parser, default=argparse.SUPPRESS)
    parser.command_parsers = dict(sub.choices)  # type: ignore[attr-defined]
    return parser


def _add_debug(p: argparse.ArgumentParser, *, default: Any) -> None:
    """``--debug`` and ``--verbose`` before or after the command (the command's copy must not
    reset the main one)."""
    p.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the traceback of an error (also: HARNESS_DEBUG=1)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="also show MLflow's and Optuna's own log lines and warnings (hidden by default)",
    )


def _print_error(prog: str, message: str, hint: str | None) -> None:
    from harness.redact import redact_text  # a password in a storage URL is never printed

    print(f"{prog}: error: {redact_text(message)}", file=sys.stderr)
    for line in (hint or "").splitlines()[:MAX_HINT_LINES]:
        print(f"  {redact_text(line)}", file=sys.stderr)


def _command_of(argv: Sequence[str]) -> argparse.ArgumentParser | None:
    """The parser of the first command named in ``argv`` (the main parser reports unknown
    options of a command itself)."""
    commands = getattr(build_parser(), "command_parsers", {})
    command = next((a for a in argv if a in commands), None)
    return commands[command] if command else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script; returns the exit status."""
    from harness.config import ConfigError
    from harness.data import DataError
    from harness.stores import bound_mlflow_retries
    from models.registry import SpecError

    argv = list(sys.argv[1:] if argv is None else argv)
    from harness.terminal import configure

    # before MLflow is imported: its INFO lines and the libraries' warnings stay hidden
    command_name = next((a for a in argv if not a.startswith("-")), "")
    configure(verbose="--verbose" in argv, prog=f"harness {command_name}".strip())
    # MLflow prints a progress bar per artifact download/upload; our own bars are enough
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # a tracking server that goes away is an error in seconds, not after 4 minutes of retries
    bound_mlflow_retries()
    parser = build_parser()
    debug = "--debug" in argv or os.environ.get("HARNESS_DEBUG", "") not in ("", "0")
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        command = _command_of(argv) if exc.prog == "harness" else None
        if command is not None:  # say it as the command's own parser would
            exc = UsageError(command.prog, _usage_message(command, exc.raw), "", exc.raw)
            exc.hint = f"see `{command.prog} --help`"
        _print_error(exc.prog, str(exc), exc.hint)
        return EXIT_USAGE
    prog = f"harness {args.command}"
    from harness.tracking import CURVE_POINTS_ENV

    # every Tracker of the command reads it (sweeps and claim reports build their own)
    curve_env = os.environ.get(CURVE_POINTS_ENV)
    if getattr(args, "curve_points", None) is not None:
        os.environ[CURVE_POINTS_ENV] = args.curve_points
    try:
        return int(args.func(args, argv))
    except ConfigError as exc:
        if debug:
            traceback.print_exc()
        _print_error(prog, str(exc), exc.hint)
        return EXIT_USAGE
    except (SpecError, UserError, DataError, FileNotFoundError) as exc:
        if debug:
            traceback.print_exc()
        first, _, rest = str(exc).partition("\n")
        _print_error(prog, first, rest or None)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _print_error(
            prog,
            f"internal error: {type(exc).__name__}: {first}",
            "This is a bug, not a mistake of yours: rerun with --debug for the traceback and "
            "report it.",
        )
        return EXIT_INTERNAL
    finally:
        # an in-process caller (the tests, a notebook) keeps its own setting
        if curve_env is None:
            os.environ.pop(CURVE_POINTS_ENV, None)
        else:
            os.environ[CURVE_POINTS_ENV] = curve_env


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
