"""Claim files (``studies/claims/<id>.yaml``): schema, validation and loading.

A claim is data. A new claim needs only a YAML file, unless it needs a statistic, measure or
figure that is not registered yet (:data:`~harness.claims.statistics.STATISTICS`,
:data:`~harness.claims.measures.MEASURES`, :data:`~harness.claims.figures.FIGURES`).

Schema (``*`` = required)::

    id*: batch_size                  # [a-z0-9_]+, equal to the file name
    title*: "Batch size: ..."
    source*:
      seed_file: 000_16e5fcb357a67462.txt     # default for every quote
      section: "§3.6.2"
      quotes*:                                # the tutorial's words, never paraphrased
        - {text*: "Batch_Size 太小,...", gloss*: "Too small a batch ...", checks: [B1],
           seed_file: ..., section: ...}
    anchors: ["Masters & Luschi 2018: best at B = 2–32 (contradicts B1)"]   # literature, for the report
    study*: {...}                    # a study in the studies schema (name, seed, data, model, train,
                                     # search: {params: {key: {..., role: scientific|nuisance|fixed}}},
                                     # replicates); the claim engine reads the roles and replicates
                                     # a protocol that sets `probe: {name: ...}` evaluates a registered
                                     # probe over its probe.* grid instead of training
                                     # (harness/claims/probes.py)
    protocols*:                      # named variants; each is run separately, runs tagged by name
      tuned_lr:
        description*: "best lr per batch size from a grid"
        set: {train.optimizer.lr: 0.1}          # dotted keys fixed for this protocol (removed from search)
        search: {train.optimizer.lr: {type: categorical, choices: [...], role: nuisance}}
        derived: {train.optimizer.lr: "0.1 * sqrt(train.batch_size / 32)"}
        select: {measure: final_acc, mode: max, center: median, at: {train.batch_size: 64}}
                                     # required when nuisance parameters remain: per scientific group
                                     # keep the nuisance setting with the best median over seeds
                                     # (`at`: choose it once, at a reference group, for all groups)
      shared_lr:
        description*: ...
        reuse: tuned_lr              # no runs of its own: evaluate the runs of another protocol
        where: {train.optimizer.lr: 0.1}        # keep only these runs
        roles: {train.optimizer.lr: fixed}      # override parameter roles
      both:
        description*: ...
        pool: [tuned_lr, shared_lr]  # no runs of its own: the runs of several protocols at once,
                                     # told apart by the scientific parameter `protocol`, paired
                                     # by replicate (= seed); checks filter on it:
                                     # a: {protocol: tuned_lr, ...}, b: {protocol: shared_lr, ...}
        where: {protocol: ...}       # optional: keep only these pooled runs
    budgets:                         # quick (the default) and full; each overrides the study
      quick: {description: ..., set: {train.epochs: 30}, replicates: 3,
              search: {train.batch_size: {...}}, measures: {epochs_to_target: {target: 0.95}},
              protocols: {tuned_lr: {set: {...}, search: {...}}}}
    measures*: {final_acc: {name: final, metric: val/accuracy}, ...}    # MEASURES registry
    checks*:
      - id*: B1
        claim*: "Too small a batch gives a very bad error"
        why*: "catalogue rule B1 ...; why this threshold"     # written, never tuned to a verdict
        protocols: [shared_lr, tuned_lr]       # default: every protocol
        statistic*: {name: gap_to_best, measure: final_acc, x: train.batch_size, at: min}
        rule*: {op: ">=", value: 0.3}          # >=, >, <=, <, between [lo, hi]
        per_protocol: {tuned_lr: {value: 0.05}}
      - id: B2
        ...
        all:                                   # or any: Kleene combination of conditions
          - {statistic: {...}, rule: {...}, per_protocol: {...}}
          - {any: [...]}
    figures: [{name: measure_vs_param, measure: throughput, x: train.batch_size, logx: true,
               protocols: [...], title: ...}]            # FIGURES registry
    caveats: ["..."]
    headline: [B1]                   # checks shown first (default: all, in order)
    bootstrap: {n_boot: 2000, seed: 0, level: 0.95}
    min_seeds: 3                     # fewer seeds with data → inconclusive
    max_failed_fraction: 0.25        # more failed runs among those a statistic reads → inconclusive

There is deliberately no "expected verdict" field: verdicts come from the data only.
Every error names the YAML path, the value and what is allowed (:class:`ClaimError`).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.claims.errors import ClaimError
from harness.claims.figures import FIGURES, ClaimFigure
from harness.claims.filters import WhereFilter, parse_where
from harness.claims.measures import MEASURES, Measure
from harness.claims.outcome import OUTCOME_KINDS
from harness.claims.statistics import STATISTICS, Statistic
from harness.claims.verdicts import Rule
from harness.config import ConfigError, load_yaml, set_dotted
from models.registry import SpecError, UnknownNameError

__all__ = [
    "CLAIMS_DIR",
    "BootstrapSpec",
    "CheckSpec",
    "ClaimSpec",
    "Combo",
    "ConditionSpec",
    "FigureEntry",
    "OutcomeSpec",
    "ProtocolSpec",
    "Quote",
    "SelectSpec",
    "list_claims",
    "load_claim",
    "parse_claim",
]

#: Where claim ids resolve: ``<repository>/studies/claims``.
CLAIMS_DIR = Path(__file__).resolve().parents[2] / "studies" / "claims"

ROLES = ("scientific", "nuisance", "fixed")
_TOP = {
    "id": True,
    "title": True,
    "source": True,
    "anchors": False,
    "study": True,
    "protocols": True,
    "budgets": False,
    "measures": True,
    "checks": True,
    "figures": False,
    "caveats": False,
    "headline": False,
    "bootstrap": False,
    "min_seeds": False,
    "max_failed_fraction": False,
}
_ID_RE = re.compile(r"^[a-z0-9_]+$")
_CHECK_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SEED_FILE_RE = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt$")
_PROTOCOL_KEYS = {
    "description",
    "set",
    "search",
    "derived",
    "roles",
    "reuse",
    "pool",
    "where",
    "select",
}
#: The keys a pooled protocol (``pool: [...]``) may have: it runs nothing and selects nothing.
_POOL_KEYS = {"description", "pool", "where"}
#: The scientific parameter of a pooled protocol that names the protocol a run comes from.
POOL_PARAM = "protocol"
_BUDGET_KEYS = {"description", "set", "search", "replicates", "measures", "protocols"}
_LEAF_KEYS = {"statistic", "rule", "per_protocol"}
_CHECK_KEYS = {"id", "claim", "why", "protocols", "priority", "all", "any", "outcome"} | _LEAF_KEYS
_OUTCOME_KEYS = {"kind", "on", "why"}
_OUTCOME_ON = ("refuted", "supported", "always")


# -- spec objects -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Quote:
    text: str
    gloss: str
    checks: tuple[str, ...]
    seed_file: str
    section: str


@dataclass(frozen=True)
class SelectSpec:
    """Isolation of the scientific effect: the best nuisance setting per group."""

    measure: str
    mode: str = "max"
    center: str = "median"
    at: WhereFilter | None = None

    def describe(self) -> str:
        word = "highest" if self.mode == "max" else "lowest"
        where = f", chosen once at {self.at.describe()} for every group" if self.at else ""
        return f"{word} {self.center} {self.measure} over seeds{where}"


@dataclass(frozen=True)
class ProtocolSpec:
    """One protocol: how the study is varied, and which parameters play which role."""

    name: str
    description: str
    set: dict[str, Any]
    search: dict[str, Any]
    derived: dict[str, Any]
    roles: dict[str, str]
    reuse: str | None
    where: WhereFilter | None
    select: SelectSpec | None
    param_roles: dict[str, str] = field(default_factory=dict)  # resolved, after budgets
    #: the protocols whose runs this one evaluates together (``pool: [...]``); empty otherwise
    pool: tuple[str, ...] = ()

    @property
    def scientific(self) -> list[str]:
        return [p for p, r in self.param_roles.items() if r == "scientific"]

    @property
    def nuisance(self) -> list[str]:
        return [p for p, r in self.param_roles.items() if r == "nuisance"]

    @property
    def searched(self) -> list[str]:
        return list(self.param_roles)

    @property
    def runs_from(self) -> str:
        """The protocol whose runs this one evaluates (itself unless ``reuse``; a pool: itself)."""
        return self.reuse or self.name

    @property
    def label(self) -> str:
        """``name (description)``, naming the pooled protocols of a pool."""
        pooled = f"pools {', '.join(self.pool)}: " if self.pool else ""
        return f"{self.name} ({pooled}{self.description})"


@dataclass(frozen=True)
class ConditionSpec:
    """A leaf: a statistic and the rule it must satisfy, per protocol of its check.

    ``per_protocol`` overrides may change the threshold (``op``, ``value``) and statistic
    arguments (e.g. ``by: train.optimizer.lr`` where the lr is scientific).
    """

    id: str
    statistics: dict[str, Statistic]  # one per protocol of the check
    rule: Rule
    rules: dict[str, Rule]  # per-protocol overrides of ``rule``
    path: str

    def rule_for(self, protocol: str) -> Rule:
        return self.rules.get(protocol, self.rule)

    def statistic_for(self, protocol: str) -> Statistic:
        return self.statistics[protocol]


@dataclass(frozen=True)
class Combo:
    """``all`` / ``any`` of conditions (Kleene logic)."""

    op: str
    children: tuple[ConditionSpec | Combo, ...]


Node = ConditionSpec | Combo


def leaves(node: Node) -> list[ConditionSpec]:
    if isinstance(node, ConditionSpec):
        return [node]
    return [leaf for child in node.children for leaf in leaves(child)]


@dataclass(frozen=True)
class OutcomeSpec:
    """``outcome: {kind: ill_posed | not_falsifiable, on: refuted | supported | always, why}``.

    ``kind`` names the :class:`~harness.claims.outcome.Outcome` the check reports instead of its
    verdict when the verdict equals ``on`` (``ill_posed``: default ``refuted``, the data refute
    the reading that would make the question meaningful) or always (``not_falsifiable``; its
    rule may be omitted: the statistic is reported with its interval, not judged).
    """

    kind: str
    on: str
    why: str
    judged: bool = True  # False when the check gave no rule (not_falsifiable only)


@dataclass(frozen=True)
class CheckSpec:
    """One testable sub-claim of the catalogue (B1, L1, A1, ...)."""

    id: str
    claim: str
    why: str
    protocols: tuple[str, ...]
    node: Node
    priority: str | None = None
    outcome: OutcomeSpec | None = None

    @property
    def conditions(self) -> list[ConditionSpec]:
        return leaves(self.node)


@dataclass(frozen=True)
class FigureEntry:
    name: str
    figure: ClaimFigure
    protocols: tuple[str, ...]
    title: str | None
    index: int


@dataclass(frozen=True)
class BootstrapSpec:
    n_boot: int = 2000
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class ClaimSpec:
    """A validated claim, resolved for one budget (:attr:`budget`)."""

    id: str
    title: str
    quotes: tuple[Quote, ...]
    anchors: tuple[str, ...]
    study: dict[str, Any]
    protocols: dict[str, ProtocolSpec]
    budgets: dict[str, dict[str, Any]]
    budget: str
    measures: dict[str, Measure]
    checks: tuple[CheckSpec, ...]
    figures: tuple[FigureEntry, ...]
    caveats: tuple[str, ...]
    headline: tuple[str, ...]
    bootstrap: BootstrapSpec
    min_seeds: int
    max_failed_fraction: float
    raw: dict[str, Any]
    source_path: Path | None = None

    # -- the study each protocol runs -----------------------------------------------------------
    def protocols_to_run(self) -> list[str]:
        """Protocols that need runs of their own (those without ``reuse`` or ``pool``)."""
        return [p.name for p in self.protocols.values() if p.reuse is None and not p.pool]

    def study_for(self, protocol: str) -> dict[str, Any]:
        """The raw study (studies schema) that ``protocol`` runs under this budget."""
        if protocol not in self.protocols:
            raise ClaimError("protocol", protocol, f"one of {', '.join(self.protocols)}")
        p = self.protocols[protocol]
        if p.reuse is not None:
            raise ClaimError(
                f"protocols.{protocol}.reuse",
                p.reuse,
                f"nothing to run: protocol {protocol!r} evaluates the runs of {p.reuse!r}",
            )
        if p.pool:
            raise ClaimError(
                f"protocols.{protocol}.pool",
                list(p.pool),
                f"nothing to run: protocol {protocol!r} pools the runs of {', '.join(p.pool)}",
            )
        return _resolve_study(self.raw, self.budget, protocol)

    @property
    def replicates(self) -> int:
        name = self.protocols_to_run()[0]
        return int(self.study_for(name).get("replicates", 1))

    def with_budget(self, budget: str) -> ClaimSpec:
        """The same claim resolved for another budget."""
        return parse_claim(self.raw, budget=budget, source=self.source_path)

    def check(self, check_id: str) -> CheckSpec:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    @property
    def seed_files(self) -> list[str]:
        return list(dict.fromkeys(q.seed_file for q in self.quotes))


# -- helpers ---------------------------------------------------------------------------------
def _err(path: str, value: Any, allowed: str) -> ClaimError:
    return ClaimError(path, value, allowed)


def _mapping(raw: Any, path: str, what: str = "a mapping") -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _err(path, raw, what)
    return {str(k): v for k, v in raw.items()}


def _text(raw: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    v = raw.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or not v.strip():
        raise _err(f"{path}.{key}" if path else key, v, "a non-empty string")
    return v.strip()


def _unknown(raw: Mapping[str, Any], allowed: set[str] | dict[str, bool], path: str) -> None:
    for k in raw:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = f"{path}.{k}" if path else str(k)
            raise _err(where, raw[k], f"one of the keys {', '.join(sorted(allowed))}{hint}")


def _str_list(raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise _err(path, raw, "a list of non-empty strings")
    return tuple(raw)


def _where(raw: Any, path: str) -> WhereFilter | None:
    return None if raw is None else parse_where(raw, path)


def _build(registry: Any, spec: Any, path: str) -> Any:
    """Build a registered component from a spec, turning registry errors into ClaimErrors."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise _err(path, spec, f"a mapping with a 'name': one of {', '.join(registry.names())}")
    try:
        obj = registry.build(dict(spec))
    except UnknownNameError as exc:
        raise _err(f"{path}.name", spec["name"], f"one of {', '.join(registry.names())}") from exc
    except SpecError as exc:
        raise _err(
            path, dict(spec), f"the arguments {registry.kind} {spec['name']!r} takes: {exc}"
        ) from exc
    for arg, value, allowed in obj.validate():
        raise _err(f"{path}.{arg}", value, allowed)
    return obj


