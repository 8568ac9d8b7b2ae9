"""The one place dates and numbers are written for Chinese readers (emails, form, reports).

Pure functions, also registered as the shared Jinja2 filters (`notifications.rendering`):
`cn_day` `2021年9月30日`, `cn_date` `2021年9月30日（星期四）`, `cn_month_day` `9月30日`,
`cn_moment` `2021年9月30日 17:00` (Asia/Shanghai), `cn_number` `200` / `12.5`,
`cn_percent` `85.7%` / `—`.
"""

from __future__ import annotations

from datetime import date, datetime

from models.clock import LOCAL_TZ

WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


def cn_day(day: date) -> str:
    """`2021年9月30日`."""
    return f"{day.year}年{day.month}月{day.day}日"


def cn_date(day: date) -> str:
    """`2021年6月30日（星期三）`: a date with its weekday."""
    return f"{cn_day(day)}（{WEEKDAYS[day.weekday()]}）"


def cn_month_day(day: date) -> str:
    """`9月30日` (the year is the plan's)."""
    return f"{day.month}月{day.day}日"


def cn_moment(moment: datetime) -> str:
    """`2021年9月30日 17:00` in Asia/Shanghai."""
    local = moment.astimezone(LOCAL_TZ)
    return f"{cn_day(local.date())} {local:%H:%M}"


def cn_number(value: float) -> str:
    """A reported or target number without a useless `.0` (`200`, `12.5`)."""
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else f"{as_float:g}"


def cn_percent(value: float | None) -> str:
    """`85.7%`, or `—` for None."""
    return "—" if value is None else f"{value:.1f}%"
