"""Target attainment and pace against a straight line to the year end, as tables."""

from __future__ import annotations

from datetime import date

import pytest

from models.attainment import (
    assess_target,
    attainment_percent,
    elapsed_share,
    expected_value,
    pace_status,
    target_met,
)

D = date
JAN1 = D(2021, 1, 1)


@pytest.mark.parametrize(
    ("reported", "comparator", "target", "met"),
    [
        (200, "ge", 200, True),  # 不少于200场次
        (199, "ge", 200, False),
        (5, "gt", 5, False),  # 超过5家
        (6, "gt", 5, True),
        (3, "le", 3, True),  # 不超过3个
        (4, "le", 3, False),
        (3, "lt", 3, False),
        (3, "eq", 3, True),
        (4, "eq", 3, True),  # a count target is met on reaching it
        (180, "approx", 200, True),  # 约200: 90 % is enough
        (179, "approx", 200, False),
    ],
)
def test_target_met(reported: float, comparator: str, target: float, met: bool) -> None:
    assert target_met(reported, comparator, target) is met


@pytest.mark.parametrize(
    ("reported", "comparator", "target", "percent"),
    [
        (120, "ge", 200, 60.0),
        (250, "ge", 200, 125.0),  # uncapped
        (2, "le", 3, 100.0),
        (6, "le", 3, 50.0),  # a broken cap: target / reported
        (None, "ge", 200, None),
        (5, "ge", 0, None),
    ],
)
def test_attainment_percent(
    reported: float | None, comparator: str, target: float, percent: float | None
) -> None:
    assert attainment_percent(reported, comparator, target) == percent


def test_expected_value_at_end_of_q3_is_about_three_quarters() -> None:
    # 273 of 365 days have passed on 2021-09-30.
    assert elapsed_share(start=JAN1, end=D(2021, 12, 31), as_of=D(2021, 9, 30)) == 273 / 365
    assert expected_value(200, start=JAN1, as_of=D(2021, 9, 30)) == pytest.approx(149.6, abs=0.1)
    assert expected_value(200, start=JAN1, as_of=D(2020, 12, 1)) == 0
    assert expected_value(200, start=JAN1, as_of=D(2022, 3, 1)) == 200


@pytest.mark.parametrize(
    ("reported", "comparator", "target", "as_of", "pace"),
    [
        (120, "ge", 200, D(2021, 9, 30), "behind"),  # expected ~150; 120/150 = 0.8
        (150, "ge", 200, D(2021, 9, 30), "on_pace"),
        (100, "ge", 200, D(2021, 9, 30), "far_behind"),  # 100/150 < 0.75
        (200, "ge", 200, D(2021, 9, 30), "met"),
        (10, "ge", 200, D(2021, 1, 10), "on_pace"),  # ~5.5 expected: ahead of the line
        (None, "ge", 200, D(2021, 9, 30), "unknown"),
        (2, "le", 3, D(2021, 9, 30), "on_pace"),  # within a cap
        (4, "le", 3, D(2021, 9, 30), "far_behind"),  # a broken cap
        (190, "ge", 200, D(2021, 12, 31), "behind"),  # year over, not met: 0.95
        (5, "gt", 5, D(2021, 12, 31), "behind"),  # 超过5家 needs 6
    ],
)
def test_pace_status(
    reported: float | None, comparator: str, target: float, as_of: date, pace: str
) -> None:
    assert pace_status(reported, comparator, target, start=JAN1, as_of=as_of) == pace


def test_pace_uses_the_plan_start() -> None:
    # A plan supervised from Apr 1: at Sep 30, 183 of 275 days passed -> expected ~133.
    status = pace_status(120, "ge", 200, start=D(2021, 4, 1), as_of=D(2021, 9, 30))
    assert status == "behind"
    assert pace_status(135, "ge", 200, start=D(2021, 4, 1), as_of=D(2021, 9, 30)) == "on_pace"


def test_assess_target_bundles_the_figures() -> None:
    figures = assess_target(120, "ge", 200, start=JAN1, as_of=D(2021, 9, 30))
    assert figures.percent == 60.0
    assert figures.expected == pytest.approx(149.6, abs=0.1)
    assert figures.pace == "behind"


def test_unknown_comparator_is_refused() -> None:
    with pytest.raises(ValueError, match="comparator"):
        target_met(1, "about", 2)