def _merge_params(study: dict[str, Any], params: Mapping[str, Any]) -> None:
    search = study.setdefault("search", {})
    plist = search.setdefault("params", {})
    for k, v in params.items():
        plist[str(k)] = copy.deepcopy(v)


def _apply_protocol_block(study: dict[str, Any], block: Mapping[str, Any]) -> None:
    params = study.setdefault("search", {}).setdefault("params", {})
    for k, v in (block.get("set") or {}).items():
        set_dotted(study, str(k), copy.deepcopy(v))
        params.pop(str(k), None)  # a value fixed by the protocol is no longer searched
    _merge_params(study, block.get("search") or {})
    derived = block.get("derived") or {}
    if derived:
        dd = study["search"].setdefault("derived", {})
        for k, v in derived.items():
            dd[str(k)] = v
            params.pop(str(k), None)
    for k, role in (block.get("roles") or {}).items():
        if str(k) in params and isinstance(params[str(k)], dict):
            params[str(k)]["role"] = role


def _resolve_study(raw: Mapping[str, Any], budget: str, protocol: str) -> dict[str, Any]:
    study = copy.deepcopy(dict(raw["study"]))
    b = (raw.get("budgets") or {}).get(budget) or {}
    for k, v in (b.get("set") or {}).items():
        set_dotted(study, str(k), copy.deepcopy(v))
    if "replicates" in b:
        study["replicates"] = b["replicates"]
    _merge_params(study, b.get("search") or {})
    _apply_protocol_block(study, (raw["protocols"] or {})[protocol] or {})
    _apply_protocol_block(study, ((b.get("protocols") or {}).get(protocol)) or {})
    return study


