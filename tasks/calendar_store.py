"""The stored work calendar: load it for every caller, import a year (repository functions).

Every worker, the form and the reports build their `WorkCalendar` here, so they all use the
holiday library plus the years imported with `duban calendar import`. `work_calendar` reads
the stored days in one query and reuses the last calendar built from the same rows, so its
per-date cache and its missing-year warning (once per process) survive across runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from threading import Lock

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from models.calendar import CalendarSource, CalendarYear, DayKind, WorkCalendar
from models.calendar_change import CheckinMove, OpenCheckin, checkin_moves
from models.calendar_days import CalendarDay
from models.calendar_file import CalendarFile
from models.plan import Item, Plan
from models.policy import parse_policy
from models.supervision import Checkin
from tasks.checkins import schedule_for_plan
from tasks.events import record_event

__all__ = [
    "CalendarImport",
    "import_calendar",
    "load_years",
    "plans_without_calendar",
    "stored_calendar",
    "work_calendar",
]

_log = logging.getLogger(__name__)
_Rows = tuple[tuple[date, str, str], ...]
_built: dict[_Rows, WorkCalendar] = {}
_built_lock = Lock()
_MAX_BUILT = 8


def _warn(message: str) -> None:
    """Log a calendar warning to the current Prefect run's log (outside a run the caller,
    such as a CLI command, shows `WorkCalendar.warnings` itself; it is logged at debug)."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        _log.debug(message)


def _rows(session: Session) -> _Rows:
    return tuple(
        (day, str(kind), name)
        for day, kind, name in session.execute(
            select(CalendarDay.day, CalendarDay.kind, CalendarDay.name).order_by(CalendarDay.day)
        )
    )


def _years(rows: _Rows) -> dict[int, CalendarYear]:
    lists: dict[int, dict[DayKind, dict[date, str]]] = {}
    for day, kind, name in rows:
        lists.setdefault(day.year, {k: {} for k in DayKind})[DayKind(kind)][day] = name
    return {
        year: CalendarYear(
            year=year,
            holidays=by_kind[DayKind.holiday],
            workdays=by_kind[DayKind.workday],
            closures=by_kind[DayKind.closure],
        )
        for year, by_kind in lists.items()
    }


def load_years(*, session: Session) -> dict[int, CalendarYear]:
    """Every imported year, by year (one query)."""
    return _years(_rows(session))


def work_calendar(*, session: Session) -> WorkCalendar:
    """The `WorkCalendar` of the library plus every imported year (one query).

    Returns the same instance while the stored days are unchanged.
    """
    rows = _rows(session)
    with _built_lock:
        found = _built.get(rows)
        if found is None:
            if len(_built) >= _MAX_BUILT:
                _built.clear()
            found = _built[rows] = WorkCalendar(years=_years(rows), on_warning=_warn)
    return found


def stored_calendar() -> WorkCalendar:
    """`work_calendar` on the configured database, for callers that hold no session."""
    from models.settings import get_settings
    from tasks.store import store_for

    with store_for(get_settings().effective_database_url).sessions() as session:
        return work_calendar(session=session)


def plans_without_calendar(*, session: Session) -> list[Plan]:
    """Plans imported or being supervised whose year has no holiday data (weekends-only)."""
    calendar = work_calendar(session=session)
    plans = session.scalars(
        select(Plan).where(Plan.status.in_(("imported", "supervising"))).order_by(Plan.id)
    )
    return [plan for plan in plans if calendar.source(plan.year) is CalendarSource.weekends_only]


@dataclass(frozen=True)
class CalendarImport:
    """What importing a calendar file does: the year before and after, and the moved due dates.

    `applied` is False when the moves were only shown (not confirmed); nothing was written.
    """

    year: int
    before: CalendarYear
    after: CalendarYear
    moves: list[CheckinMove] = field(default_factory=list)
    applied: bool = False

    @property
    def changed(self) -> bool:
        """True if the stored year differs from what it was."""
        return (
            self.before.holidays != self.after.holidays
            or self.before.workdays != self.after.workdays
            or self.before.closures != self.after.closures
        )


