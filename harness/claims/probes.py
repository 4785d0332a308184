"""Deterministic probes: claim protocols that evaluate a registered function instead of training.

Some claims need no training at all: a softmax overflows or it does not (U3), a fully connected
layer equals a 1×1 convolution or it does not (X4), Xavier's variance ratio is 1 or it is not (I4).
A protocol whose resolved study has a ``probe`` block runs the probe from :data:`PROBES` over the
grid of its searched ``probe.*`` values, once per replicate seed, and hands the engine an ordinary
:class:`~harness.claims.RunTable`; measures, statistics, checks, verdicts, figures and reports
are the same as for trained runs. A claim may mix probe and training protocols::

    study:
      name: claim_numerics
      seed: 0
      replicates: 5                     # seeds: each draws its own inputs (the "seeded grid")
    protocols:
      softmax:
        description: "softmax of large logits, naive vs max-subtracted"
        set: {probe: {name: softmax_overflow, rows: 1000}}
        search:
          probe.variant: {type: categorical, choices: [naive, stable], role: scientific}
    measures:
      nonfinite: {name: summary, column: probe/nonfinite_fraction}

Rules of the kind:

- every searched key of a probe protocol is ``probe.<argument>`` with ``type: categorical``; the
  grid is the Cartesian product of the choices, in the order written (trial = grid index);
- replicate ``r`` gets the seed ``derive_seed(study.seed, "replicate", r)`` for every grid point,
  as trained studies do, so replicates pair across grid points;
- a probe's outputs become summary columns ``probe/<output>`` and its per-step records (if any)
  the curves, with ``step`` as the epoch;
- a probe that raises becomes a ``failed`` run with its reason; a value a probe cannot compute is
  NaN and the verdict says so (inconclusive), never a silent 0;
- probes run in the reproducing process with one BLAS thread (:data:`PROBE_BLAS_THREADS`): their
  matrix products are small, and a second OpenBLAS thread on a busy machine costs 10-100×
  (:mod:`harness.threads`).

Adding a probe: subclass :class:`Probe` in ``harness/claims/probe_library/``, declare
:attr:`Probe.outputs`, implement :meth:`Probe.run` (numerics from :mod:`models`, pure NumPy) and
register it with ``@PROBES.register("name")``.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.claims.errors import ClaimError
from harness.claims.results import RunTable
from harness.config import set_dotted
from harness.seeding import derive_seed
from models.base import Component
from models.registry import Registry, SpecError, UnknownNameError

if TYPE_CHECKING:
    from harness.claims.spec import ClaimSpec

__all__ = [
    "OUTPUT_PREFIX",
    "PROBES",
    "Probe",
    "ProbeResult",
    "check_probe_claim",
    "is_probe_protocol",
    "pad_for_claim",
    "probe_grid",
    "run_probe_protocol",
]

PROBES: Registry[type[Probe]] = Registry("probe")
#: Prefix of the summary columns a probe's outputs become.
OUTPUT_PREFIX = "probe/"
_KEY_PREFIX = "probe."
#: BLAS threads while probes run (see the module docstring).
PROBE_BLAS_THREADS = 1


@dataclass
class ProbeResult:
    """What one probe evaluation returns: named scalars and optional per-step records."""

    values: dict[str, float]
    records: list[dict[str, float]] = field(default_factory=list)


class Probe(Component):
    """Base of the registered probes: kwargs stored under their names (scikit-learn's rule).

    Subclasses declare :attr:`outputs` (the names :meth:`run` returns) and implement :meth:`run`
    with everything random drawn from the given generator.
    """

    #: Names of the values :meth:`run` returns.
    outputs: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> list[tuple[str, Any, str]]:
        """Problems as ``(argument, value, allowed)``; empty when the arguments are valid."""
        return []

    def run(self, rng: np.random.Generator) -> ProbeResult:
        raise NotImplementedError

    @staticmethod
    def choice(name: str, value: Any, allowed: tuple[str, ...]) -> list[tuple[str, Any, str]]:
        """A validation problem unless ``value`` is one of ``allowed``."""
        return [] if value in allowed else [(name, value, f"one of {', '.join(allowed)}")]

    @staticmethod
    def positive_int(name: str, value: Any, low: int = 1) -> list[tuple[str, Any, str]]:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return [] if ok else [(name, value, f"an integer >= {low}")]


# -- grid ------------------------------------------------------------------------------------------
def is_probe_protocol(claim: ClaimSpec, protocol: str) -> bool:
    """Whether ``protocol`` (or the protocol it reuses) evaluates a probe instead of training."""
    p = claim.protocols[protocol]
    if p.pool:  # a pool of probe protocols evaluates probes
        return all(is_probe_protocol(claim, m) for m in p.pool)
    return "probe" in claim.study_for(p.runs_from)


def _protocol_path(claim: ClaimSpec, protocol: str) -> str:
    return f"protocols.{protocol}"


def probe_grid(claim: ClaimSpec, protocol: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The probe's base spec and the grid points (``{"probe.<arg>": value}``) of ``protocol``.

    Raises
    ------
    ClaimError
        A searched key that is not ``probe.<arg>``, or a distribution that is not categorical.
    """
    study = claim.study_for(protocol)
    path = _protocol_path(claim, protocol)
    base = study.get("probe")
    if not isinstance(base, Mapping) or not isinstance(base.get("name"), str):
        raise ClaimError(
            f"{path}.set.probe",
            base,
            f"a probe spec {{name, ...}}: one of {', '.join(PROBES.names())}",
        )
    search = study.get("search") or {}
    if search.get("derived"):
        raise ClaimError(
            f"{path}.derived", search["derived"], "nothing: probes take no derived values"
        )
    params = search.get("params") or {}
    keys, choices = [], []
    for key, spec in params.items():
        if not str(key).startswith(_KEY_PREFIX):
            raise ClaimError(
                f"{path}.search.{key}",
                key,
                "a probe argument 'probe.<argument>' (a probe protocol trains nothing, so it "
                "searches nothing else)",
            )
        if not isinstance(spec, Mapping) or spec.get("type") != "categorical":
            raise ClaimError(
                f"{path}.search.{key}.type",
                (spec or {}).get("type") if isinstance(spec, Mapping) else spec,
                "categorical (a probe's grid is the list of values to evaluate)",
            )
        vals = spec.get("choices")
        if not isinstance(vals, list) or not vals:
            raise ClaimError(f"{path}.search.{key}.choices", vals, "a non-empty list of values")
        keys.append(str(key))
        choices.append(vals)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*choices)]
    return dict(base), points