def _param_roles(study: Mapping[str, Any], path: str) -> dict[str, str]:
    params = _mapping(((study.get("search") or {}).get("params")), f"{path}.search.params")
    roles = {}
    for k, spec in params.items():
        spec = _mapping(spec, f"{path}.search.params.{k}", "a parameter distribution mapping")
        role = spec.get("role", "nuisance")
        if role not in ROLES:
            raise _err(f"{path}.search.params.{k}.role", role, f"one of {', '.join(ROLES)}")
        roles[k] = role
    return roles


# -- parsing ---------------------------------------------------------------------------------
def _parse_quotes(raw: Any) -> tuple[Quote, ...]:
    src = _mapping(raw, "source")
    _unknown(src, {"seed_file", "section", "quotes"}, "source")
    default_file = src.get("seed_file")
    default_section = src.get("section", "")
    quotes_raw = src.get("quotes")
    if not isinstance(quotes_raw, list) or not quotes_raw:
        raise _err("source.quotes", quotes_raw, "a non-empty list of {text, gloss, checks}")
    out = []
    for i, q in enumerate(quotes_raw):
        path = f"source.quotes[{i}]"
        q = _mapping(q, path, "a mapping {text, gloss, checks, seed_file, section}")
        _unknown(q, {"text", "gloss", "checks", "seed_file", "section"}, path)
        seed_file = q.get("seed_file", default_file)
        if not isinstance(seed_file, str) or not _SEED_FILE_RE.match(seed_file):
            raise _err(
                f"{path}.seed_file", seed_file, "a seed file name like 000_16e5fcb357a67462.txt"
            )
        out.append(
            Quote(
                text=_text(q, "text", path),
                gloss=_text(q, "gloss", path),
                checks=_str_list(q.get("checks"), f"{path}.checks"),
                seed_file=seed_file,
                section=str(q.get("section", default_section) or ""),
            )
        )
    return tuple(out)


