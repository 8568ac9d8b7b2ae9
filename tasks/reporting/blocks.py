"""The building blocks of a report outline and the number/date formats they use (pure).

The formats are `models.formats`' (one formatter for emails, form and reports), under the
names the report modules use.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.formats import cn_day as fmt_day
from models.formats import cn_moment as fmt_moment
from models.formats import cn_number as fmt_num
from models.formats import cn_percent as fmt_pct

__all__ = ["fmt_day", "fmt_moment", "fmt_num", "fmt_pct"]


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
