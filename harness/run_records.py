"""What a run can record beyond its per-epoch metrics: ``train.record``.

Off by default (``train.record: null``). A mapping turns on any of three recorders::

    train:
      record:
        weights: true        # statistics of the trained weights, every epoch
        near_zero: 1.0e-3    # |w| below this counts as a near-zero weight
        units: true          # per-unit activity over the WHOLE training set, every epoch
        units_from: 2        # the dead set at this epoch is tracked for revival
        step_window: 200     # loss statistics over the last 200 optimizer steps
        step_full_loss: true # ... also the full-training-set loss after each of those steps

Keys each recorder adds to the epoch records (and so to the claim engine's curves), with layer
names such as ``dense_0`` or ``relu_1``:

``weights``
    ``w_near_zero/<layer>``: fraction of the layer's weights with ``|w| < near_zero``;
    ``w_unit_diff/<layer>``: the largest difference between two units of the layer, the
    max over unit pairs (i, j) of max |[W; b][:, i] − [W; b][:, j]| (0 when every unit is
    identical: claim I1); ``w_collapse_error``: for a network of dense layers and identity
    activations only, max |f(X) − (X·W₁⋯W_L + b_collapsed)| over the training inputs, on the
    raw outputs (logits) in float64 from float32 weights (the
    deep linear net equals one linear map: claim A13), NaN for any other network.
``units``
    Over every training sample, in eval mode: ``dead/<layer>`` (ReLU family: fraction of
    units whose gradient is 0 for *every* sample), ``active_rate/<layer>`` (fraction of
    (sample, unit) pairs with a non-zero gradient: 1 − the layer's sparsity); from epoch
    ``units_from`` on, ``dead_ref/<layer>`` (fraction of units dead at ``units_from``) and
    ``revived/<layer>`` (fraction of those that are alive now; NaN when none was dead).
``step_window``
    ``step_loss/std``, ``step_loss/mean``, ``step_loss/rel_std`` (std / mean),
    ``step_loss/increase_fraction`` (share of consecutive steps whose loss rose) over the
    mini-batch losses of the last ``step_window`` steps so far; with ``step_full_loss`` the
    same four as ``step_full_loss/*`` for the full training loss evaluated after each of the
    last ``step_window`` steps of the run (the noise of the iterate, not of the batch draw).

Nothing here is timed: the trainer calls the recorders outside its timed train steps.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.config import ConfigError

__all__ = [
    "RECORD_DEFAULTS",
    "RunRecorder",
    "linear_collapse_error",
    "max_unit_difference",
    "resolve_record",
    "unit_activity",
    "window_stats",
]

RECORD_DEFAULTS: dict[str, Any] = {
    "weights": False,
    "near_zero": 1.0e-3,
    "units": False,
    "units_from": 2,
    "step_window": 0,
    "step_full_loss": False,
}


def resolve_record(raw: Any, path: str = "train.record") -> dict[str, Any] | None:
    """Validate a ``train.record`` block and fill its defaults (``None`` stays off)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, f"null or a mapping with keys {', '.join(RECORD_DEFAULTS)}")
    out = dict(RECORD_DEFAULTS)
    for key, value in raw.items():
        if key not in RECORD_DEFAULTS:
            raise ConfigError(
                f"{path}.{key}", value, f"one of the keys {', '.join(RECORD_DEFAULTS)}"
            )
        out[str(key)] = value
    for key in ("weights", "units", "step_full_loss"):
        if not isinstance(out[key], bool):
            raise ConfigError(f"{path}.{key}", out[key], "true or false")
    nz = out["near_zero"]
    if isinstance(nz, bool) or not isinstance(nz, (int, float)) or not 0 < nz < math.inf:
        raise ConfigError(f"{path}.near_zero", nz, "a finite number > 0")
    for key, low in (("units_from", 0), ("step_window", 0)):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{path}.{key}", v, f"an integer >= {low}")
    if out["step_full_loss"] and out["step_window"] < 2:
        raise ConfigError(
            f"{path}.step_full_loss", True, "false unless step_window >= 2 (the steps to evaluate)"
        )
    return out


