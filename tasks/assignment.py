"""Starting supervision of a plan and assigning its items to departments (交办, 转办).

Repository functions: keyword-only, the caller owns the transaction (nothing commits here).
Open Assignment rows (`ended_at IS NULL`) are the current assignments; plan import creates
them for the departments it resolved, and `assign_item` / `reassign_item` change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import local_date
from models.directory import Department
from models.errors import DubanError, InputError, NotFoundError
from models.plan import Item, Plan
from models.policy import SupervisionPolicy
from models.supervision import Assignment, Checkin, Notice
from notifications.compose import enqueue_notice_emails
from tasks.checkins import materialise_checkins, reactivate_cancelled, schedule_for_plan
from tasks.events import record_event, related
from tasks.notices import recipients_for, record_notice

ROLES = ("lead", "support")
ROLE_NAMES = {"lead": "牵头", "support": "配合"}


def item_label(item: Item) -> str:
    """The name a supervisor knows an item by: `第4项 搭建高水平科技开放交流平台`."""
    return f"第{item.number}项 {item.title}"


def assignment_key(assignment: Assignment) -> str:
    """The business key of an assignment's notice (one per item, department and row)."""
    return f"assign:{assignment.item_id}:{assignment.department_id}:{assignment.id}"


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


def _notify_assignment(
    *,
    session: Session,
    item: Item,
    plan: Plan,
    assignment: Assignment,
    department: Department,
    now: datetime,
    offices: list[Department],
    check_existing: bool,
) -> Notice | None:
    """Record the assignment notice and `duban.item.assigned` event once (the email is the
    caller's, in batch); returns the new notice, None if it existed."""
    key = assignment_key(assignment)
    reason = f"{item_label(item)}：{ROLE_NAMES.get(assignment.role, assignment.role)}交办"
    recipients = recipients_for(department, ["contact"], offices)
    if check_existing:
        notice = record_notice(
            session=session,
            key=key,
            kind="assignment",
            level=0,
            item_id=item.id,
            department_id=department.id,
            checkin_id=None,
            recipients=recipients,
            reason=reason,
            now=now,
            enqueue_email=False,
        )
        if notice is None:
            return None
    else:
        notice = Notice(
            key=key,
            kind="assignment",
            level=0,
            item_id=item.id,
            department_id=department.id,
            recipients=recipients,
            reason=reason,
            decided_at=now,
        )
        session.add(notice)
    record_event(
        session=session,
        event_type="duban.item.assigned",
        resource_id=f"duban.item.{item.id}",
        occurred_at=now,
        now=now,
        related_resources=[
            related("department", department.id, department.name),
            related("plan", plan.id, plan.title),
        ],
        payload={
            "item_id": item.id,
            "department_id": department.id,
            "role": assignment.role,
            "assignment_id": assignment.id,
        },
    )
    return notice


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
    `duban.item.assigned` per open assignment. The status change is a guarded UPDATE, so a
    second or concurrent start raises `DubanError`; invalid phases raise `InputError`. The
    caller's transaction should then roll back: nothing is written.
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
    specs = schedule_for_plan(
        session=session, plan=plan, policy=policy, calendar=calendar, not_before=local_date(now)
    )
    items = list(session.scalars(select(Item).where(Item.plan_id == plan_id)))
    by_id = {item.id: item for item in items}
    rows = session.execute(
        select(Assignment, Department)
        .join(Department, Department.id == Assignment.department_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.plan_id == plan_id, Assignment.ended_at.is_(None))
        .order_by(Assignment.item_id, Assignment.id)
    ).all()
    offices = supervision_offices(session=session)
    notices = [
        _notify_assignment(
            session=session,
            item=by_id[assignment.item_id],
            plan=plan,
            assignment=assignment,
            department=department,
            now=now,
            offices=offices,
            check_existing=False,
        )
        for assignment, department in rows
    ]
    session.flush()
    enqueue_notice_emails(
        session=session, notices=[notice for notice in notices if notice is not None], now=now
    )
    leads = {a.item_id for a, _ in rows if a.role == "lead"}
    unassigned = sorted(item.id for item in items if item.id not in leads)
    if unassigned:
        session.execute(update(Item).where(Item.id.in_(unassigned)).values(needs_assignment=True))
    checkins = sum(
        materialise_checkins(session=session, plan_id=plan_id, specs=specs, now=now).values()
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


def notify_open_assignments(
    *, session: Session, items: Sequence[Item], plan: Plan, now: datetime
) -> dict[int, int]:
    """Send the assignment notice of every open assignment of `items` not yet notified.

    Used by reconcile for assignments made after the plan started; three queries for the
    whole batch. Returns the number of new notices per item id (items with none omitted).
    """
    by_id = {item.id: item for item in items}
    rows = session.execute(
        select(Assignment, Department)
        .join(Department, Department.id == Assignment.department_id)
        .where(Assignment.item_id.in_(list(by_id)), Assignment.ended_at.is_(None))
        .order_by(Assignment.id)
    ).all()
    if not rows:
        return {}
    keys = [assignment_key(a) for a, _ in rows]
    sent: set[str] = set()
    for start in range(0, len(keys), 1000):
        sent.update(
            session.scalars(select(Notice.key).where(Notice.key.in_(keys[start : start + 1000])))
        )
    missing = [(a, d) for a, d in rows if assignment_key(a) not in sent]
    if not missing:
        return {}
    offices = supervision_offices(session=session)
    counts: dict[int, int] = {}
    notices: list[Notice] = []
    for assignment, department in missing:
        notice = _notify_assignment(
            session=session,
            item=by_id[assignment.item_id],
            plan=plan,
            assignment=assignment,
            department=department,
            now=now,
            offices=offices,
            check_existing=True,
        )
        if notice is not None:
            notices.append(notice)
            counts[assignment.item_id] = counts.get(assignment.item_id, 0) + 1
    enqueue_notice_emails(session=session, notices=notices, now=now)
    return counts


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
            Checkin.status == "pending",
        )
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    return new