def _parse_select(raw: Any, path: str, measures: Mapping[str, Measure]) -> SelectSpec | None:
    if raw is None:
        return None
    sel = _mapping(raw, path)
    _unknown(sel, {"measure", "mode", "center", "at"}, path)
    m = sel.get("measure")
    if m not in measures:
        raise _err(f"{path}.measure", m, f"a measure of this claim: {', '.join(measures)}")
    mode = sel.get("mode", "max")
    if mode not in ("max", "min"):
        raise _err(f"{path}.mode", mode, "max or min")
    ctr = sel.get("center", "median")
    if ctr not in ("median", "mean"):
        raise _err(f"{path}.center", ctr, "median or mean")
    return SelectSpec(str(m), mode, ctr, _where(sel.get("at"), f"{path}.at"))


def _parse_protocols(
    raw: Mapping[str, Any], budget: str, measures: Mapping[str, Measure]
) -> dict[str, ProtocolSpec]:
    protos_raw = _mapping(raw.get("protocols"), "protocols")
    if not protos_raw:
        raise _err("protocols", raw.get("protocols"), "at least one protocol")
    out: dict[str, ProtocolSpec] = {}
    for name, block in protos_raw.items():
        path = f"protocols.{name}"
        if not _ID_RE.match(name):
            raise _err(path, name, "a protocol name in [a-z0-9_]")
        block = _mapping(block, path)
        _unknown(block, _PROTOCOL_KEYS, path)
        pool = _parse_pool(block, path, name, protos_raw)
        reuse = block.get("reuse")
        if reuse is not None:
            if reuse not in protos_raw or reuse == name:
                others = [p for p in protos_raw if p != name]
                raise _err(f"{path}.reuse", reuse, f"another protocol: {', '.join(others)}")
            src_block = protos_raw[reuse] or {}
            if src_block.get("reuse") is not None or src_block.get("pool"):
                raise _err(
                    f"{path}.reuse", reuse, "a protocol that has runs of its own (no chains)"
                )
            for k in ("set", "search", "derived"):
                if block.get(k):
                    raise _err(f"{path}.{k}", block[k], "nothing: a reusing protocol has no runs")
        for k in ("set", "search", "derived"):
            _mapping(block.get(k), f"{path}.{k}")
        roles = _mapping(block.get("roles"), f"{path}.roles")
        for k, r in roles.items():
            if r not in ROLES:
                raise _err(f"{path}.roles.{k}", r, f"one of {', '.join(ROLES)}")
        out[name] = ProtocolSpec(
            name=name,
            description=_text(block, "description", path),
            set=_mapping(block.get("set"), f"{path}.set"),
            search=_mapping(block.get("search"), f"{path}.search"),
            derived=_mapping(block.get("derived"), f"{path}.derived"),
            roles=roles,
            reuse=reuse,
            where=_where(block.get("where"), f"{path}.where"),
            select=_parse_select(block.get("select"), f"{path}.select", measures),
            pool=pool,
        )
    # resolve parameter roles under the budget (a reusing protocol inherits and overrides)
    for name, p in out.items():
        if p.pool:
            continue  # after its members, below
        src = p.runs_from
        study = _resolve_study(raw, budget, src)
        roles = _param_roles(study, f"protocols.{src}(resolved study)")
        for k, r in p.roles.items():
            if k not in roles:
                raise _err(
                    f"protocols.{name}.roles.{k}", r, f"a searched parameter: {', '.join(roles)}"
                )
            roles[k] = r
        if p.where is not None:
            for q in p.where.params - set(roles):
                raise _err(
                    f"protocols.{name}.where", q, f"a searched parameter: {', '.join(roles)}"
                )
        nuisance = [k for k, r in roles.items() if r == "nuisance"]
        if nuisance and p.select is None:
            raise _err(
                f"protocols.{name}.select",
                None,
                f"a select block, because nuisance parameters remain ({', '.join(nuisance)}); "
                "or pin them with where + roles: fixed",
            )
        if p.select is not None and p.select.at is not None:
            for q in p.select.at.params - {k for k, r in roles.items() if r == "scientific"}:
                raise _err(f"protocols.{name}.select.at", q, "a scientific parameter")
        out[name] = replace(p, param_roles=roles)
    for name, p in out.items():
        if p.pool:
            out[name] = _resolve_pool(p, out)
    return out


