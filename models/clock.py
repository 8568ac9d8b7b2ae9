"""The one clock seam: every default 'now' in duban comes from here, and tests move it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_frozen: ContextVar[datetime | None] = ContextVar("duban_frozen_now", default=None)


def now() -> datetime:
    """Return the current aware UTC time, or the frozen time inside `frozen_at`."""
    value = _frozen.get()
    return value if value is not None else datetime.now(UTC)


def resolve(as_of: datetime | date | None) -> datetime:
    """Turn an optional `as_of` (aware datetime, naive local datetime or local date) into UTC.

    A date means 09:00 local time on that day; a naive datetime is read as Asia/Shanghai.
    """
    if as_of is None:
        return now()
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=LOCAL_TZ)
        return as_of.astimezone(UTC)
    return datetime(as_of.year, as_of.month, as_of.day, 9, 0, tzinfo=LOCAL_TZ).astimezone(UTC)


def local_date(moment: datetime) -> date:
    """Return the Asia/Shanghai calendar date of an aware datetime."""
    return moment.astimezone(LOCAL_TZ).date()


@contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    """Freeze `now()` at an aware `moment` for the duration of the block."""
    if moment.tzinfo is None:
        raise ValueError("frozen_at needs an aware datetime")
    token = _frozen.set(moment.astimezone(UTC))
    try:
        yield moment
    finally:
        _frozen.reset(token)
