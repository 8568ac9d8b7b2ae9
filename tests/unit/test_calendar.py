"""Working-day arithmetic on real Chinese calendar dates (2021 国庆, 中秋 and 调休)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import WorkCalendar

D = date


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar()


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        (D(2021, 9, 17), True),  # Friday before 中秋
        (D(2021, 9, 18), True),  # Saturday, 调休 make-up workday
        (D(2021, 9, 19), False),  # 中秋 holiday (Sunday)
        (D(2021, 9, 20), False),  # 中秋 holiday (Monday)
        (D(2021, 9, 21), False),  # 中秋 holiday (Tuesday)
        (D(2021, 9, 22), True),
        (D(2021, 9, 26), True),  # Sunday, 调休 make-up workday for 国庆
        (D(2021, 10, 1), False),
        (D(2021, 10, 4), False),  # Monday inside 国庆
        (D(2021, 10, 7), False),
        (D(2021, 10, 8), True),  # Friday after 国庆
        (D(2021, 10, 9), True),  # Saturday, 调休 make-up workday
        (D(2021, 10, 10), False),  # ordinary Sunday
        (D(2021, 10, 11), True),
    ],
)
def test_is_workday(cal: WorkCalendar, day: date, workday: bool) -> None:
    assert cal.is_workday(day) is workday


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (D(2021, 9, 30), 1, D(2021, 10, 8)),  # jumps the whole 国庆 week
        (D(2021, 9, 30), 2, D(2021, 10, 9)),  # the 调休 Saturday counts
        (D(2021, 9, 30), 3, D(2021, 10, 11)),
        (D(2021, 10, 8), -1, D(2021, 9, 30)),
        (D(2021, 10, 15), -5, D(2021, 10, 9)),  # 5 workdays before: 14,13,12,11,9
        (D(2021, 9, 17), 1, D(2021, 9, 18)),  # Friday -> 调休 Saturday
        (D(2021, 9, 18), 1, D(2021, 9, 22)),  # over 中秋
        (D(2021, 9, 22), 0, D(2021, 9, 22)),
        (D(2021, 10, 2), 0, D(2021, 10, 8)),  # n=0 on a holiday -> next workday
        (D(2021, 12, 31), 1, D(2022, 1, 4)),  # 元旦 2022: Jan 1-3 off
    ],
)
def test_add_workdays(cal: WorkCalendar, day: date, n: int, expected: date) -> None:
    assert cal.add_workdays(day, n) == expected


def test_next_and_previous_workday(cal: WorkCalendar) -> None:
    assert cal.next_workday_on_or_after(D(2021, 10, 1)) == D(2021, 10, 8)
    assert cal.next_workday_on_or_after(D(2021, 10, 8)) == D(2021, 10, 8)
    assert cal.previous_workday_on_or_before(D(2021, 10, 7)) == D(2021, 9, 30)
    assert cal.previous_workday_on_or_before(D(2021, 9, 21)) == D(2021, 9, 18)


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (D(2021, 9, 30), D(2021, 10, 8), 1),
        (D(2021, 9, 30), D(2021, 10, 11), 3),
        (D(2021, 10, 11), D(2021, 9, 30), -3),
        (D(2021, 10, 1), D(2021, 10, 7), 0),
        (D(2021, 5, 5), D(2021, 5, 5), 0),
        (D(2021, 1, 1), D(2021, 12, 31), 250),  # 2021 had 250 working days after New Year
    ],
)
def test_workdays_between(cal: WorkCalendar, start: date, end: date, count: int) -> None:
    assert cal.workdays_between(start, end) == count


def test_workdays_between_inverts_add_workdays(cal: WorkCalendar) -> None:
    start = D(2021, 9, 15)
    for n in range(-12, 13):
        assert cal.workdays_between(start, cal.add_workdays(start, n)) == n


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2021, 9, D(2021, 9, 30)),
        (2021, 10, D(2021, 10, 29)),  # Oct 30/31 weekend
        (2021, 1, D(2021, 1, 29)),
        (2021, 4, D(2021, 4, 30)),  # Friday; May Day starts May 1
        (2021, 7, D(2021, 7, 30)),
    ],
)
def test_last_workday_of_month(cal: WorkCalendar, year: int, month: int, expected: date) -> None:
    assert cal.last_workday_of_month(year, month) == expected


def test_last_workday_of_quarter(cal: WorkCalendar) -> None:
    assert cal.last_workday_of_quarter(2021, 3) == D(2021, 9, 30)
    assert cal.last_workday_of_quarter(2021, 4) == D(2021, 12, 31)
    with pytest.raises(ValueError, match="quarter"):
        cal.last_workday_of_quarter(2021, 5)


def test_uncovered_year_falls_back_to_weekends_and_warns_once(cal: WorkCalendar) -> None:
    assert cal.covers(2021)
    assert not cal.warnings
    assert not cal.covers(2099)
    # 2099-10-01 is a Thursday: a workday without holiday data.
    assert cal.is_workday(D(2099, 10, 1))
    assert not cal.is_workday(D(2099, 10, 3))  # Saturday
    assert cal.add_workdays(D(2099, 10, 2), 1) == D(2099, 10, 5)
    assert len(cal.warnings) == 1
    assert "2099" in cal.warnings[0]
    assert "仅周末" in cal.warnings[0]


def test_overrides_beat_the_library() -> None:
    cal = WorkCalendar(
        extra_holidays=frozenset({D(2021, 10, 8)}), extra_workdays=frozenset({D(2021, 10, 10)})
    )
    assert not cal.is_workday(D(2021, 10, 8))
    assert cal.is_workday(D(2021, 10, 10))
    assert cal.add_workdays(D(2021, 9, 30), 1) == D(2021, 10, 9)


SHARED = WorkCalendar()


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=D(2004, 2, 1), max_value=D(2026, 11, 30)),
    n=st.integers(min_value=-40, max_value=40).filter(bool),
)
def test_add_workdays_lands_on_a_workday_and_inverts(day: date, n: int) -> None:
    moved = SHARED.add_workdays(day, n)
    assert SHARED.is_workday(moved)
    assert (moved > day) is (n > 0)
    assert SHARED.workdays_between(day, moved) == n