# -- weights ------------------------------------------------------------------------------------
def max_unit_difference(W: np.ndarray, b: np.ndarray | None = None) -> float:
    """max over unit pairs (i, j) of max_r |M[r, i] − M[r, j]|, ``M = [W; b]`` of shape (D+1, U).

    Equal to max_r (max_i M[r, i] − min_i M[r, i]): linear, not quadratic, in the units.
    ``W`` has the units on its last axis (dense: (D, U)); other axes are flattened.
    """
    M = np.asarray(W, dtype=np.float64)
    M = M.reshape(-1, M.shape[-1]) if M.ndim != 2 else M
    if b is not None:
        M = np.vstack([M, np.asarray(b, dtype=np.float64).reshape(1, -1)])
    if M.shape[1] < 2:
        return 0.0
    return float(np.max(M.max(axis=1) - M.min(axis=1)))


def _is_linear_chain(net: Any) -> bool:
    from models.activations import Identity
    from models.layers import Dense, Flatten

    linear = (Dense, Identity, Flatten)  # flatten only reshapes: still one linear map
    return bool(net.layers) and all(isinstance(layer, linear) for layer in net.layers)


def linear_collapse_error(net: Any, X: np.ndarray) -> float:
    """max |net(X) − (X·W_prod + b_prod)| for a chain of dense layers and identity activations.

    ``W_prod = W₁·W₂⋯W_L`` and ``b_prod`` follows by pushing each bias through the later layers,
    computed in float64; NaN when the network has any other layer (it is not linear).
    """
    if not _is_linear_chain(net):
        return math.nan
    from models.layers import Dense

    W_prod: np.ndarray | None = None
    b_prod: np.ndarray | None = None
    for layer in net.layers:
        if not isinstance(layer, Dense):
            continue
        W = np.asarray(layer.params["W"], dtype=np.float64)
        b = np.asarray(layer.params.get("b", np.zeros(W.shape[1])), dtype=np.float64)
        if W_prod is None:
            W_prod, b_prod = W, b
        else:
            assert b_prod is not None
            W_prod, b_prod = W_prod @ W, b_prod @ W + b
    if W_prod is None or b_prod is None:
        return math.nan
    x = np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
    with np.errstate(all="ignore"):
        deep = np.asarray(net.forward(X, train=False), dtype=np.float64).reshape(X.shape[0], -1)
    return float(np.max(np.abs(deep - (x @ W_prod + b_prod))))


def weight_statistics(net: Any, X: np.ndarray, near_zero: float) -> dict[str, float]:
    """The ``weights`` recorder's keys (module docstring) for the current parameters."""
    out: dict[str, float] = {}
    for layer in net.layers:
        W = layer.params.get("W") if layer.params else None
        if W is None:
            continue
        w = np.asarray(W)
        out[f"w_near_zero/{layer.name}"] = float(np.mean(np.abs(w) < near_zero))
        out[f"w_unit_diff/{layer.name}"] = max_unit_difference(w, layer.params.get("b"))
    out["w_collapse_error"] = linear_collapse_error(net, X)
    return out


# -- units --------------------------------------------------------------------------------------
def _zero_grad(layer: Any, out: np.ndarray) -> np.ndarray | None:
    """Where the activation's local gradient is 0, or None for activations without dead units."""
    from models.activations import ELU, LeakyReLU, ReLU

    if isinstance(layer, ReLU):
        return out <= 0
    if isinstance(layer, LeakyReLU):
        return (out <= 0) & (float(layer.alpha) == 0.0)
    if isinstance(layer, ELU):
        return (out <= 0) & (out + float(layer.alpha) == 0)
    return None