def _parse_pool(
    block: Mapping[str, Any], path: str, name: str, protos_raw: Mapping[str, Any]
) -> tuple[str, ...]:
    """The members of ``pool: [p1, p2, ...]`` (two or more other protocols that are no pools)."""
    if "pool" not in block:
        return ()
    for k in block:
        if k not in _POOL_KEYS:
            raise _err(
                f"{path}.{k}",
                block[k],
                "nothing: a pooled protocol has no runs of its own and selects nothing (with "
                f"pool: only {', '.join(sorted(_POOL_KEYS))}; set them in the pooled protocols)",
            )
    members = _str_list(block.get("pool"), f"{path}.pool")
    others = [p for p in protos_raw if p != name and not (protos_raw[p] or {}).get("pool")]
    if len(members) < 2 or len(set(members)) != len(members):
        raise _err(
            f"{path}.pool", list(members), f"two or more distinct protocols of: {', '.join(others)}"
        )
    for m in members:
        if m not in others:
            raise _err(
                f"{path}.pool",
                m,
                f"another protocol that is not itself a pool: {', '.join(others) or 'none'}",
            )
    return members


def _resolve_pool(p: ProtocolSpec, protocols: Mapping[str, ProtocolSpec]) -> ProtocolSpec:
    """A pool's roles: ``protocol`` and every member's scientific parameter, all scientific.

    A member that does not vary one of them shows it as missing in its groups (a filter on that
    parameter never selects the member's runs, except by ``protocol``). Nuisance parameters
    were selected within each member, so the pool has none.
    """
    roles = {POOL_PARAM: "scientific"}
    for m in p.pool:
        for k in protocols[m].scientific:
            if k == POOL_PARAM:
                raise _err(
                    f"protocols.{m}.search.{k}",
                    k,
                    f"a parameter not named {POOL_PARAM!r} (protocol {p.name!r} pools {m!r}, "
                    f"and its {POOL_PARAM!r} names the pooled protocol)",
                )
            roles[k] = "scientific"
    if p.where is not None:
        for q in sorted(p.where.params - set(roles)):
            raise _err(
                f"protocols.{p.name}.where",
                q,
                f"a scientific parameter of the pool: {', '.join(roles)}",
            )
        named = [c for clause in p.where.clauses for c in clause if c.param == POOL_PARAM]
        for c in named:
            values = c.value if c.op == "in" else (c.value,) if c.op in ("==", "!=") else ()
            for v in values:
                if v not in p.pool:
                    raise _err(
                        f"protocols.{p.name}.where.{POOL_PARAM}",
                        v,
                        f"a protocol of the pool: {', '.join(p.pool)}",
                    )
    return replace(p, param_roles=roles)


def _parse_rule(raw: Any, path: str) -> Rule:
    rr = _mapping(raw, path, "a rule {op, value}")
    _unknown(rr, {"op", "value"}, path)
    try:
        return Rule.parse(rr)
    except ClaimError as exc:
        raise exc.under(path) from None


def _parse_node(
    raw: Mapping[str, Any],
    path: str,
    check_id: str,
    counter: list[int],
    measures: Mapping[str, Measure],
    protocols: Mapping[str, ProtocolSpec],
    check_protocols: tuple[str, ...],
) -> Node:
    combos = [k for k in ("all", "any") if k in raw]
    if combos:
        if len(combos) > 1 or any(k in raw for k in _LEAF_KEYS):
            raise _err(path, dict(raw), "either a statistic + rule, or one of all / any")
        items = raw[combos[0]]
        if not isinstance(items, list) or not items:
            raise _err(f"{path}.{combos[0]}", items, "a non-empty list of conditions")
        children = []
        for i, item in enumerate(items):
            ipath = f"{path}.{combos[0]}[{i}]"
            item = _mapping(item, ipath, "a condition {statistic, rule} or {all|any: [...]}")
            _unknown(item, _LEAF_KEYS | {"all", "any"}, ipath)
            children.append(
                _parse_node(item, ipath, check_id, counter, measures, protocols, check_protocols)
            )
        return Combo(combos[0], tuple(children))
    if "statistic" not in raw or "rule" not in raw:
        raise _err(path, dict(raw), "a statistic and a rule (or all / any of conditions)")
    base_stat = _mapping(raw["statistic"], f"{path}.statistic", "a statistic spec {name, ...}")
    rule = _parse_rule(raw["rule"], f"{path}.rule")
    per = _mapping(raw.get("per_protocol"), f"{path}.per_protocol")
    for pname, override in per.items():
        if pname not in check_protocols:
            raise _err(
                f"{path}.per_protocol.{pname}",
                override,
                f"a protocol of this check: {', '.join(check_protocols)}",
            )
        o = _mapping(override, f"{path}.per_protocol.{pname}", "a mapping {op, value, statistic}")
        _unknown(o, {"op", "value", "statistic"}, f"{path}.per_protocol.{pname}")
    stats: dict[str, Statistic] = {}
    rules: dict[str, Rule] = {}
    for pname in check_protocols:
        o = _mapping(per.get(pname), "")
        spath = f"{path}.statistic"
        spec = dict(base_stat)
        if "statistic" in o:
            spath = f"{path}.per_protocol.{pname}.statistic"
            spec.update(_mapping(o["statistic"], spath, "a mapping of statistic arguments"))
        stat: Statistic = _build(STATISTICS, spec, spath)
        _check_verdict_center(stat, spath)
        _check_stat_names(stat, spath, pname, protocols[pname], measures)
        stats[pname] = stat
        if "op" in o or "value" in o:
            merged = {
                "op": rule.op,
                "value": list(rule.value) if rule.op == "between" else rule.value,
            }
            merged.update({k: v for k, v in o.items() if k in ("op", "value")})
            rules[pname] = _parse_rule(merged, f"{path}.per_protocol.{pname}")
    counter[0] += 1
    return ConditionSpec(f"{check_id}.{counter[0]}", stats, rule, rules, path)


