"""The claim engine: from run tables to verdicts and reports.

A claim (``studies/claims/<id>.yaml``, schema in :mod:`harness.claims.spec`) names the tutorial
quote it tests, the study that measures it, the protocols (e.g. a shared vs a tuned learning
rate), per-run measures, checks (statistic + rule) and figures. The flow::

    claim = load_claim("batch_size", budget="quick")
    tables = {...}                      # protocol -> RunTable, from the study runner
    outcome = evaluate_claim(claim, tables)
    paths = write_report(claim, outcome, tables, out_dir=Path("reports"), meta={...})
    write_index(Path("reports"), [outcome, ...])

Verdicts are three-valued per protocol (supported / refuted / inconclusive, from the per-seed
statistic's order-statistic interval against the rule; see :mod:`harness.claims.intervals`) and
combine across protocols into supported / refuted / conditional / inconclusive. Statistics,
measures, figures and probes are registries; a protocol whose study has a ``probe`` block
evaluates a registered probe instead of training (:mod:`harness.claims.probes`).
"""

from __future__ import annotations

# registered components that live outside measures.py / statistics.py (imported to register)
from harness.claims import (  # noqa: F401
    contrast_stats,
    scatter_figure,
    smallest_x,
    threshold_stats,
    versus_stats,
    weight_measures,
)
from harness.claims.engine import evaluate_claim
from harness.claims.errors import ClaimError
from harness.claims.figures import FIGURES
from harness.claims.measures import MEASURES
from harness.claims.outcome import (
    CheckProtocolResult,
    CheckResult,
    ClaimOutcome,
    ConditionResult,
    Outcome,
    ProtocolData,
)
from harness.claims.report import ReportPaths, write_index, write_report
from harness.claims.results import RUN_STATUSES, RunTable
from harness.claims.spec import CLAIMS_DIR, ClaimSpec, list_claims, load_claim, parse_claim
from harness.claims.statistics import STATISTICS
from harness.claims.verdicts import Verdict

# registers the probes (PROBES) and their figures; after the imports above, which it builds on
from harness.claims import probe_library  # noqa: F401  isort: skip

__all__ = [
    "CLAIMS_DIR",
    "FIGURES",
    "MEASURES",
    "RUN_STATUSES",
    "STATISTICS",
    "CheckProtocolResult",
    "CheckResult",
    "ClaimError",
    "ClaimOutcome",
    "ClaimSpec",
    "ConditionResult",
    "Outcome",
    "ProtocolData",
    "ReportPaths",
    "RunTable",
    "Verdict",
    "evaluate_claim",
    "list_claims",
    "load_claim",
    "parse_claim",
    "write_index",
    "write_report",
]
