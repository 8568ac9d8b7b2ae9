"""Phase names and date ranges, with and without dashes, 旬 spans and deadlines."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from models.plan_reader.phases import default_phases, phase_key, point_dates, read_phase


@pytest.mark.parametrize(
    ("heading", "key", "start", "end", "dates"),
    [
        ("发动部署阶段(3月下旬5月上旬)", "mobilize", "3月下旬", "5月上旬", ((3, 21), (5, 10))),
        ("组织实施阶段（3月下旬—5月上旬）", "implement", "3月下旬", "5月上旬", ((3, 21), (5, 10))),
        ("总结验收阶段(12月下旬)", "review", "12月下旬", "12月下旬", ((12, 21), (12, 31))),
        ("动员部署阶段（2030年5月至6月）", "mobilize", "2030年5月", "6月", ((5, 1), (6, 30))),
        ("落实阶段：4月中旬-11月", "implement", "4月中旬", "11月", ((4, 11), (11, 30))),
    ],
)
def test_phase_headings(
    heading: str, key: str, start: str, end: str, dates: tuple[tuple[int, int], ...]
) -> None:
    phase = read_phase(heading, year=2030)
    assert phase is not None
    assert (phase.key, phase.start, phase.end) == (key, start, end)
    assert (phase.start_date, phase.end_date) == (date(2030, *dates[0]), date(2030, *dates[1]))


def test_deadline_starts_after_previous_phase() -> None:
    phase = read_phase("总结验收阶段：6月底前", year=2030, previous_end=date(2030, 3, 31))
    assert phase is not None
    assert (phase.start, phase.end) == ("", "6月底前")
    assert (phase.start_date, phase.end_date) == (date(2030, 4, 1), date(2030, 6, 30))


def test_xun_spans_and_month_ends() -> None:
    assert point_dates("2月下旬", year=2028) == (date(2028, 2, 21), date(2028, 2, 29))
    assert point_dates("2月下旬", year=2030) == (date(2030, 2, 21), date(2030, 2, 28))
    assert point_dates("7月中旬", year=2030) == (date(2030, 7, 11), date(2030, 7, 20))
    assert point_dates("7月5日", year=2030) == (date(2030, 7, 5), date(2030, 7, 5))


def test_invalid_dates_are_not_phases() -> None:
    assert read_phase("实施阶段(13月上旬)", year=2030) is None
    assert read_phase("实施阶段(5月下旬3月上旬)", year=2030) is None


@pytest.mark.parametrize("name", ["加强领导,落实责任", "2030年3月召开会议"])
def test_headings_without_phase_name_are_not_phases(name: str) -> None:
    assert read_phase(name, year=2030) is None


def test_keys_from_names() -> None:
    assert phase_key("动员部署") == "mobilize"
    assert phase_key("组织实施") == "implement"
    assert phase_key("落实达标、创标阶段") == "implement"
    assert phase_key("总结验收") == "review"
    assert phase_key("其他") is None


def test_default_phases_cover_the_year() -> None:
    phases = default_phases(2030)
    assert phases[0].start_date == date(2030, 1, 1)
    assert phases[-1].end_date == date(2030, 12, 31)
    for earlier, later in itertools.pairwise(phases):
        assert (later.start_date - earlier.end_date).days == 1