def _check_verdict_center(stat: Statistic, path: str) -> None:
    """A verdict's statistic is centred on the median over seeds, never on their mean.

    The engine's interval for ``center: mean`` is Student t, which covered the mean of skewed
    run values only 82–85 % of the time at 3 to 10 seeds where it states 95 %
    (``benchmarks/verdict_calibration.py``), and no interval for a mean holds its level on ≤ 10
    seeds of unknown shape. A statistic with an interval of its own (a proportion's
    Clopper-Pearson, the group bootstrap) does not use it; ``select`` keeps ``center: mean`` (it
    picks a nuisance value and prints no interval).
    """
    if getattr(stat, "center", "median") == "mean" and getattr(stat, "seed_interval", None) is None:
        raise _err(
            f"{path}.center",
            "mean",
            "median (the mean of ≤ 10 seeds has no interval that holds 95 % on skewed run data; "
            "use median)",
        )


def _check_stat_names(
    stat: Statistic, path: str, pname: str, p: ProtocolSpec, measures: Mapping[str, Measure]
) -> None:
    """The statistic's measures exist and its parameters have the right role in ``p``."""
    cfg = stat.get_config()

    def arg_of(value: Any) -> str:
        return next((f"{path}.{k}" for k, v in cfg.items() if v == value), path)

    for m in stat.measures():
        if m not in measures:
            raise _err(f"{path}.measure", m, f"a measure of this claim: {', '.join(measures)}")
    if not p.pool and POOL_PARAM in {*stat.params(), *stat.filter_params()}:
        raise _err(
            arg_of(POOL_PARAM) if POOL_PARAM in stat.params() else f"{path}.{_filter_arg(cfg)}",
            POOL_PARAM,
            f"a scientific parameter of protocol {pname!r}: {', '.join(p.scientific) or 'none'} "
            f"(a filter on {POOL_PARAM!r} needs a check over a pooled protocol, "
            "pool: [p1, p2])",
        )
    for arg, value in _protocol_values(cfg):
        if p.pool and value not in p.pool:
            raise _err(
                f"{path}.{arg}", value, f"a protocol pooled by {pname!r}: {', '.join(p.pool)}"
            )
    for q in stat.params():
        if q not in p.scientific:
            raise _err(
                arg_of(q),
                q,
                f"a scientific parameter of protocol {pname!r}: {', '.join(p.scientific) or 'none'}",
            )
    for q in stat.filter_params():  # statistics see groups of scientific values only
        if q not in p.scientific:
            raise _err(
                f"{path}.where",
                q,
                f"a scientific parameter of protocol {pname!r}: {', '.join(p.scientific) or 'none'}",
            )


def _filter_arg(cfg: Mapping[str, Any], param: str = POOL_PARAM) -> str:
    """The statistic argument whose filter names ``param`` (for the error's path)."""
    for arg, _ in _protocol_values(cfg, param, every=True):
        return arg.split(".")[0] if "." in arg else arg
    return "where"


def _protocol_values(
    cfg: Mapping[str, Any], param: str = POOL_PARAM, *, every: bool = False
) -> list[tuple[str, Any]]:
    """``(argument path, value)`` of every value a statistic's config compares ``param`` to.

    Filters (``a``, ``b``, ``where``, ...: any mapping or list argument that parses as a filter),
    the arms of ``param: protocol`` and a wrapped ``statistic`` (``group_bootstrap``) are read;
    ``every`` keeps ordered comparisons too (their value is no protocol name).
    """
    out: list[tuple[str, Any]] = []
    if cfg.get("param") == param:
        for side in ("a", "b"):
            if side in cfg and cfg[side] not in ("<min>", "<max>"):
                out.append((side, cfg[side]))
    for k, v in cfg.items():
        if k == "statistic" and isinstance(v, Mapping):
            out += [(f"statistic.{a}", x) for a, x in _protocol_values(v, param, every=every)]
            continue
        if not isinstance(v, (Mapping, list)) or (cfg.get("param") == param and k in ("a", "b")):
            continue
        try:
            wf = parse_where(v, k)
        except (ValueError, ClaimError):
            continue
        for clause in wf.clauses:
            for c in clause:
                if c.param != param:
                    continue
                if c.op == "in":
                    out += [(f"{k}.{param}", x) for x in c.value]
                elif c.op in ("==", "!=") or every:
                    out.append((f"{k}.{param}", c.value))
    return out


