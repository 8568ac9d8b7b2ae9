"""Chinese working days (工作日): public holidays and make-up workdays (调休).

`WorkCalendar` answers workday questions from the maintained `chinese_calendar` library and
from the years a supervisor imported (`CalendarYear`, stored in the database by
`duban calendar import`): an imported year's holidays and 调休 workdays replace the library's
for that year, and its organisation closures (单位休息日) are added on top of either. For a
year with neither, it falls back to weekends-only and records one warning per year in
`WorkCalendar.warnings` (and logs it, or hands it to `on_warning`), so callers can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from threading import Lock

import chinese_calendar

__all__ = [
    "CalendarSource",
    "CalendarYear",
    "DayKind",
    "SpecialDay",
    "WorkCalendar",
    "default_calendar",
    "missing_year_warning",
]

_log = logging.getLogger(__name__)
_ONE_DAY = timedelta(days=1)
_LIBRARY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


class DayKind(StrEnum):
    """What a listed day is: a public holiday, a 调休 make-up workday or an own closure."""

    holiday = "holiday"
    workday = "workday"
    closure = "closure"

    @property
    def label(self) -> str:
        """The Chinese label shown to supervisors."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    DayKind.holiday: "法定节假日",
    DayKind.workday: "调休上班",
    DayKind.closure: "单位休息日",
}


class CalendarSource(StrEnum):
    """Where a year's holidays come from."""

    imported = "imported"
    library = "library"
    weekends_only = "weekends_only"

    @property
    def label(self) -> str:
        """The Chinese label shown to supervisors."""
        return _SOURCE_LABELS[self]


_SOURCE_LABELS = {
    CalendarSource.imported: "已导入的工作日历",
    CalendarSource.library: "节假日日历库",
    CalendarSource.weekends_only: "无节假日数据（仅按周末计算）",
}


@dataclass(frozen=True)
class CalendarYear:
    """One year's imported days, each mapped to its name (`春节`, `国庆节调休`, …).

    `national` is True when the year's public holidays / 调休 were imported: they then replace
    the library's for the year. `closures` alone leave the library's national days in force.
    """

    year: int
    holidays: Mapping[date, str] = field(default_factory=dict)
    workdays: Mapping[date, str] = field(default_factory=dict)
    closures: Mapping[date, str] = field(default_factory=dict)

    @property
    def national(self) -> bool:
        """True if this year's public holidays or 调休 workdays were imported."""
        return bool(self.holidays or self.workdays)


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """A day that differs from the plain Monday-Friday week, or a named holiday day."""

    day: date
    kind: DayKind
    name: str


def missing_year_warning(year: int) -> str:
    """The one Chinese warning for a year without holiday data, with what to do."""
    return (
        f"节假日日历库没有{year}年的数据，也未导入{year}年的工作日历，{year}年的工作日按仅周末"
        f"休息计算（未计入法定节假日和调休）。请按国务院办公厅通知填写日历文件后运行："
        f"duban calendar import 文件（示例见 examples/calendar-2027.example.yaml）"
    )