def _build_probe(
    base: Mapping[str, Any], point: Mapping[str, Any], path: str, search_path: str = ""
) -> Probe:
    """Build one grid point's probe; errors name ``<path>.<argument>`` (the ``search`` path when
    the argument's value came from the grid)."""
    spec = copy.deepcopy(dict(base))
    for key, value in point.items():
        set_dotted(spec, key[len(_KEY_PREFIX) :], copy.deepcopy(value))

    def where(arg: str) -> str:
        key = f"{_KEY_PREFIX}{arg}"
        return f"{search_path}.{key}" if search_path and key in point else f"{path}.{arg}"

    try:
        cls = PROBES.get(str(spec.get("name")))
    except UnknownNameError as exc:
        close = difflib.get_close_matches(str(spec.get("name")), PROBES.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ClaimError(
            f"{path}.name", spec.get("name"), f"one of {', '.join(PROBES.names())}{hint}"
        ) from exc
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for arg in spec:
        if arg != "name" and arg not in accepted:
            close = difflib.get_close_matches(arg, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ClaimError(
                where(arg),
                spec[arg],
                f"an argument of probe {spec['name']!r}: {', '.join(accepted)}{hint}",
            )
    try:
        probe: Probe = PROBES.build(spec)
    except SpecError as exc:
        raise ClaimError(path, spec, f"the arguments probe {spec['name']!r} takes: {exc}") from exc
    for arg, value, allowed in probe.validate():
        raise ClaimError(where(arg), value, allowed)
    return probe


def _replicates(claim: ClaimSpec, protocol: str) -> tuple[int, int]:
    study = claim.study_for(protocol)
    return int(study.get("seed", 0)), int(study.get("replicates", 1))


# -- validation ------------------------------------------------------------------------------------
def _measure_column(m: Any) -> str | None:
    cfg = m.get_config()
    return cfg.get("column") if cfg.get("name") == "summary" else None


def check_probe_claim(claim: ClaimSpec) -> None:
    """The pre-flight of a claim's probe protocols: every grid point builds, and every check on a
    probe protocol reads only outputs that protocol's probe produces (and no training protocol
    reads a probe output). Raises :class:`ClaimError` naming the YAML path."""
    produced: dict[str, set[str]] = {}
    for name in claim.protocols_to_run():
        if not is_probe_protocol(claim, name):
            continue
        base, points = probe_grid(claim, name)
        outs: set[str] = set()
        for point in points:
            probe = _build_probe(
                base, point, f"protocols.{name}.set.probe", f"protocols.{name}.search"
            )
            outs |= {OUTPUT_PREFIX + o for o in probe.outputs}
        produced[name] = outs
    if not produced:
        return
    for check in claim.checks:
        # a pool reads the measures in each of its members' runs
        pairs = [
            (name, src)
            for name in check.protocols
            for src in (
                [claim.protocols[q].runs_from for q in claim.protocols[name].pool]
                or [claim.protocols[name].runs_from]
            )
        ]
        for pname, src in pairs:
            for leaf in check.conditions:
                for m in leaf.statistic_for(pname).measures():
                    col = _measure_column(claim.measures[m])
                    if src in produced:
                        listed = ", ".join(sorted(produced[src]))
                        if col is None:
                            raise ClaimError(
                                f"measures.{m}",
                                claim.measures[m].describe(),
                                f"a summary measure {{name: summary, column: probe/<output>}} "
                                f"(check {check.id} reads it on probe protocol {pname!r}): "
                                f"{listed}",
                            )
                        if col not in produced[src]:
                            close = difflib.get_close_matches(col, sorted(produced[src]), n=1)
                            hint = f" (did you mean {close[0]!r}?)" if close else ""
                            raise ClaimError(
                                f"measures.{m}.column",
                                col,
                                f"an output of the probe of protocol {pname!r} (check "
                                f"{check.id} reads it): {listed}{hint}",
                            )
                    elif col is not None and col.startswith(OUTPUT_PREFIX):
                        raise ClaimError(
                            f"checks[{check.id}].measure",
                            m,
                            f"a measure of the training runs of protocol {pname!r} "
                            f"({col!r} is a probe output)",
                        )


# -- running ---------------------------------------------------------------------------------------
def run_probe_protocol(
    claim: ClaimSpec, protocol: str, *, echo: Callable[[str], Any] | None = None
) -> RunTable:
    """Evaluate ``protocol``'s probe at every grid point and replicate seed (see the module
    docstring); returns the runs and per-step records as a RunTable, padded
    (:func:`pad_for_claim`) so that every measure of the claim can be computed on it."""
    base, points = probe_grid(claim, protocol)
    seed, R = _replicates(claim, protocol)
    path = f"protocols.{protocol}.set.probe"
    spath = f"protocols.{protocol}.search"
    probes = [
        _build_probe(base, point, path, spath) for point in points
    ]  # validate all before running
    runs: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=PROBE_BLAS_THREADS, user_api="blas"):
        _run_grid(protocol, base, points, probes, seed, R, runs, curves)
    if echo is not None:
        echo(
            f"[{claim.id}] protocol {protocol}: probe {base['name']} at {len(points)} grid "
            f"point(s) × {R} seed(s) in {time.perf_counter() - t0:.1f} s"
        )
    # the other protocols' outputs (and a mixed claim's training metrics) as NaN columns
    return pad_for_claim(claim, RunTable.from_records(runs, curves))


def _run_grid(
    protocol: str,
    base: Mapping[str, Any],
    points: list[dict[str, Any]],
    probes: list[Probe],
    seed: int,
    R: int,
    runs: list[dict[str, Any]],
    curves: list[dict[str, Any]],
) -> None:
    for trial, (point, probe) in enumerate(zip(points, probes)):
        for r in range(R):
            rseed = derive_seed(seed, "replicate", r)
            row: dict[str, Any] = {
                "protocol": protocol,
                "trial": trial,
                "replicate": r,
                "seed": rseed,
                "status": "completed",
                "reason": "",
                "run_id": "",
                "probe.name": base["name"],
            }
            row.update(point)
            for o in probe.outputs:
                row[OUTPUT_PREFIX + o] = math.nan
            ts = time.perf_counter()
            try:
                result = probe.run(np.random.default_rng(rseed))
            except Exception as exc:  # a probe that breaks is a failed run with its reason
                row["status"] = "failed"
                row["reason"] = f"{type(exc).__name__}: {exc}"
            else:
                for k, v in result.values.items():
                    row[OUTPUT_PREFIX + k] = float(v)
                for i, rec in enumerate(result.records):
                    c = {"protocol": protocol, "trial": trial, "replicate": r}
                    c.update({k: v for k, v in rec.items() if k != "step"})
                    c["epoch"] = int(rec.get("step", i))
                    curves.append(c)
            row["time/probe_s"] = time.perf_counter() - ts
            runs.append(row)


def _needed_columns(claim: ClaimSpec) -> tuple[set[str], set[str]]:
    """(run columns, curve columns) the claim's measures may read."""
    run_cols: set[str] = set()
    curve_cols: set[str] = set()
    for m in claim.measures.values():
        cfg = m.get_config()
        if cfg.get("column"):
            run_cols.add(str(cfg["column"]))
        if cfg.get("metric"):
            metric = str(cfg["metric"])
            curve_cols.add(metric)
            run_cols |= {metric, f"final/{metric}", f"best/{metric}"}
    return run_cols, curve_cols


def pad_for_claim(claim: ClaimSpec, table: RunTable) -> RunTable:
    """``table`` with NaN columns for every metric the claim's measures read and it lacks.

    The engine computes every measure on every protocol; in a claim that mixes probe and
    training protocols, a probe has no ``val/accuracy`` and a training run no probe output.
    :func:`check_probe_claim` guarantees no check reads such a padded value.
    """
    run_cols, curve_cols = _needed_columns(claim)
    runs, curves = table.runs.copy(), table.curves.copy()
    for c in run_cols - set(runs.columns):
        runs[c] = math.nan
    for c in curve_cols - set(curves.columns):
        curves[c] = math.nan
    return RunTable(runs, curves)