def _parse_checks(
    raw: Any, measures: Mapping[str, Measure], protocols: Mapping[str, ProtocolSpec]
) -> tuple[CheckSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _err("checks", raw, "a non-empty list of checks")
    out: list[CheckSpec] = []
    for i, c in enumerate(raw):
        path = f"checks[{i}]"
        c = _mapping(c, path, "a check mapping {id, claim, why, statistic, rule, ...}")
        _unknown(c, _CHECK_KEYS, path)
        cid = _text(c, "id", path)
        if not _CHECK_ID_RE.match(cid):
            raise _err(f"{path}.id", cid, "letters, digits, '_', '.' or '-'")
        if cid in {x.id for x in out}:
            raise _err(f"{path}.id", cid, "an id not used by another check")
        cprotos = _str_list(c.get("protocols"), f"{path}.protocols") or tuple(protocols)
        for p in cprotos:
            if p not in protocols:
                raise _err(f"{path}.protocols", p, f"one of {', '.join(protocols)}")
        node_raw = {k: v for k, v in c.items() if k in _LEAF_KEYS | {"all", "any"}}
        has_rule = not ("statistic" in c and "rule" not in c)
        outcome = _parse_outcome(c.get("outcome"), f"{path}.outcome", has_rule)
        if outcome is not None and not outcome.judged:
            # nothing to judge: every finite interval "satisfies" this rule; the engine reports
            # the statistic and its interval under the outcome instead of a verdict
            node_raw["rule"] = {"op": "between", "value": [-float("inf"), float("inf")]}
        node = _parse_node(node_raw, path, cid, [0], measures, protocols, cprotos)
        if isinstance(node, ConditionSpec):  # a single condition is named after its check
            node = replace(node, id=cid)
        out.append(
            CheckSpec(
                id=cid,
                claim=_text(c, "claim", path),
                why=_text(c, "why", path),
                protocols=cprotos,
                node=node,
                priority=(str(c["priority"]) if c.get("priority") is not None else None),
                outcome=outcome,
            )
        )
    return tuple(out)


def _check_pooled_measures(
    checks: tuple[CheckSpec, ...],
    measures: Mapping[str, Measure],
    protocols: Mapping[str, ProtocolSpec],
) -> None:
    """A pool's checks read no measure resolved per set of runs when its members' runs differ.

    The engine resolves such a measure (``target: {fraction_of_best: f}``) on each set of runs,
    so two pooled protocols trained apart would each get their own target, and a contrast
    between them would compare two different measures.
    """
    for check in checks:
        for pname in check.protocols:
            p = protocols[pname]
            sources = sorted({protocols[m].runs_from for m in p.pool})
            if len(sources) < 2:
                continue
            for leaf in check.conditions:
                for m in leaf.statistic_for(pname).measures():
                    dep = measures[m].run_dependent()
                    if dep is not None:
                        raise _err(
                            f"measures.{m}.{dep[0]}",
                            dep[1],
                            f"a fixed value: check {check.id} reads {m!r} in pool {pname!r}, "
                            f"whose protocols have different runs ({', '.join(sources)}) and "
                            "would each resolve it on their own runs",
                        )


def _parse_outcome(raw: Any, path: str, has_rule: bool) -> OutcomeSpec | None:
    if raw is None:
        return None
    o = _mapping(raw, path, "a mapping {kind: ill_posed | not_falsifiable, on, why}")
    _unknown(o, _OUTCOME_KEYS, path)
    kind = o.get("kind")
    if kind not in OUTCOME_KINDS:
        raise _err(f"{path}.kind", kind, f"one of {', '.join(OUTCOME_KINDS)}")
    default_on = "refuted" if kind == "ill_posed" else "always"
    on = o.get("on", default_on)
    if on not in _OUTCOME_ON:
        raise _err(f"{path}.on", on, f"one of {', '.join(_OUTCOME_ON)}")
    why = _text(o, "why", path)
    if not has_rule and kind != "not_falsifiable":
        raise _err(
            path.rsplit(".", 1)[0] + ".rule",
            None,
            "a rule {op, value} (only kind not_falsifiable may omit it)",
        )
    if not has_rule and on != "always":
        raise _err(f"{path}.on", on, "always (a check without a rule has no verdict to match)")
    return OutcomeSpec(kind=kind, on=on, why=why, judged=has_rule)


def _parse_figures(
    raw: Any, measures: Mapping[str, Measure], protocols: Mapping[str, ProtocolSpec]
) -> tuple[FigureEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _err("figures", raw, "a list of figure specs {name, ...}")
    out = []
    for i, f in enumerate(raw):
        path = f"figures[{i}]"
        f = _mapping(f, path, "a figure spec {name, ...}")
        fprotos = _str_list(f.get("protocols"), f"{path}.protocols") or tuple(protocols)
        for p in fprotos:
            if p not in protocols:
                raise _err(f"{path}.protocols", p, f"one of {', '.join(protocols)}")
        title = f.get("title")
        spec = {k: v for k, v in f.items() if k not in ("protocols", "title")}
        fig: ClaimFigure = _build(FIGURES, spec, path)
        known = set().union(*(protocols[p].searched for p in fprotos)) | {"protocol"}
        for arg, value, allowed in fig.check_names(set(measures), known):
            raise _err(f"{path}.{arg}", value, allowed)
        out.append(FigureEntry(str(f["name"]), fig, fprotos, title, i))
    return tuple(out)


def _parse_measures(raw: Mapping[str, Any], budget: str) -> dict[str, Measure]:
    specs = _mapping(raw.get("measures"), "measures")
    if not specs:
        raise _err("measures", raw.get("measures"), "at least one measure")
    b = ((raw.get("budgets") or {}).get(budget) or {}).get("measures") or {}
    b = _mapping(b, f"budgets.{budget}.measures")
    for k in b:
        if k not in specs:
            raise _err(f"budgets.{budget}.measures.{k}", b[k], f"a measure: {', '.join(specs)}")
    out = {}
    for name, spec in specs.items():
        if not _ID_RE.match(name):
            raise _err(f"measures.{name}", spec, "a measure name in [a-z0-9_]")
        merged = {**_mapping(spec, f"measures.{name}"), **_mapping(b.get(name), "")}
        out[name] = _build(MEASURES, merged, f"measures.{name}")
    return out


def _parse_budgets(raw: Mapping[str, Any], budget: str | None) -> tuple[dict[str, Any], str]:
    budgets = _mapping(raw.get("budgets"), "budgets") or {"quick": {}}
    for name, b in budgets.items():
        path = f"budgets.{name}"
        b = _mapping(b, path)
        _unknown(b, _BUDGET_KEYS, path)
        for k in ("set", "search", "measures", "protocols"):
            _mapping(b.get(k), f"{path}.{k}")
        for p in _mapping(b.get("protocols"), f"{path}.protocols"):
            if p not in (raw.get("protocols") or {}):
                raise _err(f"{path}.protocols.{p}", p, "a protocol of this claim")
        r = b.get("replicates")
        if r is not None and (not isinstance(r, int) or isinstance(r, bool) or r < 1):
            raise _err(f"{path}.replicates", r, "an integer >= 1")
        budgets[name] = b
    chosen = budget or ("quick" if "quick" in budgets else next(iter(budgets)))
    if chosen not in budgets:
        raise _err("budget", chosen, f"one of {', '.join(budgets)}")
    return budgets, chosen


def parse_claim(
    raw: Mapping[str, Any], *, budget: str | None = None, source: str | Path | None = None
) -> ClaimSpec:
    """Validate a claim mapping and resolve it for ``budget`` (default: ``quick``)."""
    src = str(source) if source is not None else None
    try:
        return _parse(dict(raw), budget, src)
    except ClaimError as exc:
        raise (exc.with_source(src) if src else exc) from exc.__cause__
    except ConfigError as exc:  # from set_dotted on a malformed study
        raise ClaimError(exc.path, exc.value, exc.allowed, source=src) from exc


def _parse(raw: dict[str, Any], budget: str | None, src: str | None) -> ClaimSpec:
    _unknown(raw, _TOP, "")
    for k, req in _TOP.items():
        if req and k not in raw:
            raise ClaimError.missing(k, "a value (required key)")
    cid = raw["id"]
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        raise _err("id", cid, "a claim id in [a-z0-9_]")
    if src and Path(src).stem != cid:
        raise _err("id", cid, f"the file name stem {Path(src).stem!r}")
    study = _mapping(raw["study"], "study", "a study mapping (studies schema)")
    _param_roles(study, "study")
    r = study.get("replicates", 1)
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise _err("study.replicates", r, "an integer >= 1")
    budgets, chosen = _parse_budgets(raw, budget)
    measures = _parse_measures(raw, chosen)
    protocols = _parse_protocols(raw, chosen, measures)
    checks = _parse_checks(raw["checks"], measures, protocols)
    _check_pooled_measures(checks, measures, protocols)
    ids = {c.id for c in checks}
    quotes = _parse_quotes(raw["source"])
    for i, q in enumerate(quotes):
        for cid_ in q.checks:
            if cid_ not in ids:
                raise _err(f"source.quotes[{i}].checks", cid_, f"a check id: {', '.join(ids)}")
    headline = _str_list(raw.get("headline"), "headline")
    for h in headline:
        if h not in ids:
            raise _err("headline", h, f"a check id: {', '.join(ids)}")
    boot = _mapping(raw.get("bootstrap"), "bootstrap")
    _unknown(boot, {"n_boot", "seed", "level"}, "bootstrap")
    bs = BootstrapSpec(**boot)
    if not isinstance(bs.n_boot, int) or bs.n_boot < 100:
        raise _err("bootstrap.n_boot", bs.n_boot, "an integer >= 100")
    if not isinstance(bs.seed, int) or bs.seed < 0:
        raise _err("bootstrap.seed", bs.seed, "an integer >= 0")
    if not isinstance(bs.level, float) or not 0.5 <= bs.level < 1:
        raise _err("bootstrap.level", bs.level, "a float in [0.5, 1)")
    min_seeds = raw.get("min_seeds", 3)
    if not isinstance(min_seeds, int) or isinstance(min_seeds, bool) or min_seeds < 2:
        raise _err("min_seeds", min_seeds, "an integer >= 2")
    mff = raw.get("max_failed_fraction", 0.25)
    if not isinstance(mff, (int, float)) or isinstance(mff, bool) or not 0 <= mff <= 1:
        raise _err("max_failed_fraction", mff, "a number in [0, 1]")
    anchors = _str_list(raw.get("anchors"), "anchors")
    caveats = _str_list(raw.get("caveats"), "caveats")
    return ClaimSpec(
        id=cid,
        title=_text(raw, "title", ""),
        quotes=quotes,
        anchors=anchors,
        study=study,
        protocols=protocols,
        budgets=budgets,
        budget=chosen,
        measures=measures,
        checks=checks,
        figures=_parse_figures(raw.get("figures"), measures, protocols),
        caveats=caveats,
        headline=headline,
        bootstrap=bs,
        min_seeds=min_seeds,
        max_failed_fraction=float(mff),
        raw=copy.deepcopy(raw),
        source_path=Path(src) if src else None,
    )


def list_claims(claims_dir: str | Path | None = None) -> list[str]:
    """Ids of the claim files in ``claims_dir`` (default :data:`CLAIMS_DIR`), sorted."""
    d = Path(claims_dir) if claims_dir is not None else CLAIMS_DIR
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_claim(
    path_or_id: str | Path, *, budget: str | None = None, claims_dir: str | Path | None = None
) -> ClaimSpec:
    """Load and validate a claim file; an id resolves to ``<claims_dir>/<id>.yaml``.

    Raises
    ------
    ClaimError
        Naming the file, the YAML path, the value and what is allowed.
    """
    p = Path(path_or_id)
    if not (
        isinstance(path_or_id, Path) or p.suffix in (".yaml", ".yml") or "/" in str(path_or_id)
    ):
        d = Path(claims_dir) if claims_dir is not None else CLAIMS_DIR
        p = d / f"{path_or_id}.yaml"
        if not p.is_file():
            known = list_claims(d)
            raise ClaimError(
                "claim", str(path_or_id), f"a claim id: {', '.join(known) or '(none found)'} in {d}"
            )
    try:
        raw = load_yaml(p)
    except ConfigError as exc:
        raise ClaimError(exc.path, exc.value, exc.allowed, source=exc.source) from exc
    return parse_claim(raw, budget=budget, source=p)
