"""Starting supervision of a plan and assigning its items to departments (交办, 转办).

Repository functions: keyword-only, the caller owns the transaction (nothing commits here).
Open Assignment rows (`ended_at IS NULL`) are the current assignments; plan import creates
them for the departments it resolved, and `assign_item` / `reassign_item` change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from models.calendar import WorkCalendar
from models.clock import local_date
from models.daily_pass import assignment_key, assignment_notice, item_label
from models.directory import Department
from models.errors import DubanError, InputError, NotFoundError
from models.plan import Item, Plan
from models.policy import SupervisionPolicy
from models.schedule import plan_checkins
from models.supervision import Assignment, Checkin
from models.vocabulary import AssignmentRole, CheckinStatus
from tasks.checkins import materialise_checkins, own_schedules, plan_windows, reactivate_cancelled
from tasks.daily_pass import collector_paused, insert_notices, record_notice_emails
from tasks.events import record_event
from tasks.sql import insert_events

__all__ = [
    "ROLES",
    "ROLE_NAMES",
    "StartSummary",
    "assign_item",
    "assignment_key",
    "get_item",
    "item_label",
    "reassign_item",
    "start_supervision",
    "supervision_offices",
]

ROLES = tuple(role.value for role in AssignmentRole)
ROLE_NAMES = AssignmentRole.labels()
# Assignments whose notices, events and emails are written at a time when supervision
# starts, so a province's 30,000 rendered emails never sit in memory together.
NOTICE_BATCH = 2000


@dataclass(frozen=True)
class StartSummary:
    """What `start_supervision` wrote."""

    plan_id: int
    items: int
    assignments: int
    checkins: int
    unassigned_items: list[int]


def get_item(*, session: Session, item_id: int) -> Item:
    """The item with this id, or `NotFoundError` in Chinese."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"没有编号为 {item_id} 的任务。")
    return item


