"""Chinese working days (工作日): public holidays and make-up workdays (调休).

`WorkCalendar` answers workday questions from the maintained `chinese_calendar` library. For a
year the library has no data for, it falls back to weekends-only and records one warning per
year in `WorkCalendar.warnings` (and logs it), so callers can show it to a supervisor.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from threading import Lock

import chinese_calendar

__all__ = ["WorkCalendar", "default_calendar"]

_log = logging.getLogger(__name__)
_ONE_DAY = timedelta(days=1)


class WorkCalendar:
    """Working-day arithmetic over the Chinese public-holiday calendar.

    `extra_holidays` / `extra_workdays` override the library for single dates (for an
    organisation's own closures). Instances cache per-date answers and are safe to share.
    """

    def __init__(
        self,
        *,
        extra_holidays: frozenset[date] = frozenset(),
        extra_workdays: frozenset[date] = frozenset(),
    ) -> None:
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        self._cache: dict[date, bool] = {}
        self._covered: dict[int, bool] = {}
        self._lock = Lock()
        self.warnings: list[str] = []

    def covers(self, year: int) -> bool:
        """True if the holiday library has data for `year`; False means weekends-only there.

        The first time an uncovered year is seen, a Chinese warning is appended to `warnings`.
        """
        known = self._covered.get(year)
        if known is not None:
            return known
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
            covered = True
        except NotImplementedError:
            covered = False
        with self._lock:
            if year not in self._covered:
                self._covered[year] = covered
                if not covered:
                    message = (
                        f"节假日日历库没有{year}年的数据，{year}年的工作日按仅周末休息计算"
                        "（未计入法定节假日和调休）"
                    )
                    self.warnings.append(message)
                    _log.warning(message)
        return covered

    def is_workday(self, day: date) -> bool:
        """True if `day` is a working day (调休 Saturdays included, public holidays excluded)."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        if day in self._extra_workdays:
            result = True
        elif day in self._extra_holidays:
            result = False
        elif self.covers(day.year):
            result = bool(chinese_calendar.is_workday(day))
        else:
            result = day.weekday() < 5
        self._cache[day] = result
        return result

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
        """
        if n == 0:
            return self.next_workday_on_or_after(day)
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_workday(day):
                remaining -= 1
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
    """The process-wide shared `WorkCalendar` (no overrides), created on first use."""
    global _default
    if _default is None:
        _default = WorkCalendar()
    return _default
