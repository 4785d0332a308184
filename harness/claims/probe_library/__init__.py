"""The registered probes (:data:`harness.claims.probes.PROBES`) and their figures.

Importing this package registers every probe: numerics (U1–U5, L2, R6, A5), representation
(X3, X4, A13, I4, A12, I5a), the toy-objective optimizer paths (O1, O2, E2) and the
multiply-add count of a network's forward pass (X2).
"""

from __future__ import annotations

from harness.claims.probe_library import costs, figures, numerics, optimizers, representation

__all__ = ["costs", "figures", "numerics", "optimizers", "representation"]