class WorkCalendar:
    """Working-day arithmetic over the Chinese public-holiday calendar.

    `years` are the imported years (see `CalendarYear`); `extra_holidays` / `extra_workdays`
    override everything for single dates. `on_warning` receives each missing-year warning
    (default: this module's logger). Instances cache per-date answers and are safe to share.
    """

    def __init__(
        self,
        *,
        years: Mapping[int, CalendarYear] | None = None,
        extra_holidays: frozenset[date] = frozenset(),
        extra_workdays: frozenset[date] = frozenset(),
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self._years = dict(years or {})
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        self._on_warning = on_warning or _log.warning
        self._cache: dict[date, bool] = {}
        self._covered: dict[int, bool] = {}
        self._shifted: dict[tuple[date, int], date] = {}
        self._lock = Lock()
        self.warnings: list[str] = []

    @property
    def years(self) -> Mapping[int, CalendarYear]:
        """The imported years this calendar was built with."""
        return self._years

    def source(self, year: int) -> CalendarSource:
        """Where `year`'s public holidays come from (imported wins over the library); no warning."""
        stored = self._years.get(year)
        if stored is not None and stored.national:
            return CalendarSource.imported
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return CalendarSource.weekends_only
        return CalendarSource.library

    def covers(self, year: int) -> bool:
        """True if `year` has holiday data (imported or in the library); False means
        weekends-only there.

        The first time an uncovered year is seen, a Chinese warning (`missing_year_warning`)
        is appended to `warnings` and handed to `on_warning`, once per instance.
        """
        known = self._covered.get(year)
        if known is not None:
            return known
        covered = self.source(year) is not CalendarSource.weekends_only
        with self._lock:
            if year not in self._covered:
                self._covered[year] = covered
                if not covered:
                    message = missing_year_warning(year)
                    self.warnings.append(message)
                    self._on_warning(message)
        return covered

    def is_workday(self, day: date) -> bool:
        """True if `day` is a working day (调休 Saturdays included, public holidays and the
        organisation's closures excluded)."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        stored = self._years.get(day.year)
        if day in self._extra_workdays:
            result = True
        elif day in self._extra_holidays:
            result = False
        elif stored is not None and day in stored.closures:
            result = False
        elif stored is not None and stored.national:
            if day in stored.workdays:
                result = True
            elif day in stored.holidays:
                result = False
            else:
                result = day.weekday() < 5
        elif self.covers(day.year):
            result = bool(chinese_calendar.is_workday(day))
        else:
            result = day.weekday() < 5
        self._cache[day] = result
        return result

    def special_days(self, year: int) -> list[SpecialDay]:
        """`year`'s named holiday days, 调休 workdays and closures, in date order.

        Plain weekends are left out. Asks the library only when the year is not imported.
        """
        stored = self._years.get(year) or CalendarYear(year=year)
        found: dict[date, SpecialDay] = {}
        if stored.national:
            for day, name in stored.holidays.items():
                found[day] = SpecialDay(day, DayKind.holiday, name)
            for day, name in stored.workdays.items():
                found[day] = SpecialDay(day, DayKind.workday, name)
        elif self.source(year) is CalendarSource.library:
            day = date(year, 1, 1)
            while day.year == year:
                on_holiday, name = chinese_calendar.get_holiday_detail(day)
                label = _LIBRARY_NAMES.get(name or "", name or "")
                if name and on_holiday:
                    found[day] = SpecialDay(day, DayKind.holiday, label)
                elif name and day.weekday() >= 5:
                    found[day] = SpecialDay(day, DayKind.workday, f"{label}调休")
                day += _ONE_DAY
        for day, name in stored.closures.items():
            found[day] = SpecialDay(day, DayKind.closure, name)
        return [found[day] for day in sorted(found)]

    def next_workday_on_or_after(self, day: date) -> date:
        """`day` itself if it is a workday, else the first workday after it."""
        while not self.is_workday(day):
            day += _ONE_DAY
        return day

    def previous_workday_on_or_before(self, day: date) -> date:
        """`day` itself if it is a workday, else the last workday before it."""
        while not self.is_workday(day):
            day -= _ONE_DAY
        return day

    def add_workdays(self, day: date, n: int) -> date:
        """The `n`-th workday after `day` (before it if `n` < 0), not counting `day` itself.

        `n == 0` returns `day` if it is a workday, else the next workday on or after it.
        Answers are cached (a daily pass asks the same few due dates for every check-in).
        """
        known = self._shifted.get((day, n))
        if known is not None:
            return known
        start = day
        if n == 0:
            day = self.next_workday_on_or_after(day)
        else:
            step = _ONE_DAY if n > 0 else -_ONE_DAY
            remaining = abs(n)
            while remaining:
                day += step
                if self.is_workday(day):
                    remaining -= 1
        self._shifted[(start, n)] = day
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Signed count of workdays from `start` to `end`: those in (`start`, `end`] when
        `end` > `start`, minus those in [`end`, `start`) when `end` < `start`.

        For a workday `end`, `add_workdays(start, workdays_between(start, end)) == end`.
        """
        if end == start:
            return 0
        low, high = (start, end) if start < end else (end - _ONE_DAY, start - _ONE_DAY)
        count = 0
        day = low
        while day < high:
            day += _ONE_DAY
            if self.is_workday(day):
                count += 1
        return count if start < end else -count

    def last_workday_of_month(self, year: int, month: int) -> date:
        """The last working day of `month` in `year`."""
        first_of_next = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return self.previous_workday_on_or_before(first_of_next - _ONE_DAY)

    def last_workday_of_quarter(self, year: int, quarter: int) -> date:
        """The last working day of quarter 1-4 of `year`; ValueError for another quarter."""
        if quarter not in (1, 2, 3, 4):
            raise ValueError(f"quarter must be 1-4, got {quarter}")
        return self.last_workday_of_month(year, quarter * 3)


_default: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """The process-wide shared `WorkCalendar` of the library alone (no imported years),
    created on first use. Code that has a database uses `tasks.calendar_store` instead."""
    global _default
    if _default is None:
        _default = WorkCalendar()
    return _default
