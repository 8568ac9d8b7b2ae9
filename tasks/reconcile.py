"""The reconcile loop: do for an item what is due at `as_of` and not yet done, once.

`reconcile_items` looks at the rows of a batch of items of one plan and the moment `as_of`,
and: sends assignment notices not yet sent, materialises missing check-ins, records every
prompt, reminder and escalation the ladder (`models.ladder`) says is due, updates each
check-in's escalation level and each item's colour, and writes domain events for all of it
in the caller's transaction. Every notice has a unique business key, so running it again at
the same `as_of`, or twice at once, sends nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import local_date
from models.directory import Department
from models.errors import DubanError, InputError, NotFoundError
from models.ladder import (
    CheckinFacts,
    CheckinState,
    checkin_state,
    decide_notices,
    escalation_level_due,
)
from models.plan import Item, Plan
from models.policy import SupervisionPolicy
from models.rag import ItemSignals, item_colour
from models.supervision import Assignment, Checkin, Notice
from notifications.compose import enqueue_notice_emails
from tasks.assignment import item_label, notify_open_assignments, supervision_offices
from tasks.checkins import ladder_epochs, materialise_checkins, schedule_for_plan
from tasks.colour import reported_signals, update_item_colour
from tasks.notices import recipients_for, record_notice, record_notice_events

STATE_ESCALATED = "Escalated"
STATE_OVERDUE = "Overdue"
STATE_AWAITING = "AwaitingCheckin"
STATE_ON_TRACK = "OnTrack"


@dataclass
class ItemResult:
    """What one reconcile did to one item, and the item's state afterwards."""

    item_id: int
    label: str
    state: str = STATE_ON_TRACK
    colour: str = "none"
    previous_colour: str = "none"
    assignments_notified: int = 0
    checkins_created: int = 0
    notices: list[str] = field(default_factory=list)
    max_level: int = 0
    overdue: int = 0
    awaiting: int = 0
    pending: int = 0
    submitted: int = 0
    next_due: date | None = None

    @property
    def changed(self) -> bool:
        """True if this reconcile wrote anything."""
        return bool(
            self.notices
            or self.assignments_notified
            or self.checkins_created
            or self.colour != self.previous_colour
        )


