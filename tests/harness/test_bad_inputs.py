"""Bad inputs, as a new user types them: one line, exit 2, no traceback, nothing recorded changed.

A table of mistakes across the config, the command line, the data, the stores and the state (a
second run of an existing study with each kind of mistake, ``--fresh`` included). Every case runs
in-process through ``harness.cli.main`` and asserts:

- the exit status (2 for every user error);
- no traceback, and the first stderr line in the one error format
  ``harness <command>: error: <where>: <field> = <value> is not allowed: expected <what>``, with
  at most a few lines of help under it;
- that the message names the field or option (and the words that say what is wrong);
- that nothing recorded changed: the Optuna study (its journal), the ledger, every file under the
  working directory, the MLflow experiments and the runs of the study's and the run's experiments
  are the same before and after.

The existing study is created once per module by a tiny sweep (studies/smoke.yaml, 1 epoch,
2 trials).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^harness(?: [\w-]+)?: error: (?P<where>.+?): (?P<field>\S+) = (?P<value>.+?) "
    r"is not allowed: expected (?P<what>.+)$"
)
MAX_HELP_LINES = 10
#: the README's list of error locations besides a file
WHERES = {
    "command line",
    "tracking store",
    "study storage",
    "study ledger",
    "dask scheduler",
}


# -- the world: an existing study, a run file, a store -------------------------------------------
@dataclass
class World:
    root: Path
    uri: str
    study: Path  # the existing study's file
    name: str  # its name (and MLflow experiment)
    run: Path  # a run YAML for `harness train`
    run_name: str
    closed_port: int  # nothing listens there
    silent_port: int  # accepts connections, never answers
    values: dict[str, str] = field(default_factory=dict)

    def fmt(self, text: str) -> str:
        """``{root}``, ``{uri}``... replaced; other braces (YAML flow mappings) kept."""
        return re.sub(r"\{(\w+)\}", lambda m: self.values.get(m[1], m[0]), text)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tracking_uri: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("bad_inputs")
    old_cwd = os.getcwd()
    os.chdir(root)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts connections; nobody ever answers
    try:
        name = f"bad-{uuid.uuid4().hex[:8]}"
        raw = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
        raw["name"] = name
        raw["train"]["epochs"] = 1
        raw["search"]["n_trials"] = 2
        study = root / "study.yaml"
        study.write_text(yaml.safe_dump(raw))
        run_name = f"run-{uuid.uuid4().hex[:8]}"
        run = root / "run.yaml"
        run.write_text(
            yaml.safe_dump(
                {
                    "name": run_name,
                    "data": {"name": "digits", "subset": 300},
                    "model": {"name": "mlp", "depth": 1, "width": 16},
                    "train": {"batch_size": 32, "epochs": 1},
                }
            )
        )
        code = main(
            [
                "sweep",
                str(study),
                "--tracking-uri",
                tracking_uri,
                "--no-progress",
                "--no-plots",
                "--log-models",
                "none",
            ]
        )
        assert code == 0, "the existing study could not be created"
        w = World(root, tracking_uri, study, name, run, run_name, _closed_port(), 0)
        w.silent_port = int(silent.getsockname()[1])
        _write_fixtures(w)
        yield w
    finally:
        silent.close()
        os.chdir(old_cwd)


def _write_fixtures(w: World) -> None:
    """Files the cases point at: bad YAMLs, a file where a directory should be, bad data."""
    root = w.root
    (root / "empty.yaml").write_text("")
    (root / "comments.yaml").write_text("# nothing but a comment\n")
    (root / "syntax.yaml").write_text("data: {name: digits\nmodel: mlp\n")
    (root / "list.yaml").write_text("- data\n- model\n")
    (root / "dup.yaml").write_text("data: {name: digits}\ntrain: {epochs: 1}\ntrain: {epochs: 2}\n")
    (root / "tab.yaml").write_text("data:\n  name: digits\n\tsubset: 10\n")
    (root / "binary.yaml").write_bytes(b"data: \xd0\xff\x00\x01")
    (root / "unknown_top.yaml").write_text(
        yaml.safe_dump({"data": {"name": "digits"}, "trainn": {"epochs": 1}})
    )
    (root / "a_file").write_text("not a directory")
    (root / "not_a_db.db").write_bytes(b"this is not an SQLite database" * 40)
    # MNIST: a data dir without the files, and one with a corrupt mnist.npz
    (root / "no_mnist").mkdir()
    (root / "bad_mnist" / "mnist").mkdir(parents=True)
    (root / "bad_mnist" / "mnist" / "mnist.npz").write_bytes(b"PK\x03\x04 corrupt")
    # MNIST-1D: a cache file in the data dir whose features hold NaN (a tampered cache)
    from harness.data.mnist_1d import MNIST1D_ARGS, build_mnist1d, cache_path

    args = {**MNIST1D_ARGS, "num_samples": 40, "seed": 42, "shuffle_seq": False}
    arrays = build_mnist1d(args)
    arrays["x"] = np.array(arrays["x"], dtype=np.float64)
    arrays["x"][:3, :5] = np.nan
    path = cache_path(root / "nan_mnist1d", args)
    path.parent.mkdir(parents=True)
    import json

    np.savez(path, **arrays, args_json=np.array(json.dumps(args)))
    # a claim whose second protocol has a bad initializer
    claim = (REPO / "studies" / "claims" / "mse_vs_ce.yaml").read_text()
    assert "model.init: {name: normal, std: 1.0}" in claim
    bad = claim.replace(
        "model.init: {name: normal, std: 1.0}", "model.init: {name: normal, std: -1.0}"
    )
    (root / "claims").mkdir()
    (root / "claims" / "mse_vs_ce.yaml").write_text(bad)
    # a new study whose ledger directory is a file
    (root / "mlruns" / "ledger" / "ledger-is-a-file").write_text("x")
    w.values = {
        "study": str(w.study),
        "run": str(w.run),
        "uri": w.uri,
        "root": str(root),
        "closed": str(w.closed_port),
        "silent": str(w.silent_port),
        "name": w.name,
    }


# -- snapshots of everything recorded ---------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _optuna(w: World) -> list[Any]:
    import optuna

    from harness.study.storage import default_storage_url, make_storage

    storage = make_storage(default_storage_url(w.name, root=w.root))
    out = []
    for s in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        out.append(
            (
                s.study_name,
                sorted(study.user_attrs.items()),
                [(t.number, t.state.name, t.params, t.values) for t in study.trials],
            )
        )
    return out


def _mlflow(w: World) -> tuple[Any, ...]:
    """Every experiment and run of the MLflow store, with its status and how many metrics,
    params and tags it holds (read from the SQLite file: a few ms, where the client's search
    API takes a tenth of a second a call)."""
    import sqlite3

    db = w.uri[len("sqlite:///") :]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        experiments = con.execute(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments ORDER BY experiment_id"
        ).fetchall()
        runs = con.execute(
            "SELECT run_uuid, status, end_time, lifecycle_stage FROM runs ORDER BY run_uuid"
        ).fetchall()
        counts = [
            con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("metrics", "params", "tags", "latest_metrics")
        ]
    return experiments, runs, counts


def snapshot(w: World) -> tuple[Any, ...]:
    return _tree(w.root), _optuna(w), _mlflow(w)


# -- the table -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # config | options | data | stores | state
    argv: str  # formatted with World.values, split on spaces (use ~ for a space inside one arg)
    names: tuple[str, ...]  # what the message must contain (the field or option first)
    code: int = 2
    env: tuple[tuple[str, str], ...] = ()
    within_s: float | None = None
    command: str = ""

    def args(self, w: World) -> list[str]:
        return [w.fmt(a).replace("~", " ") for a in self.argv.split(" ")]


TRAIN = "train {run} --tracking-uri {uri} --no-progress"
SWEEP = "sweep {study} --tracking-uri {uri} --no-progress --no-plots"


def c(id: str, kind: str, argv: str, *names: str, **kw: Any) -> Case:
    return Case(id, kind, argv, names, **kw)


def t(id: str, override: str, *names: str, kind: str = "config") -> Case:
    """``harness train`` with one ``--set`` override."""
    return c(id, kind, f"{TRAIN} --set {override}", *names)


def s(id: str, override: str, *names: str, kind: str = "config") -> Case:
    """``harness sweep`` of the existing study with one ``--set`` override."""
    return c(id, kind, f"{SWEEP} --set {override}", *names)


CASES: list[Case] = [
    # -- config: harness train ----------------------------------------------------------------
    t("lr-negative", "train.optimizer.lr=-0.1", "train.optimizer.lr", ">= 0"),
    t("lr-nan", "train.optimizer.lr=.nan", "train.optimizer.lr", "finite"),
    t("lr-inf", "train.optimizer.lr=.inf", "train.optimizer.lr", "finite"),
    t("lr-text", "train.optimizer.lr=abc", "train.optimizer.lr", "'abc'"),
    t("lr-yaml-1e-3", "train.optimizer.lr=1e-3", "train.optimizer.lr", "signed exponent"),
    t("ce-on-regression", "data.name=diabetes", "train.loss", "regression loss"),
    t("ce-on-sin", "data={name:~sin}", "train.loss", "regression"),
    t("typo-section", "trian.epochs=3", "trian.epochs", "did you mean 'train'"),
    t("typo-train-key", "train.epoch=3", "train.epoch", "did you mean 'epochs'"),
    c("empty-file", "config", "train {root}/empty.yaml --tracking-uri {uri}", "empty"),
    c("comment-only-file", "config", "train {root}/comments.yaml --tracking-uri {uri}", "empty"),
    c(
        "yaml-syntax",
        "config",
        "train {root}/syntax.yaml --tracking-uri {uri}",
        "valid YAML (line 2",
    ),
    c("yaml-duplicate-key", "config", "train {root}/dup.yaml --tracking-uri {uri}", "twice"),
    c("yaml-tab", "config", "train {root}/tab.yaml --tracking-uri {uri}", "line 3", "\\t"),
    c("binary-file", "config", "train {root}/binary.yaml --tracking-uri {uri}", "UTF-8"),
    c("directory-not-file", "config", "train {root} --tracking-uri {uri}", "directory"),
    c(
        "file-typo",
        "config",
        "train {root}/studdy.yaml --tracking-uri {uri}",
        "no such file",
        "did you mean",
        "study.yaml",
    ),
    c(
        "claim-given-to-train",
        "config",
        "train {root}/claims/mse_vs_ce.yaml --tracking-uri {uri}",
        "id",
        "known key",
    ),
    c(
        "study-given-to-reproduce",
        "config",
        "reproduce {study} --tracking-uri {uri}",
        "name",
        "keys",
    ),
    t("set-yaml-syntax", "data={name:~digits", "data", "YAML value"),
    t("set-duplicate-key", "data={name:~digits,~name:~iris}", "data", "twice"),
    t("epochs-1e10", "train.epochs=1e10", "train.epochs", "10000000000"),
    t("width-1e3", "model.width=1e3", "model.width", "in digits"),
    c("yaml-list", "config", "train {root}/list.yaml --tracking-uri {uri}", "mapping"),
    c("no-such-file", "config", "train {root}/nope.yaml --tracking-uri {uri}", "no such file"),
    c(
        "unknown-top-key",
        "config",
        "train {root}/unknown_top.yaml --tracking-uri {uri}",
        "trainn",
        "'train'",
    ),
    t("batch-size-0", "train.batch_size=0", "train.batch_size", ">= 1"),
    t("batch-size-float", "train.batch_size=2.5", "train.batch_size", "integer"),
    t("epochs-negative", "train.epochs=-1", "train.epochs", ">= 0"),
    t("activation-typo", "model.activation=relux", "model.activation", "did you mean 'relu'"),
    t("init-typo", "model.init={name:~he_normall}", "model.init", "valid initializer names"),
    t("init-std-negative", "model.init={name:~normal,~std:~-1}", "model.init.std", "> 0"),
    t("init-std-nan", "model.init={name:~normal,~std:~.nan}", "model.init.std", "finite"),
    t("init-arg-on-argless", "model.init.std=0.1", "model.init.std", "takes none"),
    t("width-0", "model.width=0", "model.width", ">= 1"),
    t("depth-negative", "model.depth=-1", "model.depth", ">= 0"),
    t("dropout-1.5", "model.dropout=1.5", "model.dropout", "[0, 1)"),
    t("hidden-zero", "model.hidden=[16,~0]", "model.hidden.1", ">= 1"),
    t("network-typo", "model.name=mlpp", "model", "did you mean 'mlp'"),
    t("network-unknown-arg", "model.widht=8", "model.widht", "did you mean 'width'"),
    t("optimizer-typo", "train.optimizer={name:~adamm}", "train.optimizer", "'adam'"),
    t("adam-beta1", "train.optimizer={name:~adam,~beta1:~1.5}", "train.optimizer.beta1", "[0, 1)"),
    t("momentum-nan", "train.optimizer={name:~momentum,~momentum:~.nan}", "optimizer.momentum"),
    t("optimizer-arg-typo", "train.optimizer.lrr=0.1", "train.optimizer.lrr", "'lr'"),
    t("schedule-missing-arg", "train.schedule=step", "train.schedule.step_size", "missing"),
    t("cosine-min-factor", "train.schedule={name:~cosine,~min_factor:~2}", "min_factor", "[0, 1]"),
    t("gamma-negative", "train.schedule={name:~exponential,~gamma:~-1}", "gamma", "> 0"),
    t("weight-decay-negative", "train.weight_decay=-1", "train.weight_decay", ">= 0"),
    t("l1-inf", "train.l1=.inf", "train.l1", "finite"),
    t("divergence-factor", "train.divergence_factor=0.5", "train.divergence_factor", ">= 1"),
    t("sampling", "train.sampling=random", "train.sampling", "shuffle"),
    t("dtype", "train.dtype=float16", "train.dtype", "float32"),
    t("target-metric-typo", "train.target={metric:~val/acuracy,~value:~0.9}", "val/acuracy"),
    t("early-stop-monitor", "train.early_stopping={monitor:~val/lss}", "early_stopping.monitor"),
    t("early-stop-patience", "train.early_stopping={patience:~0}", "patience", ">= 1"),
    t("seed-negative", "seed=-1", "seed", ">= 0"),
    t("seed-text", "seed=abc", "seed", "integer"),
    t("eval-batch-0", "train.eval_batch_size=0", "train.eval_batch_size", ">= 1"),
    t("telemetry-text", "train.telemetry=maybe", "train.telemetry", "true, false or 'init'"),
    t("mse-output-typo", "train.loss={name:~mse,~output:~softmaxx}", "train.loss", "output"),
    t("loss-typo", "train.loss=cross_entrpy", "train.loss", "did you mean"),
    t("nll-without-softmax", "train.loss=nll", "train.loss", "probabilities", "softmax"),
    c(
        "conv-on-iris",
        "config",
        f"{TRAIN} --set data.name=iris --set model={{name:~simple_conv_net}}",
        "data.layout",
        "image",
    ),
    t(
        "conv-kernel-too-big",
        "model={name:~simple_conv_net,~kernel_size:~12}",
        "model",
        "(1, 8, 8)",
    ),
    t("dataset-typo", "data.name=digitz", "data.name", "did you mean 'digits'"),
    t("val-fraction", "data.val_fraction=1.5", "data.val_fraction", "fraction"),
    t("subset-0", "data.subset=0", "data.subset", ">= 1"),
    t("subset-too-big", "data.subset=100000", "data.subset", "1257"),
    t("data-key-typo", "data.subsett=10", "data.subsett", "did you mean 'subset'"),
    # -- config: harness sweep (the study file and its search space) ---------------------------
    s("objective-typo", "objective.metric=val/acuracy", "objective.0.metric", "val/accuracy"),
    s("objective-direction", "objective.direction=maximise", "objective.0.direction", "maximize"),
    s("objective-no-test", "objective.metric=test/accuracy", "objective.0.metric", "records"),
    s("pruner-metric", "search.pruner={name:~median,~metric:~val/acc}", "search.pruner.metric"),
    s("param-low-log", "search.params.train.optimizer.lr.low=-1", "lr.low", "> 0"),
    s("choice-batch-0", "search.params.train.batch_size.choices=[16,~0]", "train.batch_size"),
    s(
        "choice-spec-nan",
        "search.params.model.init={type:~categorical,~choices:~[he_normal,~{name:~normal,~std:~.nan}]}",
        "search.params.model.init",
        "model.init.std",
    ),
    s(
        "choice-activation-typo",
        "search.params.model.activation={type:~categorical,~choices:~[relu,~relux]}",
        "search.params.model.activation",
        "relux",
    ),
    s(
        "range-weight-decay",
        "search.params.train.weight_decay={type:~float,~low:~-1,~high:~1}",
        "search.params.train.weight_decay",
        ">= 0",
    ),
    s(
        "range-max-steps-0",
        "search.params.train.max_steps={type:~int,~low:~0,~high:~100}",
        "search.params.train.max_steps",
        ">= 1",
    ),
    s(
        "choice-subset-too-big",
        "search.params.data.subset={type:~categorical,~choices:~[300,~5000]}",
        "search.params.data.subset",
        "1257",
    ),
    s("n-trials-0", "search.n_trials=0", "search.n_trials", ">= 1"),
    s("timeout-negative", "search.timeout=-5", "search.timeout", "> 0"),
    s("name-uppercase", "name=Smoke", "name", "lowercase"),
    s("replicates-0", "replicates=0", "replicates", ">= 1"),
    s("sampler-typo", "search.sampler={name:~qmcc}", "search.sampler", "qmc"),
    s("typo-section-sweep", "trian.epochs=3", "trian.epochs", "did you mean 'train'"),
    s("param-field-typo", "search.params.train.batch_size.choises=[8]", "choises"),
    c("sweep-empty-file", "config", "sweep {root}/empty.yaml --tracking-uri {uri}", "name"),
    c(
        "claim-bad-protocol",
        "config",
        "reproduce {root}/claims/mse_vs_ce.yaml --tracking-uri {uri} --no-progress",
        "model.init.std",
        "> 0",
    ),
    # -- command-line options ---------------------------------------------------------------------
    c("jobs-0", "options", f"{SWEEP} --jobs 0", "--jobs", ">= 1"),
    c("jobs-negative", "options", f"{SWEEP} --jobs -1", "--jobs", ">= 1"),
    c("jobs-text", "options", f"{SWEEP} --jobs two", "--jobs", "integer"),
    c("n-trials-negative", "options", f"{SWEEP} --n-trials -3", "--n-trials", ">= 1"),
    c("n-trials-zero", "options", f"{SWEEP} --n-trials 0", "--n-trials", ">= 1"),
    c("timeout-nan", "options", f"{SWEEP} --timeout nan", "--timeout", "> 0"),
    c("timeout-negative-opt", "options", f"{SWEEP} --timeout -1", "--timeout", "> 0"),
    c("blas-threads-0", "options", f"{SWEEP} --blas-threads 0", "--blas-threads", ">= 1"),
    c("curve-points-2", "options", f"{SWEEP} --curve-points 2", "--curve-points", ">= 3"),
    c("curve-points-text", "options", f"{TRAIN} --curve-points some", "--curve-points", "'all'"),
    c("log-models-choice", "options", f"{SWEEP} --log-models some", "--log-models", "best"),
    c("unknown-option", "options", f"{SWEEP} --jbos 2", "'--jbos'", "did you mean '--jobs'"),
    c("missing-study", "options", "sweep", "study", "missing"),
    c(
        "set-two-pairs",
        "options",
        f"{TRAIN} --set train.epochs=1 train.batch_size=8",
        "argument",
        "repeat --set",
    ),
    c("list-extra-word", "options", "list studies", "argument", "harness list"),
    c("sweep-two-files", "options", f"{SWEEP} {{study}}", "argument", "harness sweep"),
    c("backend-typo", "options", f"{SWEEP} --backend daks", "--backend", "dask"),
    c(
        "scheduler-without-dask",
        "options",
        f"{SWEEP} --scheduler tcp://127.0.0.1:{{closed}}",
        "--scheduler",
        "--backend dask",
    ),
    c("set-without-equals", "options", f"{TRAIN} --set train.epochs", "--set", "key=value"),
    c("port-0", "options", "ui --port 0 --dry-run --tracking-uri {uri}", "--port", "65535"),
    c("port-huge", "options", "ui --port 70000 --dry-run --tracking-uri {uri}", "--port"),
    c(
        "reproduce-unknown",
        "options",
        "reproduce batchsize --tracking-uri {uri}",
        "claim",
        "batch_size",
    ),
    c("reproduce-nothing", "options", "reproduce --tracking-uri {uri}", "claim", "--all"),
    c("reproduce-budget", "options", "reproduce batch_size --budget huge", "--budget", "quick"),
    c("reproduce-jobs-0", "options", "reproduce batch_size --jobs 0", "--jobs", ">= 1"),
    c("no-command", "options", "--debug", "COMMAND", "missing"),
    c("unknown-command", "options", "trian {run}", "COMMAND", "train"),
    c("storage-not-a-url", "options", f"{SWEEP} --storage studies.txt", "--storage", ".journal"),
    # -- data -------------------------------------------------------------------------------------
    t("noise-overflow", "data={name:~noisy_xor,~noise:~1.0e+308}", "data", "infinite", kind="data"),
    t("noise-nan", "data={name:~moons,~noise:~.nan}", "data.noise", "finite", kind="data"),
    t("noise-inf", "data={name:~moons,~noise:~.inf}", "data.noise", "finite", kind="data"),
    t("n-samples-2", "data={name:~moons,~n_samples:~2}", "data.n_samples", ">= 4", kind="data"),
    t("download-text", "data={name:~mnist,~download:~maybe}", "data.download", kind="data"),
    c(
        "mnist-missing",
        "data",
        f"{TRAIN} --set data.name=mnist --data-dir {{root}}/no_mnist",
        "data",
        "mnist",
        "missing",
    ),
    c(
        "mnist-corrupt",
        "data",
        f"{TRAIN} --set data.name=mnist --data-dir {{root}}/bad_mnist",
        "data",
        "checksum",
    ),
    c(
        "mnist1d-nan-cache",
        "data",
        f"{TRAIN} --set data={{name:~mnist1d,~n_samples:~40}} --data-dir {{root}}/nan_mnist1d",
        "data",
        "15 NaN",
    ),
    c(
        "sweep-nan-data",
        "data",
        f"{SWEEP} --set data={{name:~noisy_xor,~noise:~1.0e+308}}",
        "data",
        "infinite",
    ),
    # -- stores -----------------------------------------------------------------------------------
    c(
        "server-refused",
        "stores",
        "train {run} --tracking-uri http://127.0.0.1:{closed}",
        "--tracking-uri",
        "127.0.0.1",
        "reachable",
        within_s=10,
    ),
    c(
        "server-silent",
        "stores",
        "train {run} --tracking-uri http://127.0.0.1:{silent}",
        "--tracking-uri",
        "no answer",
        within_s=10,
    ),
    c(
        "server-env",
        "stores",
        "train {run} --no-progress",
        "$MLFLOW_TRACKING_URI",
        "reachable",
        env=(("MLFLOW_TRACKING_URI", "http://127.0.0.1:{closed}"),),
        within_s=10,
    ),
    c("scheme-unknown", "stores", "train {run} --tracking-uri foo://x", "--tracking-uri", "scheme"),
    c("scheme-file", "stores", "train {run} --tracking-uri file:///nowhere", "--tracking-uri"),
    c(
        "sqlite-under-file",
        "stores",
        "train {run} --tracking-uri sqlite:///{root}/a_file/mlflow.db",
        "--tracking-uri",
        "a_file is a file",
    ),
    c(
        "sqlite-not-a-db",
        "stores",
        "train {run} --tracking-uri sqlite:///{root}/not_a_db.db",
        "--tracking-uri",
        "not a database",
    ),
    c(
        "sweep-server-refused",
        "stores",
        "sweep {study} --tracking-uri http://127.0.0.1:{closed}",
        "--tracking-uri",
        within_s=10,
    ),
    c(
        "journal-under-file",
        "stores",
        f"{SWEEP} --storage {{root}}/a_file/x.journal",
        "--storage",
        "a_file is a file",
    ),
    c(
        "redis-refused",
        "stores",
        f"{SWEEP} --storage redis://127.0.0.1:{{closed}}/0",
        "--storage",
        "Redis",
        within_s=10,
    ),
    c(
        "postgres-refused",
        "stores",
        f"{SWEEP} --storage postgresql://postgres@127.0.0.1:{{closed}}/test",
        "--storage",
        "connect",
        within_s=10,
    ),
    c(
        "ledger-is-a-file",
        "stores",
        f"{SWEEP} --set name=ledger-is-a-file",
        "directory",
        "is a file",
    ),
    c(
        "sqlite-storage-no-dir",
        "stores",
        f"{SWEEP} --set name=new-sqlite --storage sqlite:///{{root}}/nowhere/optuna.db",
        "--storage",
        "does not exist",
    ),
    c(
        "reports-dir-under-file",
        "stores",
        "reproduce batch_size --reports-dir {root}/a_file/reports --tracking-uri {uri}",
        "--reports-dir",
        "a_file is a file",
    ),
    c(
        "reproduce-server-refused",
        "stores",
        "reproduce --all --tracking-uri http://127.0.0.1:{closed}",
        "--tracking-uri",
        within_s=10,
    ),
    c("ui-host-unknown", "stores", "ui --host no-such-host.invalid --dry-run", "--host"),
    c("ui-host-foreign", "stores", "ui --host 192.0.2.1 --dry-run", "--host", "this machine"),
    c(
        "scheduler-refused",
        "stores",
        f"{SWEEP} --backend dask --scheduler tcp://127.0.0.1:{{closed}}",
        "--scheduler",
        "dask scheduler",
        within_s=10,
    ),
    c(
        "scheduler-env-refused",
        "stores",
        f"{SWEEP} --backend dask",
        "$DASK_SCHEDULER_ADDRESS",
        env=(("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:{closed}"),),
        within_s=10,
    ),
    c("scheduler-malformed", "stores", f"{SWEEP} --backend dask --scheduler x", "--scheduler"),
    c("ui-scheme", "stores", "ui --tracking-uri foo://x --dry-run", "--tracking-uri"),
    c("ui-busy-port", "stores", "ui --port {busy} --dry-run --tracking-uri {uri}", "--port"),
    # -- state: a second run of the existing study, with each kind of mistake --------------------
    c("resume-changed-base", "state", f"{SWEEP} --set train.epochs=2", "name", "different"),
    c(
        "resume-changed-space",
        "state",
        f"{SWEEP} --set search.params.train.batch_size.choices=[16,~32]",
        "name",
        "different",
    ),
    c(
        "resume-changed-objective",
        "state",
        f"{SWEEP} --set objective.reduce=final",
        "name",
        "different",
    ),
    c(
        "resume-other-storage",
        "state",
        f"{SWEEP} --storage {{root}}/elsewhere.journal",
        "name",
        "ledger",
    ),
    c("resume-objective-typo", "state", f"{SWEEP} --set objective.metric=val/acc", "objective"),
    c("resume-bad-jobs", "state", f"{SWEEP} --jobs 0", "--jobs"),
    c("fresh-bad-lr", "state", f"{SWEEP} --fresh --set train.optimizer.lr=-1", "optimizer.lr"),
    c(
        "fresh-bad-metric",
        "state",
        f"{SWEEP} --fresh --set objective.metric=val/acuracy",
        "objective.0.metric",
    ),
    c(
        "fresh-nan-data",
        "state",
        f"{SWEEP} --fresh --set data={{name:~noisy_xor,~noise:~1.0e+308}}",
        "data",
        "infinite",
    ),
    c(
        "fresh-bad-search",
        "state",
        f"{SWEEP} --fresh --set search.params.train.batch_size.choices=[0]",
        "train.batch_size",
    ),
    c(
        "fresh-server-refused",
        "state",
        "sweep {study} --fresh --tracking-uri http://127.0.0.1:{closed}",
        "--tracking-uri",
        within_s=10,
    ),
    c(
        "fresh-storage-under-file",
        "state",
        f"{SWEEP} --fresh --storage {{root}}/a_file/x.journal",
        "--storage",
    ),
    c("fresh-jobs-0", "state", f"{SWEEP} --fresh --jobs 0", "--jobs"),
    c("fresh-typo-section", "state", f"{SWEEP} --fresh --set trian.epochs=3", "trian.epochs"),
    c(
        "fresh-sqlite-not-a-db",
        "state",
        "sweep {study} --fresh --tracking-uri sqlite:///{root}/not_a_db.db",
        "--tracking-uri",
    ),
]


def test_the_table_is_large_and_covers_every_kind():
    kinds = {k: sum(1 for case in CASES if case.kind == k) for k in {c.kind for c in CASES}}
    assert set(kinds) == {"config", "options", "data", "stores", "state"}
    assert len(CASES) >= 80, kinds
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture
def busy_port(world: World) -> Iterator[None]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        world.values["busy"] = str(sock.getsockname()[1])
        yield


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_and_changes_nothing(
    case: Case,
    world: World,
    busy_port: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a command may set variables for its workers (HARNESS_DATA_DIR): undone after the case
    for key in ("HARNESS_DATA_DIR", "MLFLOW_TRACKING_URI", "DASK_SCHEDULER_ADDRESS"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)
    for key, value in case.env:
        monkeypatch.setenv(key, world.fmt(value))
    before = snapshot(world)
    capsys.readouterr()
    t0 = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(case.args(world))
    elapsed = time.monotonic() - t0
    # a warning a user would see above the error line (DeprecationWarnings are hidden by default)
    shown = [w for w in caught if not issubclass(w.category, DeprecationWarning)]
    assert not shown, [str(w.message) for w in shown]
    out, err = capsys.readouterr()
    assert code == case.code, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err, err
    lines = err.strip().splitlines()
    assert lines, f"nothing on stderr; stdout: {out}"
    line = LINE.match(lines[0])
    assert line, f"not the one error format: {lines[0]}"
    # <where> is one the README lists, or the file given on the command line
    where = line["where"].removesuffix(" (--set)").split("#protocols.")[0]
    assert where in WHERES or where in case.args(world), f"<where> = {where!r}"
    assert len(lines) <= 1 + MAX_HELP_LINES, err
    for word in case.names:
        assert world.fmt(word) in lines[0], f"{word!r} not named in: {lines[0]}"
    if case.within_s is not None:
        assert elapsed < case.within_s, f"took {elapsed:.1f} s"
    monkeypatch.undo()  # the snapshot reads the real store, not the case's environment
    assert snapshot(world) == before, "something recorded changed"


def test_the_existing_study_still_resumes_after_every_mistake(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the whole table, the command that created the study resumes it: its two trials
    are there, complete, in the study and in the ledger, and nothing more is run."""
    code = main([*world.fmt(SWEEP).split(), "--log-models", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    [(_name, _attrs, trials)] = [s for s in _optuna(world) if s[0] == world.name]
    assert [state for _, state, _, _ in trials] == ["COMPLETE", "COMPLETE"]
    ledger = world.root / "mlruns" / "ledger" / world.name
    assert len(list(ledger.glob("trial-*.json"))) == 2
