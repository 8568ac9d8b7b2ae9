"""The building blocks of a report outline and the number/date formats they use (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from models.clock import LOCAL_TZ


@dataclass(frozen=True)
class Heading:
    """A heading; level 1 is `一、…`, level 2 is `（一）…`."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of running text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table; `colour_column` marks the column holding 绿灯/黄灯/红灯 (or -1)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    colour_column: int = -1
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """A bar chart: `bars` are (label, value) for `kind` `bar`, value in percent or None;
    for `stacked`, `series` are (label, counts per colour in `COLOURS` order)."""

    key: str
    title: str
    kind: str
    bars: tuple[tuple[str, float | None], ...] = ()
    series: tuple[tuple[str, tuple[int, ...]], ...] = ()


Block = Heading | Paragraph | Table | Chart


def fmt_pct(value: float | None) -> str:
    """`85.7%`, or `—` for None."""
    return "—" if value is None else f"{value:.1f}%"


def fmt_num(value: float) -> str:
    """A number without a needless `.0`."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def fmt_day(day: date) -> str:
    """`2021年9月30日`."""
    return f"{day.year}年{day.month}月{day.day}日"


def fmt_moment(moment: datetime) -> str:
    """`2021年9月30日 17:00` in Asia/Shanghai."""
    local = moment.astimezone(LOCAL_TZ)
    return f"{fmt_day(local.date())} {local:%H:%M}"
