"""Check-in rows: materialised from the schedule, extended (延期), and queried by due date.

Repository functions: keyword-only, the caller owns the transaction. Queries are set-based
SQL over the `(status, due_date)` index; no Python loop walks all check-ins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Select,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import local_date
from models.daily_pass import checkin_slots, checkins_to_create, item_label
from models.directory import Department
from models.errors import DubanError, InputError, NotFoundError
from models.item_schedule import ItemCheckin, item_specs
from models.limits import check_extension_date
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy
from models.schedule import CheckinSpec, PhaseWindow, default_phase_windows, plan_checkins
from models.supervision import Assignment, Checkin, Extension
from models.vocabulary import CheckinStatus, EventType, ExtensionDecision
from tasks.events import record_event, related
from tasks.sql import insert_rows, table_of

INSERT_CHUNK = 5000
# Assignments whose check-in rows are built and inserted at a time (a province's 330,000
# rows never sit in memory together).
ASSIGNMENT_BATCH = 500


def phase_windows(
    *, phases: Sequence[Phase], policy: SupervisionPolicy, year: int
) -> list[PhaseWindow]:
    """Stored phases as schedule values in date order, or the policy's defaults for `year`."""
    if not phases:
        return default_phase_windows(policy, year)
    return [PhaseWindow.of(phase) for phase in sorted(phases, key=lambda p: p.start_date)]


def schedule_for_plan(
    *,
    session: Session,
    plan: Plan,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
    not_before: date | None = None,
) -> dict[str, list[CheckinSpec]]:
    """The check-in specs a lead and a support department owe on this plan, by role.

    `not_before` (the local date supervision started) drops check-ins due before it.
    Raises `InputError` for invalid phases.
    """
    windows = plan_windows(session=session, plan=plan, policy=policy)
    return {
        role: plan_checkins(windows, policy, calendar, role=role, not_before=not_before)
        for role in ("lead", "support")
    }


def plan_windows(*, session: Session, plan: Plan, policy: SupervisionPolicy) -> list[PhaseWindow]:
    """The plan's stored phases as schedule values, or the policy's defaults for its year."""
    phases = list(session.scalars(select(Phase).where(Phase.plan_id == plan.id)))
    return phase_windows(phases=phases, policy=policy, year=plan.year)