def supervision_offices(*, session: Session) -> list[Department]:
    """Departments flagged as the supervision office (督查室), which receive level-3 notices."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.is_supervision_office.is_(True))
            .order_by(Department.id)
        )
    )


@collector_paused()
def start_supervision(
    *,
    session: Session,
    plan_id: int,
    now: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> StartSummary:
    """Move a plan from `imported` to `supervising`, notify every assignment once, and
    materialise every check-in the schedule asks for from `now`'s local date on.

    Stores `policy` on the plan, sets `started_at`, writes `duban.plan.started` and one
    `duban.item.assigned` per open assignment (`NOTICE_BATCH` assignments at a time). The
    status change is a guarded UPDATE, so a second or concurrent start raises `DubanError`;
    invalid phases raise `InputError`. The caller's transaction should then roll back:
    nothing is written. Python's cyclic collector is paused meanwhile
    (`collector_paused`): the session's rows, alive until the end, made it walk a growing
    heap several times (a sixth of a 5,000-item start's CPU), for no more memory at its peak.
    """
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"没有编号为 {plan_id} 的计划。")
    moved = session.execute(
        update(Plan)
        .where(Plan.id == plan_id, Plan.status == "imported")
        .values(status="supervising", started_at=now, policy=policy.to_mapping())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise DubanError(f"计划「{plan.title}」已经开始督办（状态：{plan.status}），不能重复开始。")
    session.refresh(plan)
    windows = plan_windows(session=session, plan=plan, policy=policy)
    specs = {
        role: plan_checkins(windows, policy, calendar, role=role, not_before=local_date(now))
        for role in ("lead", "support")
    }
    items = list(
        session.scalars(
            select(Item)
            .where(Item.plan_id == plan_id)
            .options(selectinload(Item.plan), selectinload(Item.targets))
        )
    )
    by_id = {item.id: item for item in items}
    rows = session.execute(
        select(Assignment, Department)
        .join(Department, Department.id == Assignment.department_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.plan_id == plan_id, Assignment.ended_at.is_(None))
        .order_by(Assignment.item_id, Assignment.id)
    ).all()
    offices = supervision_offices(session=session)
    for start in range(0, len(rows), NOTICE_BATCH):
        batch = rows[start : start + NOTICE_BATCH]
        actions = [
            assignment_notice(
                item=by_id[assignment.item_id],
                assignment=assignment,
                department=department,
                offices=offices,
                plan_id=plan.id,
                plan_title=plan.title,
            )
            for assignment, department in batch
        ]
        recorded, events = insert_notices(session=session, actions=actions, now=now)
        insert_events(session=session, rows=events)
        record_notice_emails(
            session=session,
            notices=recorded,
            items={assignment.item_id: by_id[assignment.item_id] for assignment, _ in batch},
            departments={department.id: department for _, department in batch},
            now=now,
        )
    leads = {a.item_id for a, _ in rows if a.role == "lead"}
    unassigned = sorted(item.id for item in items if item.id not in leads)
    if unassigned:
        session.execute(update(Item).where(Item.id.in_(unassigned)).values(needs_assignment=True))
    checkins = sum(
        materialise_checkins(
            session=session,
            plan_id=plan_id,
            specs=specs,
            now=now,
            per_item=own_schedules(
                items=items, windows=windows, specs=specs, policy=policy, calendar=calendar
            ),
        ).values()
    )
    record_event(
        session=session,
        event_type="duban.plan.started",
        resource_id=f"duban.plan.{plan.id}",
        occurred_at=now,
        now=now,
        related_resources=[],
        payload={
            "plan_id": plan.id,
            "items": len(items),
            "assignments": len(rows),
            "checkins": checkins,
        },
    )
    return StartSummary(
        plan_id=plan.id,
        items=len(items),
        assignments=len(rows),
        checkins=checkins,
        unassigned_items=unassigned,
    )


def assign_item(
    *,
    session: Session,
    item_id: int,
    department_id: int,
    role: str,
    now: datetime,
    reason: str = "",
) -> Assignment:
    """Assign an item to a department as `lead` or `support` (a new open Assignment row).

    Clears `needs_assignment` when a lead is added and re-opens the department's cancelled
    check-ins due from today (an item handed back after a 转办). The notice and new
    check-ins follow on the item's next reconcile. Raises `InputError` for an unknown role
    or an existing assignment.
    """
    if role not in ROLES:
        raise InputError(f"角色只能是 lead（牵头）或 support（配合），收到：{role}")
    item = get_item(session=session, item_id=item_id)
    department = session.get(Department, department_id)
    if department is None:
        raise NotFoundError(f"没有编号为 {department_id} 的部门。")
    existing = session.scalars(
        select(Assignment).where(
            Assignment.item_id == item_id,
            Assignment.department_id == department_id,
            Assignment.ended_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise InputError(
            f"{item_label(item)} 已交办给{department.name}"
            f"（{ROLE_NAMES.get(existing.role, existing.role)}），无需重复交办。"
        )
    assignment = Assignment(
        item_id=item_id, department_id=department_id, role=role, assigned_at=now, reason=reason
    )
    session.add(assignment)
    if role == "lead":
        item.needs_assignment = False
    session.flush()
    reactivate_cancelled(
        session=session, item_id=item_id, department_id=department_id, today=local_date(now)
    )
    return assignment


def reassign_item(
    *,
    session: Session,
    item_id: int,
    from_department_id: int,
    to_department_id: int,
    now: datetime,
    reason: str = "",
) -> Assignment:
    """转办: end the open assignment of `from` and give the same role to `to`, keeping history.

    Pending check-ins of the old department are cancelled; the new department's notice and
    check-ins follow on the next reconcile. Raises `InputError` if `from` holds no open
    assignment or `to` already holds one.
    """
    item = get_item(session=session, item_id=item_id)
    old = session.scalars(
        select(Assignment).where(
            Assignment.item_id == item_id,
            Assignment.department_id == from_department_id,
            Assignment.ended_at.is_(None),
        )
    ).first()
    if old is None:
        raise InputError(f"{item_label(item)} 当前没有交办给编号为 {from_department_id} 的部门。")
    old.ended_at = now
    old.reason = reason or old.reason
    session.flush()
    new = assign_item(
        session=session,
        item_id=item_id,
        department_id=to_department_id,
        role=old.role,
        now=now,
        reason=reason or f"由部门 {from_department_id} 转办",
    )
    session.execute(
        update(Checkin)
        .where(
            Checkin.item_id == item_id,
            Checkin.department_id == from_department_id,
            Checkin.status == CheckinStatus.PENDING,
        )
        .values(status=CheckinStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return new
