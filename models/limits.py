"""Bounds on what users type: extension dates, date arithmetic that cannot overflow, and text.

Pure functions; the form (`portal.formdata`), `duban checkin extend` and extension approval
call them, so a date or a string from outside is judged the same way everywhere.

- An extension (延期) may move a due date to at most `latest_extension_date`: the end of
  the plan's year, or `EXTENSION_MAX_DAYS` past the current due date when that is later
  (a year-end check-in can still be extended into January).
- `add_days` clamps to `date.min`/`date.max` instead of raising `OverflowError`, for
  computed dates such as a link's expiry after an (already bounded) due date.
- `normalise_text` removes NUL and the other control characters (except line feed and
  tab) and unpaired surrogates, and turns CR LF / CR into LF, so one typed string is
  stored identically on SQLite and PostgreSQL (which refuses NUL in text).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from models.errors import InputError

EXTENSION_MAX_DAYS = 92

# C0 controls except TAB and LF, DEL, C1 controls, and lone UTF-16 surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def add_days(day: date, days: int) -> date:
    """`day + days`, clamped to the representable range (never `OverflowError`)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def latest_extension_date(*, due_date: date, plan_year: int) -> date:
    """The latest date an extension of a check-in due on `due_date` may move it to."""
    year_end = date(min(max(plan_year, date.min.year), date.max.year), 12, 31)
    return max(year_end, add_days(due_date, EXTENSION_MAX_DAYS))


def check_extension_date(new_date: date, *, due_date: date, plan_year: int) -> date:
    """Return `new_date` if it is after `due_date` and within the extension bound.

    Raises `InputError` (Chinese, naming the allowed range) otherwise; writes nothing.
    """
    if new_date <= due_date:
        raise InputError(f"申请延期的日期须晚于当前截止日期 {due_date.isoformat()}。")
    latest = latest_extension_date(due_date=due_date, plan_year=plan_year)
    if new_date > latest:
        raise InputError(
            f"延期日期 {new_date.isoformat()} 超出允许范围：最晚可延至 {latest.isoformat()}"
            f"（{plan_year}年度内，或当前截止日期后{EXTENSION_MAX_DAYS}天内）。"
        )
    return new_date


def normalise_text(value: str) -> str:
    """`value` with CR LF and CR turned into LF and other control characters removed."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", value)