def load_supervised_plan(*, session: Session, plan_id: int, today: date) -> Plan:
    """The plan, if it is being supervised and `today` is not before supervision started."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"没有编号为 {plan_id} 的计划。")
    if plan.status != "supervising" or plan.started_at is None:
        raise DubanError(f"计划「{plan.title}」尚未开始督办，请先运行：duban start {plan.id}")
    started = local_date(plan.started_at)
    if today < started:
        raise InputError(
            f"督办时点 {today.isoformat()} 早于计划「{plan.title}」开始督办的日期 "
            f"{started.isoformat()}。"
        )
    return plan


def _state(result: ItemResult) -> str:
    if result.max_level >= 2:
        return STATE_ESCALATED
    if result.overdue:
        return STATE_OVERDUE
    if result.awaiting:
        return STATE_AWAITING
    return STATE_ON_TRACK


def reconcile_items(
    *,
    session: Session,
    plan_id: int,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemResult]:
    """Reconcile a batch of items of one supervised plan at `as_of` (aware datetime).

    Set-based: a fixed number of queries per batch plus one SAVEPOINT insert per new notice;
    the emails of the batch's new notices are enqueued together. Does not
    commit. Raises `NotFoundError` for an unknown plan or item, `InputError` for an `as_of`
    before supervision started, `DubanError` for a plan not being supervised.
    """
    today = local_date(as_of)
    plan = load_supervised_plan(session=session, plan_id=plan_id, today=today)
    items = {
        item.id: item
        for item in session.scalars(
            select(Item).where(Item.id.in_(item_ids), Item.plan_id == plan_id)
        )
    }
    missing = sorted(set(item_ids) - set(items))
    if missing:
        raise NotFoundError(f"计划 {plan_id} 中没有编号为 {missing[0]} 的任务。")
    results = {
        item_id: ItemResult(
            item_id=item_id, label=item_label(item), colour=item.colour, previous_colour=item.colour
        )
        for item_id, item in items.items()
    }
    notified = notify_open_assignments(
        session=session, items=list(items.values()), plan=plan, now=as_of
    )
    for item_id, count in notified.items():
        results[item_id].assignments_notified = count
    specs = schedule_for_plan(
        session=session,
        plan=plan,
        policy=policy,
        calendar=calendar,
        not_before=local_date(plan.started_at or as_of),
    )
    created = materialise_checkins(
        session=session, plan_id=plan_id, specs=specs, now=as_of, item_ids=list(items)
    )
    for item_id, count in created.items():
        results[item_id].checkins_created = count
    horizon = today + timedelta(days=policy.request_lead_workdays * 2 + 14)
    rows = session.execute(
        select(Checkin, Department)
        .join(Department, Department.id == Checkin.department_id)
        .join(
            Assignment,
            (Assignment.item_id == Checkin.item_id)
            & (Assignment.department_id == Checkin.department_id)
            & Assignment.ended_at.is_(None),
        )
        .where(
            Checkin.item_id.in_(list(items)),
            Checkin.status == "pending",
            Checkin.due_date <= horizon,
        )
        .order_by(Checkin.item_id, Checkin.due_date, Checkin.id)
    ).all()
    supervised = set(
        session.scalars(
            select(Assignment.item_id)
            .where(Assignment.item_id.in_(list(items)), Assignment.ended_at.is_(None))
            .distinct()
        )
    )
    checkin_ids = [checkin.id for checkin, _ in rows]
    epochs = ladder_epochs(session=session, checkin_ids=checkin_ids)
    done_keys: set[str] = set()
    for start in range(0, len(checkin_ids), 1000):
        done_keys.update(
            session.scalars(
                select(Notice.key).where(Notice.checkin_id.in_(checkin_ids[start : start + 1000]))
            )
        )
    offices = supervision_offices(session=session)
    states: defaultdict[int, list[CheckinState]] = defaultdict(list)
    new_notices: list[Notice] = []
    for checkin, department in rows:
        item = items[checkin.item_id]
        result = results[item.id]
        facts = CheckinFacts(
            checkin_id=checkin.id,
            due_date=checkin.due_date,
            submitted_on=local_date(checkin.submitted_at) if checkin.submitted_at else None,
            ladder_epoch=epochs.get(checkin.id, 0),
        )
        for decision in decide_notices(facts, policy, calendar, today=today, done_keys=done_keys):
            notice = record_notice(
                session=session,
                key=decision.key,
                kind=decision.kind,
                level=decision.level,
                item_id=item.id,
                department_id=department.id,
                checkin_id=checkin.id,
                recipients=recipients_for(department, decision.recipient_roles, offices),
                reason=f"{item_label(item)}（{department.name}）：{decision.reason}",
                now=as_of,
                enqueue_email=False,
            )
            if notice is None:
                continue
            new_notices.append(notice)
            result.notices.append(decision.key)
            record_notice_events(
                session=session,
                item=item,
                department=department,
                checkin=checkin,
                kind=decision.kind,
                level=decision.level,
                now=as_of,
            )
        state = checkin_state(facts, policy, calendar, today=today)
        level = escalation_level_due(facts, policy, calendar, today=today)
        if level > checkin.escalation_level:
            checkin.escalation_level = level
        states[item.id].append(state)
        if state in ("submitted", "submitted_late"):
            result.submitted += 1
            continue
        result.pending += 1
        result.max_level = max(result.max_level, level)
        if state == "overdue":
            result.overdue += 1
        elif state in ("awaiting", "due_today"):
            result.awaiting += 1
        if result.next_due is None or checkin.due_date < result.next_due:
            result.next_due = checkin.due_date
    enqueue_notice_emails(session=session, notices=new_notices, now=as_of)
    session.flush()
    reported = reported_signals(
        session=session,
        item_ids=list(items),
        as_of=as_of,
        start=local_date(plan.started_at or as_of),
        end=date(plan.year, 12, 31),
    )
    for item in items.values():
        result = results[item.id]
        result.state = _state(result)
        if item.id not in supervised:
            continue
        signals = reported.get(item.id)
        colour = item_colour(
            ItemSignals(
                checkin_states=tuple(states[item.id]),
                escalation_level=result.max_level,
                department_statuses=tuple(signals.department_statuses) if signals else (),
                pace=tuple(signals.pace) if signals else (),
            )
        )
        update_item_colour(session=session, item=item, colour=colour, state=result.state, now=as_of)
        result.colour = colour
    return [results[item_id] for item_id in item_ids]


def reconcile_item(
    *,
    session: Session,
    item_id: int,
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> ItemResult:
    """Reconcile one item at `as_of` (see `reconcile_items`); returns its summary."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"没有编号为 {item_id} 的任务。")
    return reconcile_items(
        session=session,
        plan_id=item.plan_id,
        item_ids=[item_id],
        as_of=as_of,
        policy=policy,
        calendar=calendar,
    )[0]
