"""Imported work-calendar days (`duban calendar import`): one row per listed date.

A year's `holiday` and `workday` rows replace the holiday library's data for that year; its
`closure` rows (the organisation's own closures) apply on top of either. `tasks.calendar_store`
turns the rows into `models.calendar.CalendarYear` values.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, Timestamp
from models.calendar import DayKind


class CalendarDay(Base):
    """One imported day: its date (unique), year, kind (`DayKind`), name and source file."""

    __tablename__ = "calendar_day"

    id: Mapped[IntPK]
    day: Mapped[date] = mapped_column(Date, unique=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[DayKind] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100), default="")
    source_name: Mapped[str] = mapped_column(String(500), default="")
    imported_at: Mapped[Timestamp]
