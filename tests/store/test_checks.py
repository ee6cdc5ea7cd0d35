"""The store's own input checks: remembered verdicts never let a bad point through."""

from __future__ import annotations

import math

import pytest

from sitewatch.store.base import InvalidPoint
from sitewatch.store.checks import check_batch, sample_problem, store_checker

from .conftest import T0, sample


def test_a_good_tag_value_seen_before_does_not_excuse_a_bad_one() -> None:
    tag_problem = store_checker().tag_problem
    assert tag_problem("device", "C1-EL001") is None
    assert tag_problem("device", "C1-EL001") is None  # remembered
    for bad, words in [
        ("C1\nEL", "control character"),
        ("", "empty"),
        ("a\\ b", "backslash"),
        ("x" * 257, "longer"),
        ("C1-EL001\n", "control character"),
        ("C1-EL\ud800", "lone surrogate"),
    ]:
        problem = tag_problem("device", bad)
        assert problem is not None and words in problem
        assert tag_problem("device", bad) == problem  # refused again, same reason


def test_metric_names_checked_once_refused_always() -> None:
    metric_problem = store_checker().metric_problem
    assert metric_problem("motor_current") is None
    assert metric_problem("motor_current") is None
    for bad in ("time", "compound", "9lives", "a-b", "x" * 65, "motor_current\n"):
        assert metric_problem(bad) == f"metric name {bad!r} is not allowed"
        assert metric_problem(bad) == f"metric name {bad!r} is not allowed"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1.5, True),
        (3, True),
        (-0.0, True),
        (math.inf, False),
        (-math.inf, False),
        (math.nan, False),
        (True, False),
    ],
)
def test_values_must_be_finite_numbers(value: float, ok: bool) -> None:
    checker = store_checker()
    item = sample("C1-EL001", T0, {"motor_current": 1.0})
    assert sample_problem(item, checker) is None  # the device, compound and metric are now remembered
    item = sample("C1-EL001", T0, {"motor_current": value})
    if ok:
        assert sample_problem(item, checker) is None
    else:
        assert sample_problem(item, checker) == f"motor_current={value!r} is not a finite number"
        with pytest.raises(InvalidPoint) as raised:
            check_batch([sample("C1-EL001", T0, {"motor_current": 1.0}), item], [], checker=checker)
        assert raised.value.index == 1


def test_extra_tags_still_checked_after_the_device_is_known() -> None:
    checker = store_checker()
    assert sample_problem(sample("C1-EL001", T0, {"motor_current": 1.0}), checker) is None
    bad = sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"colour": "red"})
    problem = sample_problem(bad, checker)
    assert problem is not None and "'colour' is not one of" in problem
    bad_value = sample("C1-EL001", T0, {"motor_current": 1.0}, tags={"building": "B\t1"})
    problem = sample_problem(bad_value, checker)
    assert problem is not None and "control character" in problem


def test_each_store_remembers_for_itself() -> None:
    # no module-level memory: a checker's verdicts live in the checker (one per store or validator)
    one, other = store_checker(), store_checker()
    assert one.tag_problem("device", "C1-EL001") is None
    assert "C1-EL001" in one.tags and "C1-EL001" not in other.tags
