"""What a changed work calendar does to open check-ins: which due dates move, and where.

Pure: `checkin_moves` takes the open check-ins as plain values and the check-in schedule
computed with the new calendar, and returns the moves; `tasks.calendar_store` loads the
facts and applies the moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.calendar import WorkCalendar

__all__ = ["CheckinMove", "OpenCheckin", "checkin_moves"]


@dataclass(frozen=True, slots=True)
class OpenCheckin:
    """A pending check-in: its schedule key (`role`, `phase_key`, `seq`) and its dates."""

    checkin_id: int
    plan_id: int
    role: str
    phase_key: str
    seq: int
    due_date: date
    original_due_date: date


@dataclass(frozen=True, slots=True)
class CheckinMove:
    """One check-in's due date moving from `old` to `new`."""

    checkin_id: int
    plan_id: int
    old: date
    new: date
    extended: bool


def checkin_moves(
    checkins: list[OpenCheckin],
    scheduled: dict[int, dict[tuple[str, str, int], date]],
    calendar: WorkCalendar,
) -> list[CheckinMove]:
    """The due dates the new `calendar` moves, in check-in order.

    `scheduled[plan_id][(role, phase_key, seq)]` is the due date the schedule gives under
    the new calendar. A check-in never extended takes that date; an extended one keeps its
    approved date unless that is no longer a workday, then moves to the next workday.
    """
    moves: list[CheckinMove] = []
    for checkin in sorted(checkins, key=lambda c: c.checkin_id):
        extended = checkin.due_date != checkin.original_due_date
        if extended:
            new = calendar.next_workday_on_or_after(checkin.due_date)
        else:
            key = (checkin.role, checkin.phase_key, checkin.seq)
            new = scheduled.get(checkin.plan_id, {}).get(key, checkin.due_date)
        if new != checkin.due_date:
            moves.append(
                CheckinMove(checkin.checkin_id, checkin.plan_id, checkin.due_date, new, extended)
            )
    return moves
