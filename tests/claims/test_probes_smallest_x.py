"""Statistic ``smallest_x`` (X3's empirical part): the smallest x reaching a target, the measure
reported there, the ratio between two sides, and NaN (inconclusive) when no x reaches it."""

from __future__ import annotations

import math

import pytest

from tests.claims.test_new_capabilities import point, table

# accuracy vs width: the deep arm reaches 0.5 from width 16 on, the shallow arm from 64 on
ACC = {
    ("deep", 8): [0.3, 0.35, 0.32],
    ("deep", 16): [0.55, 0.6, 0.52],
    ("deep", 64): [0.7, 0.72, 0.69],
    ("shallow", 8): [0.2, 0.25, 0.22],
    ("shallow", 16): [0.4, 0.45, 0.42],
    ("shallow", 64): [0.6, 0.61, 0.58],
}
PARAMS = {("deep", 8): 300, ("deep", 16): 900, ("deep", 64): 9000,
          ("shallow", 8): 400, ("shallow", 16): 800, ("shallow", 64): 3200}  # fmt: skip
BASE = {"name": "smallest_x", "measure": "m", "x": "x", "condition": {"op": ">=", "value": 0.5}}


def _data():
    return table(ACC, {k: [PARAMS[k]] * 3 for k in ACC})


def test_smallest_x_per_side_and_the_measure_reported_there():
    data = _data()
    assert point({**BASE, "where": {"arm": "deep"}}, data) == 16
    assert point({**BASE, "where": {"arm": "shallow"}}, data) == 64
    assert point({**BASE, "report": "d", "where": {"arm": "deep"}}, data) == 900
    assert point({**BASE, "report": "d", "where": {"arm": "shallow"}}, data) == 3200


def test_smallest_x_ratio_between_sides_and_no_x_is_undefined():
    data = _data()
    sides = {"a": {"arm": "deep"}, "b": {"arm": "shallow"}, "report": "d"}
    assert point({**BASE, **sides}, data) == pytest.approx(900 / 3200)
    assert point({**BASE, **sides, "compare": "diff"}, data) == pytest.approx(900 - 3200)
    never = {**BASE, "condition": {"op": ">=", "value": 0.99}, "where": {"arm": "deep"}}
    assert math.isnan(point(never, data))
    assert point({**never, "if_none": 0}, data) == 0.0


def test_smallest_x_is_not_largest_x():
    data = _data()
    assert point({**BASE, "name": "largest_x", "where": {"arm": "deep"}}, data) == 64
