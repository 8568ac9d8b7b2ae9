"""How a phase's time span reads: `3月下旬至5月上旬`, but `12月` rather than `12月至12月`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

__all__ = ["phase_range"]

_YEAR_PREFIX = re.compile(r"^\d{4}年")


def phase_range(
    start_text: str,
    end_text: str,
    start_date: date,
    end_date: date,
    *,
    format_day: Callable[[date], str],
) -> str:
    """The phase's span as written (`start_text至end_text`), or by its dates (`format_day`).

    A span whose two ends read the same (`12月`/`12月`, `2021年12月`/`12月`, or one date)
    is written once.
    """
    if start_text and end_text:
        if end_text in (start_text, _YEAR_PREFIX.sub("", start_text)):
            return start_text
        return f"{start_text}至{end_text}"
    if start_date == end_date:
        return format_day(start_date)
    return f"{format_day(start_date)}至{format_day(end_date)}"