def _moves(session: Session, year: int, calendar: WorkCalendar) -> list[CheckinMove]:
    window = (date(year - 1, 12, 1), date(year + 1, 1, 31))
    found = session.execute(
        select(
            Checkin.id,
            Item.plan_id,
            Checkin.role,
            Checkin.phase_key,
            Checkin.seq,
            Checkin.due_date,
            Checkin.original_due_date,
        )
        .join(Item, Item.id == Checkin.item_id)
        .join(Plan, Plan.id == Item.plan_id)
        .where(
            Plan.status == "supervising",
            Checkin.status == "pending",
            Checkin.due_date.between(*window),
        )
    ).all()
    checkins = [OpenCheckin(*row) for row in found]
    scheduled: dict[int, dict[tuple[str, str, int], date]] = {}
    for plan_id in sorted({c.plan_id for c in checkins}):
        plan = session.get_one(Plan, plan_id)
        specs = schedule_for_plan(
            session=session, plan=plan, policy=parse_policy(plan.policy or None), calendar=calendar
        )
        scheduled[plan_id] = {
            (role, spec.phase_key, spec.seq): spec.due_date
            for role, role_specs in specs.items()
            for spec in role_specs
        }
    return checkin_moves(checkins, scheduled, calendar)


def import_calendar(
    *,
    session: Session,
    calendar_file: CalendarFile,
    source_name: str,
    now: datetime,
    confirm: bool = False,
) -> CalendarImport:
    """Store `calendar_file`'s year in the caller's transaction (no commit), all-or-nothing.

    Replaces the year's stored holidays and 调休 workdays when the file gives either, and its
    closures when the file gives them. If the new calendar moves the due date of a pending
    check-in of a supervised plan and `confirm` is False, nothing is written and the moves are
    returned (`applied` False); otherwise the days and the moved due dates are written with a
    `duban.calendar.imported` event.
    """
    year = calendar_file.year
    stored = load_years(session=session)
    before = stored.get(year, CalendarYear(year=year))
    after = calendar_file.merged_into(before)
    others = {y: c for y, c in stored.items() if y != year}
    new_calendar = WorkCalendar(years={**others, year: after}, on_warning=_log.debug)
    moves = _moves(session, year, new_calendar)
    outcome = CalendarImport(year=year, before=before, after=after, moves=moves)
    if moves and not confirm:
        return outcome
    kinds = [kind for kind in DayKind if calendar_file.days(kind) is not None]
    if calendar_file.national:
        kinds = sorted({*kinds, DayKind.holiday, DayKind.workday})
    session.execute(
        delete(CalendarDay).where(CalendarDay.year == year, CalendarDay.kind.in_(kinds))
    )
    rows = [
        {
            "day": day,
            "year": year,
            "kind": kind,
            "name": name[:100],
            "source_name": source_name[:500],
            "imported_at": now,
        }
        for kind in kinds
        for day, name in sorted((calendar_file.days(kind) or {}).items())
    ]
    session.execute(delete(CalendarDay).where(CalendarDay.day.in_([r["day"] for r in rows])))
    if rows:
        session.execute(insert(CalendarDay), rows)
    for move in moves:
        values: dict[str, date] = {"due_date": move.new}
        if not move.extended:
            values["original_due_date"] = move.new
        session.execute(
            update(Checkin)
            .where(Checkin.id == move.checkin_id, Checkin.status == "pending")
            .values(**values)
        )
    record_event(
        session=session,
        event_type="duban.calendar.imported",
        resource_id=f"duban.calendar.{year}",
        occurred_at=now,
        now=now,
        payload={
            "year": year,
            "source_name": source_name,
            "holidays": len(after.holidays),
            "workdays": len(after.workdays),
            "closures": len(after.closures),
            "moved_checkins": [m.checkin_id for m in moves],
        },
    )
    session.flush()
    return CalendarImport(year=year, before=before, after=after, moves=moves, applied=True)
