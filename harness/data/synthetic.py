"""Synthetic datasets generated in memory: logic gates, 2-D toy problems, probes and regressions.

Every random draw comes from ``np.random.default_rng(seed)`` (or ``random_state=seed`` for the
scikit-learn generators), so the same spec gives bit-identical arrays. ``noise`` is always the
standard deviation of the Gaussian noise added to the inputs (or, for ``house_prices``, the price).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import RawData, check_bool, check_float, check_int, register_dataset

__all__ = ["HOUSE_PRICE_MODEL", "TRUTH_TABLES"]

_INPUTS_2 = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_BINARY = ["0", "1"]

#: The four outputs of each two-input gate for inputs (0,0), (0,1), (1,0), (1,1)
#: (Deep Learning from Scratch, ch. 2: XOR = AND(NAND, OR)).
TRUTH_TABLES: dict[str, tuple[int, int, int, int]] = {
    "xor": (0, 1, 1, 0),
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
}


def _truth_table_builder(gate: str) -> Any:
    labels = np.array(TRUTH_TABLES[gate], dtype=np.int64)

    def build(*, seed: int, data_dir: Path) -> RawData:
        return RawData(_INPUTS_2.copy(), labels.copy(), class_names=_BINARY, meta={"gate": gate})

    build.__name__ = f"_{gate}"
    return build


for _gate in TRUTH_TABLES:
    register_dataset(
        _gate,
        task="classification",
        n_outputs=2,
        shape=(2,),
        description=f"{_gate.upper()} truth table: the 4 points of {{0,1}}^2 (train = val = all 4)",
        source="Deep Learning from Scratch, ch. 2 (ch02/xor_gate.py); Minsky & Papert (1969)",
        split_mode="train_is_val",
    )(_truth_table_builder(_gate))


@register_dataset(
    "noisy_xor",
    task="classification",
    n_outputs=2,
    shape=(2,),
    description="XOR corners plus Gaussian noise; label = XOR of the quadrant around (0.5, 0.5)",
    source="claims.md X1 (noisy XOR, n=400, sigma=0.1)",
)
def _noisy_xor(*, seed: int, data_dir: Path, n_samples: int = 400, noise: float = 0.1) -> RawData:
    n = check_int("noisy_xor", "n_samples", n_samples, minimum=4)
    sigma = check_float("noisy_xor", "noise", noise)
    rng = np.random.default_rng(seed)
    corners = _INPUTS_2[rng.integers(0, 4, size=n)]
    X = corners + sigma * rng.standard_normal((n, 2))
    # labels from the quadrant the point fell in, so a point pushed across the boundary by the
    # noise is labelled where it lies: the classes stay separable by the XOR rule exactly
    y = ((X[:, 0] > 0.5) ^ (X[:, 1] > 0.5)).astype(np.int64)
    return RawData(X, y, class_names=_BINARY)


@register_dataset(
    "moons",
    task="classification",
    n_outputs=2,
    shape=(2,),
    description="two interleaving half circles (scikit-learn make_moons)",
    source="scikit-learn sklearn.datasets.make_moons",
)
def _moons(*, seed: int, data_dir: Path, n_samples: int = 500, noise: float = 0.1) -> RawData:
    n = check_int("moons", "n_samples", n_samples, minimum=4)
    sigma = check_float("moons", "noise", noise)
    from sklearn.datasets import make_moons  # lazy: sklearn costs ~1 s to import

    X, y = make_moons(n_samples=n, noise=sigma, random_state=seed)
    return RawData(X, y.astype(np.int64), class_names=_BINARY)


@register_dataset(
    "circles",
    task="classification",
    n_outputs=2,
    shape=(2,),
    description="a small circle inside a large one (scikit-learn make_circles)",
    source="scikit-learn sklearn.datasets.make_circles",
)
def _circles(
    *, seed: int, data_dir: Path, n_samples: int = 500, noise: float = 0.05, factor: float = 0.5
) -> RawData:
    n = check_int("circles", "n_samples", n_samples, minimum=4)
    sigma = check_float("circles", "noise", noise)
    f = check_float("circles", "factor", factor, minimum=0.0, maximum=0.999)
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=n, noise=sigma, factor=f, random_state=seed)
    return RawData(X, y.astype(np.int64), class_names=_BINARY)


@register_dataset(
    "spirals",
    task="classification",
    n_outputs=2,
    shape=(2,),
    description="interleaved spiral arms, one per class (radius 0.1 to 1, `turns` turns)",
    source="Lang & Witbrock, Learning to tell two spirals apart (1988)",
)
def _spirals(
    *,
    seed: int,
    data_dir: Path,
    n_samples: int = 500,
    noise: float = 0.05,
    n_classes: int = 2,
    turns: float = 1.0,
) -> RawData:
    n = check_int("spirals", "n_samples", n_samples, minimum=4)
    sigma = check_float("spirals", "noise", noise)
    k = check_int("spirals", "n_classes", n_classes, minimum=2)
    rounds = check_float("spirals", "turns", turns, minimum=0.1, maximum=10.0)
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % k
    t = rng.uniform(0.0, 1.0, size=n)  # position along the arm
    radius = 0.1 + 0.9 * t
    angle = 2.0 * math.pi * (rounds * t + y / k)  # arms rotated by 1/k of a turn
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    X += sigma * rng.standard_normal(X.shape)
    return RawData(X, y, class_names=[str(c) for c in range(k)])


@register_dataset(
    "sin",
    task="regression",
    n_outputs=1,
    shape=(1,),
    description="y = sin(x) on an even grid of [-pi, pi] (256 points): universal approximation",
    source="Cybenko (1989), Hornik (1991): universal approximation; seeds S0/S2",
)
def _sin(*, seed: int, data_dir: Path, n_samples: int = 256, noise: float = 0.0) -> RawData:
    n = check_int("sin", "n_samples", n_samples, minimum=4)
    sigma = check_float("sin", "noise", noise)
    x = np.linspace(-math.pi, math.pi, n)[:, None]
    y = np.sin(x)
    if sigma > 0:
        y = y + sigma * np.random.default_rng(seed).standard_normal(y.shape)
    return RawData(x, y)


@register_dataset(
    "gaussian",
    task="classification",
    n_outputs=10,
    shape=(100,),
    description="1000x100 N(0,1) inputs with uniform dummy labels: the activation-histogram probe "
    "(train = val = all samples)",
    source="Deep Learning from Scratch, ch. 6 (weight_init_activation_histogram.py)",
    split_mode="train_is_val",
)
def _gaussian(
    *,
    seed: int,
    data_dir: Path,
    n_samples: int = 1000,
    n_features: int = 100,
    n_classes: int = 10,
) -> RawData:
    n = check_int("gaussian", "n_samples", n_samples, minimum=1)
    d = check_int("gaussian", "n_features", n_features, minimum=1)
    k = check_int("gaussian", "n_classes", n_classes, minimum=2)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, size=n).astype(np.int64)
    return RawData(X, y, class_names=[str(c) for c in range(k)], meta={"labels": "dummy"})


#: The generative model of ``house_prices`` (prices in units of 100k), every constant named:
#:   area_m2 ~ U(area_low, area_high); bedrooms = clip(round(area_m2 / m2_per_bedroom
#:   + N(0, bedroom_sd)), 1, max_bedrooms); age_years ~ U(0, max_age);
#:   distance_km ~ Gamma(distance_shape, distance_scale_km);
#:   price = max(0, per_m2 (area_m2 - area_offset) + per_bedroom bedrooms + per_year age_years
#:               + exp(-distance_km / distance_decay_km) + N(0, noise)).
#: The max(0, .) is seed 000's picture: price against area is a ReLU (never negative).
HOUSE_PRICE_MODEL: dict[str, float] = {
    "area_low": 30.0,
    "area_high": 250.0,
    "m2_per_bedroom": 45.0,
    "bedroom_sd": 0.6,
    "max_bedrooms": 6.0,
    "max_age": 60.0,
    "distance_shape": 2.0,
    "distance_scale_km": 4.0,
    "area_offset": 40.0,
    "per_m2": 0.02,
    "per_bedroom": 0.15,
    "per_year": -0.01,
    "distance_decay_km": 8.0,
}


@register_dataset(
    "house_prices",
    task="regression",
    n_outputs=1,
    shape=(4,),
    description="synthetic house prices (100k) from area, bedrooms, age, distance; "
    "area_only: true gives seed 000's one-input example",
    source="seed 000 (Andrew Ng's housing-price example); generative model in HOUSE_PRICE_MODEL",
)
def _house_prices(
    *, seed: int, data_dir: Path, n_samples: int = 500, noise: float = 0.2, area_only: bool = False
) -> RawData:
    n = check_int("house_prices", "n_samples", n_samples, minimum=4)
    sigma = check_float("house_prices", "noise", noise)
    only_area = check_bool("house_prices", "area_only", area_only)
    m = HOUSE_PRICE_MODEL
    rng = np.random.default_rng(seed)
    area = rng.uniform(m["area_low"], m["area_high"], size=n)
    bedrooms = np.round(area / m["m2_per_bedroom"] + rng.normal(0.0, m["bedroom_sd"], size=n))
    bedrooms = np.clip(bedrooms, 1.0, m["max_bedrooms"])
    age = rng.uniform(0.0, m["max_age"], size=n)
    distance = rng.gamma(m["distance_shape"], m["distance_scale_km"], size=n)
    price = (
        m["per_m2"] * (area - m["area_offset"])
        + m["per_bedroom"] * bedrooms
        + m["per_year"] * age
        + np.exp(-distance / m["distance_decay_km"])
        + sigma * rng.standard_normal(n)
    )
    price = np.maximum(price, 0.0)
    X = area[:, None] if only_area else np.stack([area, bedrooms, age, distance], axis=1)
    features = ["area_m2"] if only_area else ["area_m2", "bedrooms", "age_years", "distance_km"]
    return RawData(X, price[:, None], meta={"features": features, "target": "price_100k"})