def unit_activity(net: Any, X: np.ndarray, batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Per ReLU-family layer, over every sample of ``X`` (eval mode, in batches).

    Returns ``{"<layer>": dead, "<layer>/active": [rate]}``: ``dead`` is a boolean array over the
    layer's units (all axes but the batch axis), True where the local gradient is 0 for every
    sample; ``rate`` is the fraction of (sample, unit) pairs with a non-zero gradient.
    """
    dead: dict[str, np.ndarray] = {}
    active: dict[str, float] = {}
    n = X.shape[0]
    with np.errstate(all="ignore"):
        for start in range(0, n, batch_size):
            net.forward(X[start : start + batch_size], train=False)
            for layer, out in net.layer_outputs:
                z = _zero_grad(layer, out)
                if z is None:
                    continue
                all_zero = np.asarray(z.all(axis=0), dtype=bool)
                dead[layer.name] = (
                    all_zero if layer.name not in dead else dead[layer.name] & all_zero
                )
                active[layer.name] = active.get(layer.name, 0.0) + float((~z).sum())
    result: dict[str, np.ndarray] = {}
    for name, d in dead.items():
        result[name] = d
        result[f"{name}/active"] = np.array([active[name] / (n * d.size)])
    return result


# -- step windows -------------------------------------------------------------------------------
def window_stats(values: Any) -> dict[str, float]:
    """``std``, ``mean``, ``rel_std`` and ``increase_fraction`` of a sequence of losses."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return dict.fromkeys(("std", "mean", "rel_std", "increase_fraction"), math.nan)
    mean = float(v.mean())
    std = float(v.std())
    rel = std / abs(mean) if mean != 0 else math.nan
    inc = float(np.mean(np.diff(v) > 0)) if v.size > 1 else math.nan
    return {"std": std, "mean": mean, "rel_std": rel, "increase_fraction": inc}


class RunRecorder:
    """The recorders of one run (see the module docstring); the trainer calls its hooks.

    Parameters
    ----------
    spec : mapping
        A resolved ``train.record`` block (:func:`resolve_record`).
    X_train, y_train : ndarray
        The training split the unit and full-loss statistics are computed on.
    total_steps : int
        How many optimizer steps the run will take (to know which steps are the last ones).
    """

    def __init__(
        self, spec: Mapping[str, Any], X_train: Any, y_train: Any, *, total_steps: int
    ) -> None:
        self.spec = dict(spec)
        self.X = X_train
        self.y = y_train
        self.total_steps = int(total_steps)
        w = int(self.spec["step_window"])
        self._batch_losses: deque[float] = deque(maxlen=max(w, 1))
        self._full_losses: list[float] = []
        self._ref_dead: dict[str, np.ndarray] | None = None

    def on_step(self, step: int, loss: float, net: Any) -> None:
        """After optimizer step ``step`` (1-based) with mini-batch loss ``loss``."""
        w = int(self.spec["step_window"])
        if w <= 0:
            return
        self._batch_losses.append(float(loss))
        if self.spec["step_full_loss"] and step > self.total_steps - w:
            with np.errstate(all="ignore"):
                full = net.evaluate(self.X, self.y, batch_size=4096)["loss"]
            self._full_losses.append(float(full))

    def on_epoch(self, epoch: int, net: Any) -> dict[str, float]:
        """Keys to add to the record of ``epoch`` (0 = at init)."""
        out: dict[str, float] = {}
        s = self.spec
        if s["weights"]:
            out.update(weight_statistics(net, self.X, float(s["near_zero"])))
        if s["units"]:
            act = unit_activity(net, self.X)
            dead = {k: v for k, v in act.items() if not k.endswith("/active")}
            for name, d in dead.items():
                out[f"dead/{name}"] = float(d.mean())
                out[f"active_rate/{name}"] = float(act[f"{name}/active"][0])
            if epoch == int(s["units_from"]):
                self._ref_dead = {k: v.copy() for k, v in dead.items()}
            if self._ref_dead is not None:
                for name, ref in self._ref_dead.items():
                    out[f"dead_ref/{name}"] = float(ref.mean())
                    now = dead.get(name)
                    n_ref = int(ref.sum())
                    out[f"revived/{name}"] = (
                        float((ref & ~now).sum() / n_ref) if n_ref and now is not None else math.nan
                    )
        if int(s["step_window"]) > 0 and epoch > 0:
            for k, v in window_stats(self._batch_losses).items():
                out[f"step_loss/{k}"] = v
            # the full-loss window is reported once complete (the last steps of the run)
            complete = len(self._full_losses) >= min(int(s["step_window"]), self.total_steps)
            if s["step_full_loss"] and complete:
                for k, v in window_stats(self._full_losses).items():
                    out[f"step_full_loss/{k}"] = v
        return out
