"""Phase names and date ranges -> `ParsedPhase` (key, name, start, end, dates).

`3月下旬5月上旬`, `3月下旬—5月上旬`, `2021年5月至6月`, `6月底前`; 上旬 = 1–10, 中旬 = 11–20,
下旬 = 21–end of month. Keys come from the name: mobilize (动员部署), implement (组织实施,
落实), review (总结验收).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from models.plan_schema import ParsedPhase

_POINT = r"(?:(?:\d{4}|次|翌|明)年)?\d{1,2}月(?:上旬|中旬|下旬|初|中|底|末|份|\d{1,2}[日号號])?"
_RANGE = re.compile(
    rf"(?P<start>{_POINT})\s*(?:[—–\-－~～至到]+|-{{1,2}})?\s*(?P<end>{_POINT})?(?P<before>以?前)?"
)
_POINT_PARTS = re.compile(
    r"(?:(?P<year>\d{4}|次|翌|明)年)?(?P<month>\d{1,2})月(?P<part>上旬|中旬|下旬|初|中|底|末|份|"
    r"(?P<day>\d{1,2})[日号號])?"
)
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("review", ("总结", "總結", "验收", "驗收", "评估", "評估", "考核", "巩固", "鞏固")),
    ("mobilize", ("动员", "動員", "发动", "發動", "部署", "启动", "啟動", "准备", "準備")),
    ("implement", ("实施", "實施", "落实", "落實", "推进", "推進", "达标", "達標", "执行", "整改")),
)
_NAME_HINT = re.compile(r"阶段|階段|步骤|步驟")

DEFAULT_PHASES: tuple[tuple[str, str, int, int], ...] = (
    ("mobilize", "动员部署阶段", 1, 2),
    ("implement", "组织实施阶段", 3, 11),
    ("review", "总结验收阶段", 12, 12),
)


def phase_key(name: str) -> str | None:
    """`mobilize`, `implement` or `review` from the words of a phase name, else None."""
    for key, words in _KEYWORDS:
        if any(word in name for word in words):
            return key
    return None


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def point_dates(text: str, *, year: int) -> tuple[date, date]:
    """First and last day meant by one point (`3月下旬`, `2021年5月`, `6月底`, `5月10日`).

    Raises ValueError for a month or day that does not exist.
    """
    match = _POINT_PARTS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"无法识别的日期：{text}")
    given = match.group("year")
    if given is None:
        use_year = year
    elif given.isdigit():
        use_year = int(given)
    else:
        use_year = year + 1
    month = int(match.group("month"))
    if not 1 <= month <= 12:
        raise ValueError(f"月份无效：{text}")
    last = _last_day(use_year, month)
    part = match.group("part") or ""
    if match.group("day"):
        day = int(match.group("day"))
        if not 1 <= day <= last:
            raise ValueError(f"日期无效：{text}")
        return date(use_year, month, day), date(use_year, month, day)
    spans = {"上旬": (1, 10), "初": (1, 10), "中旬": (11, 20), "中": (11, 20)}
    spans.update({"下旬": (21, last), "底": (21, last), "末": (21, last)})
    first, final = spans.get(part, (1, last))
    return date(use_year, month, first), date(use_year, month, final)


def find_range(text: str) -> re.Match[str] | None:
    """The first date range (or single point / deadline) in `text`, else None."""
    return _RANGE.search(text)


def read_phase(heading: str, *, year: int, previous_end: date | None = None) -> ParsedPhase | None:
    """A phase from a heading such as `发动部署阶段(3月下旬5月上旬)`, else None.

    A heading is a phase when it has a date range and its name says 阶段 or a phase keyword.
    A deadline (`6月底前`) starts the day after `previous_end`, or on 1 January.
    """
    found = find_range(heading)
    if found is None:
        return None
    name = heading[: found.start()].strip(" (（:：,，、—-")
    rest = heading[found.end() :].strip(" )）。")
    if not name and rest:
        name = rest.split("。")[0].strip(" :：,，")
    key = phase_key(name)
    if key is None or not name or len(name) > 30:
        return None
    if not _NAME_HINT.search(name) and not re.search(r"[(（:：]", heading[: found.start() + 1]):
        return None
    start_text = found.group("start")
    end_text = found.group("end") or ""
    try:
        if found.group("before") and not end_text:
            end_date = point_dates(start_text, year=year)[1]
            start_date = previous_end + timedelta(days=1) if previous_end else date(year, 1, 1)
            start_text, end_text = "", start_text + found.group("before")
        else:
            start_date = point_dates(start_text, year=year)[0]
            end_year = start_date.year if "年" in start_text else year
            end_date = point_dates(end_text or start_text, year=end_year)[1]
            end_text = end_text or start_text
    except ValueError:
        return None
    if end_date < start_date:
        return None
    return ParsedPhase(
        key=key,
        name=name,
        start=start_text,
        end=end_text,
        start_date=start_date,
        end_date=end_date,
    )


def default_phases(year: int) -> list[ParsedPhase]:
    """The default phases for a plan that states none: Jan–Feb, Mar–Nov, December."""
    return [
        ParsedPhase(
            key=key,
            name=name,
            start=f"{first}月",
            end=f"{last}月",
            start_date=date(year, first, 1),
            end_date=date(year, last, _last_day(year, last)),
        )
        for key, name, first, last in DEFAULT_PHASES
    ]