def own_schedules(
    *,
    items: Sequence[Item],
    windows: Sequence[PhaseWindow],
    specs: dict[str, list[CheckinSpec]],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> dict[tuple[int, str], list[ItemCheckin]]:
    """The schedules of `items` whose own 完成时限 / 时序进度 change the policy's (no I/O)."""
    return item_specs(
        ((item.id, item.deadline, item.milestones) for item in items),
        specs,
        phases=windows,
        policy=policy,
        calendar=calendar,
    )


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert check-in rows (all with the same keys), skipping existing ones, `INSERT_CHUNK`
    rows per statement (`insert_rows`: one JSON recordset parameter on PostgreSQL)."""
    for start in range(0, len(rows), INSERT_CHUNK):
        insert_rows(
            session=session,
            table=table_of(Checkin),
            rows=rows[start : start + INSERT_CHUNK],
            ignore_conflicts=True,
        )


def materialise_checkins(
    *,
    session: Session,
    plan_id: int,
    specs: dict[str, list[CheckinSpec]],
    now: datetime,
    item_ids: Sequence[int] | None = None,
    per_item: dict[tuple[int, str], list[ItemCheckin]] | None = None,
) -> dict[int, int]:
    """Insert the missing check-ins of every open assignment (of `item_ids`, or the plan).

    Check-ins due before `now`'s local date are never created (a department given an item
    mid-year owes what is due from then on).
    Idempotent on (item, department, phase, seq): existing rows are kept as they are, and
    a concurrent insert of the same row is ignored by the database. Returns the number of
    rows inserted per item id (items with none omitted). Rows are built and inserted
    `ASSIGNMENT_BATCH` assignments at a time.
    """
    query = (
        select(Assignment.item_id, Assignment.department_id, Assignment.role)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.plan_id == plan_id, Assignment.ended_at.is_(None))
    )
    existing_query: Select[tuple[int, int, str, int]] = (
        select(Checkin.item_id, Checkin.department_id, Checkin.phase_key, Checkin.seq)
        .join(Item, Item.id == Checkin.item_id)
        .where(Item.plan_id == plan_id)
    )
    if item_ids is not None:
        query = query.where(Assignment.item_id.in_(item_ids))
        existing_query = existing_query.where(Checkin.item_id.in_(item_ids))
    existing = checkin_slots(
        (int(i), int(d), str(p), int(q)) for i, d, p, q in session.execute(existing_query)
    )
    assignments = [(int(i), int(d), str(r)) for i, d, r in session.execute(query)]
    counts: dict[int, int] = {}
    for start in range(0, len(assignments), ASSIGNMENT_BATCH):
        rows = checkins_to_create(
            assignments=assignments[start : start + ASSIGNMENT_BATCH],
            specs=specs,
            existing=existing,
            today=local_date(now),
            now=now,
            per_item=per_item,
        )
        _insert_ignoring_duplicates(session, rows)
        for row in rows:
            item_id = int(str(row["item_id"]))
            counts[item_id] = counts.get(item_id, 0) + 1
    return counts


def ladder_epochs(*, session: Session, checkin_ids: Sequence[int]) -> dict[int, int]:
    """Approved extensions per check-in: the ladder epoch that keys its notices after one."""
    if not checkin_ids:
        return {}
    rows = session.execute(
        select(Extension.checkin_id, func.count())
        .where(
            Extension.checkin_id.in_(checkin_ids), Extension.decision == ExtensionDecision.APPROVED
        )
        .group_by(Extension.checkin_id)
    )
    return {int(checkin_id): int(count) for checkin_id, count in rows.tuples()}


@dataclass(frozen=True)
class ExtensionResult:
    """An approved extension: the check-in, its old and new due dates, and the new epoch."""

    checkin_id: int
    previous_due_date: date
    due_date: date
    epoch: int


def approve_extension_of(
    *,
    session: Session,
    checkin: Checkin,
    extension: Extension,
    target: date,
    decided_by: str,
    now: datetime,
) -> ExtensionResult:
    """The one way an extension (延期) is approved: move the due date, restart the ladder.

    `checkin` must still be pending and `target` (already a working day) later than its due
    date, else `InputError` and nothing changes. Marks `extension` approved (keeping the date
    it replaced), resets the escalation level, raises the ladder epoch (approved extensions,
    `ladder_epochs`) and writes `duban.checkin.extended` naming the check-in, item,
    department, extension, both dates, reason, epoch and approver. Does not commit.
    """
    if checkin.status != CheckinStatus.PENDING:
        raise InputError(
            f"报送 {checkin.id} 的状态是{CheckinStatus.label_of(checkin.status)}，"
            "只有待报送的才能延期。"
        )
    if target <= checkin.due_date:
        raise InputError(
            f"新的截止日期 {target.isoformat()} "
            f"必须晚于当前截止日期 {checkin.due_date.isoformat()}。"
        )
    previous = checkin.due_date
    extension.decision = ExtensionDecision.APPROVED
    extension.decided_at = now
    extension.decided_by = decided_by
    extension.previous_due_date = previous
    extension.requested_date = target
    if extension not in session:
        session.add(extension)
    checkin.due_date = target
    checkin.escalation_level = 0
    session.flush()
    epoch = ladder_epochs(session=session, checkin_ids=[checkin.id]).get(checkin.id, 0)
    item = session.get(Item, checkin.item_id)
    department = session.get(Department, checkin.department_id)
    plan = session.get(Plan, item.plan_id) if item is not None else None
    if item is None or department is None or plan is None:
        raise DubanError(f"报送 {checkin.id} 的任务或部门已不存在。")
    record_event(
        session=session,
        event_type=EventType.CHECKIN_EXTENDED,
        resource_id=f"duban.checkin.{checkin.id}",
        occurred_at=now,
        now=now,
        related_resources=[
            related("item", item.id, item_label(item)[:200]),
            related("department", department.id, department.name),
            related("plan", item.plan_id, plan.title[:200]),
        ],
        payload={
            "checkin_id": checkin.id,
            "item_id": item.id,
            "department_id": department.id,
            "extension_id": extension.id,
            "previous_due_date": previous.isoformat(),
            "due_date": target.isoformat(),
            "reason": extension.reason,
            "epoch": epoch,
            "decided_by": decided_by,
        },
    )
    return ExtensionResult(
        checkin_id=checkin.id, previous_due_date=previous, due_date=target, epoch=epoch
    )


def extend_checkin(
    *,
    session: Session,
    checkin_id: int,
    new_due: date,
    reason: str,
    decided_by: str,
    now: datetime,
    calendar: WorkCalendar,
) -> ExtensionResult:
    """A supervisor extends a check-in directly (延期): `approve_extension_of` a new request.

    `new_due` moves to the next working day if needed. Raises `InputError`/`NotFoundError`
    (a missing reason, a check-in not pending, a date not later); writes nothing then.
    """
    checkin = session.get(Checkin, checkin_id)
    if checkin is None:
        raise NotFoundError(f"没有编号为 {checkin_id} 的报送。")
    if not reason.strip():
        raise InputError("延期需要填写理由（--reason）。")
    plan_year = session.scalar(select(Plan.year).join(Item).where(Item.id == checkin.item_id))
    check_extension_date(new_due, due_date=checkin.due_date, plan_year=plan_year or new_due.year)
    target = calendar.next_workday_on_or_after(new_due)
    extension = Extension(
        checkin_id=checkin.id, requested_date=target, reason=reason, requested_at=now
    )
    return approve_extension_of(
        session=session,
        checkin=checkin,
        extension=extension,
        target=target,
        decided_by=decided_by,
        now=now,
    )


def _scoped(query: Select[tuple[Checkin]], plan_id: int | None) -> Select[tuple[Checkin]]:
    if plan_id is None:
        return query
    return query.join(Item, Item.id == Checkin.item_id).where(Item.plan_id == plan_id)


def due_checkins(
    *, session: Session, start: date, end: date, plan_id: int | None = None, limit: int = 1000
) -> list[Checkin]:
    """Pending check-ins due in [start, end], by due date (index `ix_checkin_status_due`)."""
    query = select(Checkin).where(
        Checkin.status == CheckinStatus.PENDING, Checkin.due_date >= start, Checkin.due_date <= end
    )
    query = _scoped(query, plan_id).order_by(Checkin.due_date, Checkin.id).limit(limit)
    return list(session.scalars(query))


def overdue_checkins(
    *, session: Session, today: date, plan_id: int | None = None, limit: int = 1000
) -> list[Checkin]:
    """Pending check-ins whose due date is before `today`, oldest first."""
    query = select(Checkin).where(Checkin.status == CheckinStatus.PENDING, Checkin.due_date < today)
    query = _scoped(query, plan_id).order_by(Checkin.due_date, Checkin.id).limit(limit)
    return list(session.scalars(query))


def count_due_and_overdue(
    *, session: Session, today: date, horizon: date, plan_id: int | None = None
) -> tuple[int, int]:
    """(pending due in [today, horizon], pending overdue before today), one aggregate query."""
    due = func.count().filter(and_(Checkin.due_date >= today, Checkin.due_date <= horizon))
    overdue = func.count().filter(Checkin.due_date < today)
    query = select(due, overdue).where(
        Checkin.status == CheckinStatus.PENDING, Checkin.due_date <= horizon
    )
    if plan_id is not None:
        query = query.join(Item, Item.id == Checkin.item_id).where(Item.plan_id == plan_id)
    row = session.execute(query).one()
    return int(row[0]), int(row[1])


def items_with_pending_before(
    *, session: Session, plan_id: int, horizon: date, submitted_since: datetime | None = None
) -> list[int]:
    """Ids of the plan's items with a pending check-in due on or before `horizon`, or with a
    check-in submitted at or after `submitted_since` (distinct, ascending)."""
    condition = and_(Checkin.status == CheckinStatus.PENDING, Checkin.due_date <= horizon)
    if submitted_since is not None:
        condition = or_(condition, Checkin.submitted_at >= submitted_since)
    query = (
        select(Checkin.item_id)
        .join(Item, Item.id == Checkin.item_id)
        .where(Item.plan_id == plan_id, condition)
        .distinct()
    )
    return sorted(session.scalars(query))


def reactivate_cancelled(*, session: Session, item_id: int, department_id: int, today: date) -> int:
    """Re-open cancelled future check-ins when a department is assigned an item again."""
    result = session.execute(
        update(Checkin)
        .where(
            Checkin.item_id == item_id,
            Checkin.department_id == department_id,
            Checkin.status == CheckinStatus.CANCELLED,
            Checkin.due_date >= today,
        )
        .values(status=CheckinStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
