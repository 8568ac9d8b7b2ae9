"""Completion and closure applied: request, approve (销号), reject, close directly, reopen.

Plain callables over a session (the caller owns the transaction and commits): each checks
the rule in `models.closure` first (so bad input raises `InputError` with nothing written),
then writes the change, its domain event (`duban.item.completion_requested`,
`duban.item.completion_rejected`, `duban.item.closed`, `duban.item.reopened`) and its
email to the lead department and the supervision office in the same session. Outbox keys
are derived from the request or closure id, so a retried transaction writes one email.
The Prefect inbox calls `approve_completion` / `reject_completion` and lists
`pending_completions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from models.clock import local_date
from models.closure import (
    ItemClosureFacts,
    check_close,
    check_decision,
    check_reopen,
    check_request,
    checkins_to_cancel,
    checkins_to_restore,
)
from models.completion import CompletionRequest, ItemClosure
from models.daily_pass import item_label
from models.directory import Department
from models.errors import InputError, NotFoundError
from models.plan import Item, Plan
from models.policy import parse_policy
from models.settings import Settings, get_settings
from models.supervision import Assignment, Checkin
from models.vocabulary import AssignmentRole, CheckinStatus, CompletionDecision, EventType
from notifications.context import item_context, load_item, next_pending_checkins
from notifications.outbox import enqueue_message
from notifications.rendering import render_message
from tasks.calendar_store import work_calendar
from tasks.checkins import materialise_checkins, own_schedules, plan_windows, schedule_for_plan
from tasks.events import record_event, related

__all__ = [
    "ClosureResult",
    "PendingCompletion",
    "ReopenResult",
    "approve_completion",
    "close_item",
    "closed_items",
    "closure_facts",
    "completion_requests",
    "pending_completions",
    "reject_completion",
    "reopen_item",
    "request_completion",
]

MAIL_KIND = "closure"


@dataclass(frozen=True)
class ClosureResult:
    """An item closed: its closure row id and the pending check-ins it cancelled."""

    item_id: int
    closure_id: int
    cancelled: int


@dataclass(frozen=True)
class ReopenResult:
    """An item reopened: check-ins restored from the closure and check-ins newly planned."""

    item_id: int
    restored: int
    created: int


@dataclass(frozen=True)
class PendingCompletion:
    """A completion request as the inbox and the CLI show it (pending unless listed with
    every decision)."""

    request_id: int
    item_id: int
    item_label: str
    plan_id: int
    department_id: int
    department: str
    summary: str
    requested_at: datetime
    requested_by: str
    decision: CompletionDecision = CompletionDecision.PENDING
    reason: str = ""


def _item(session: Session, item_id: int) -> Item:
    item = session.scalars(
        select(Item).where(Item.id == item_id).options(selectinload(Item.plan))
    ).first()
    if item is None:
        raise NotFoundError(f"没有编号为 {item_id} 的任务（用 duban status 查看任务编号）。")
    return item


def _leads(session: Session, item_id: int) -> list[Department]:
    return list(
        session.scalars(
            select(Department)
            .join(Assignment, Assignment.department_id == Department.id)
            .where(
                Assignment.item_id == item_id,
                Assignment.ended_at.is_(None),
                Assignment.role == AssignmentRole.LEAD,
            )
            .order_by(Assignment.id)
        )
    )


def _pending_request(session: Session, item_id: int) -> CompletionRequest | None:
    return session.scalars(
        select(CompletionRequest).where(
            CompletionRequest.item_id == item_id,
            CompletionRequest.decision == CompletionDecision.PENDING,
        )
    ).first()


def _open_closure(session: Session, item_id: int) -> ItemClosure | None:
    return session.scalars(
        select(ItemClosure).where(ItemClosure.item_id == item_id, ItemClosure.reopened_at.is_(None))
    ).first()


def closure_facts(*, session: Session, item: Item) -> ItemClosureFacts:
    """What `models.closure` needs of `item`: closed since, lead departments, pending request."""
    pending = _pending_request(session, item.id)
    return ItemClosureFacts(
        label=item_label(item),
        closed_on=local_date(item.closed_at) if item.closed_at is not None else None,
        lead_department_ids=frozenset(d.id for d in _leads(session, item.id)),
        pending_request_id=pending.id if pending is not None else None,
    )


def _offices(session: Session) -> list[Department]:
    return list(
        session.scalars(
            select(Department)
            .where(Department.is_supervision_office.is_(True))
            .order_by(Department.id)
        )
    )


def _event(
    *,
    session: Session,
    event_type: EventType,
    item: Item,
    departments: Sequence[Department],
    now: datetime,
    payload: dict[str, Any],
) -> None:
    record_event(
        session=session,
        event_type=event_type,
        resource_id=f"duban.item.{item.id}",
        occurred_at=now,
        now=now,
        related_resources=[
            *(related("department", d.id, d.name) for d in departments),
            related("plan", item.plan_id, item.plan.title[:200]),
        ],
        payload={"item_id": item.id, **payload},
    )


def _mail(
    *,
    session: Session,
    key: str,
    item: Item,
    departments: Sequence[Department],
    action: str,
    details: dict[str, Any],
    now: datetime,
    settings: Settings | None,
) -> None:
    """One email of `action` per department (to its contacts, copied to the office), with
    the item's details and the form link of its next pending check-in, if any."""
    settings = settings or get_settings()
    office = list(dict.fromkeys(str(e) for o in _offices(session) for e in o.contact_emails))
    loaded = load_item(session, item.id)
    pending = next_pending_checkins(session, pairs={(item.id, d.id) for d in departments})
    for department in departments:
        to = [str(e) for e in department.contact_emails]
        cc = [e for e in office if e not in to]
        if not to and not cc:
            continue
        context = item_context(
            session=session,
            settings=settings,
            item=loaded,
            department=department,
            checkin=pending.get((item.id, department.id)),
            now=now,
            recipient_name=f"{department.name} {department.contact_name}".strip(),
        )
        context["closure"] = {"action": action, **details}
        rendered = render_message(MAIL_KIND, context)
        enqueue_message(
            session=session,
            key=f"{key}:{department.id}",
            kind=MAIL_KIND,
            to=to or cc,
            cc=cc if to else [],
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            now=now,
        )


def _department(session: Session, department_id: int) -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise NotFoundError(f"部门 {department_id} 不存在。")
    return department


def request_completion(
    *,
    session: Session,
    item_id: int,
    department_id: int,
    summary: str,
    now: datetime,
    requested_by: str = "",
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> CompletionRequest:
    """The lead department asks to close the item (申请办结) with a closing summary.

    A repeated `idempotency_key` returns the request it created. Raises `InputError`
    (not the lead, item closed, a request already pending, no summary) with nothing
    written. Writes the request, `duban.item.completion_requested` and the email.
    """
    if idempotency_key is not None:
        existing = session.scalars(
            select(CompletionRequest).where(CompletionRequest.idempotency_key == idempotency_key)
        ).first()
        if existing is not None:
            if existing.item_id != item_id:
                raise InputError("重复提交标识与任务不符，请重新打开邮件中的链接后再提交。")
            return existing
    item = _item(session, item_id)
    text = check_request(
        closure_facts(session=session, item=item), department_id=department_id, summary=summary
    )
    department = _department(session, department_id)
    request = CompletionRequest(
        item_id=item.id,
        department_id=department.id,
        summary=text,
        requested_at=now,
        requested_by=requested_by[:100] or department.name,
        idempotency_key=idempotency_key,
    )
    session.add(request)
    session.flush()
    _event(
        session=session,
        event_type=EventType.ITEM_COMPLETION_REQUESTED,
        item=item,
        departments=[department],
        now=now,
        payload={"completion_request_id": request.id, "department_id": department.id},
    )
    _mail(
        session=session,
        key=f"completion:{request.id}:requested",
        item=item,
        departments=[department],
        action="requested",
        details={"summary": text, "request_id": request.id, "by": request.requested_by},
        now=now,
        settings=settings,
    )
    return request


def _decidable(session: Session, request_id: int) -> tuple[CompletionRequest, Item]:
    request = session.get(CompletionRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFoundError(
            f"没有编号为 {request_id} 的办结申请（用 duban item completion list 查看）。"
        )
    return request, _item(session, request.item_id)


def _close(
    *,
    session: Session,
    item: Item,
    by: str,
    reason: str,
    at: datetime,
    request: CompletionRequest | None,
    settings: Settings | None,
) -> ClosureResult:
    rows = session.execute(
        select(Checkin.id, Checkin.status).where(Checkin.item_id == item.id)
    ).tuples()
    cancelled = checkins_to_cancel(rows)
    if cancelled:
        session.execute(
            update(Checkin)
            .where(Checkin.id.in_(cancelled), Checkin.status == CheckinStatus.PENDING)
            .values(status=CheckinStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        )
    closure = ItemClosure(
        item_id=item.id,
        completion_request_id=request.id if request is not None else None,
        closed_at=at,
        closed_by=by[:100],
        reason=reason,
        cancelled_checkins=cancelled,
    )
    session.add(closure)
    item.closed_at = at
    session.flush()
    leads = _leads(session, item.id)
    if request is not None and request.department_id not in {d.id for d in leads}:
        leads = [_department(session, request.department_id), *leads]
    _event(
        session=session,
        event_type=EventType.ITEM_CLOSED,
        item=item,
        departments=leads,
        now=at,
        payload={
            "closure_id": closure.id,
            "completion_request_id": closure.completion_request_id,
            "reason": reason,
            "closed_by": closure.closed_by,
            "cancelled_checkins": len(cancelled),
        },
    )
    _mail(
        session=session,
        key=f"closure:{closure.id}:closed",
        item=item,
        departments=leads,
        action="approved" if request is not None else "closed",
        details={
            "reason": reason,
            "by": closure.closed_by,
            "summary": request.summary if request is not None else "",
            "request_id": request.id if request is not None else None,
            "closed_on": local_date(at),
        },
        now=at,
        settings=settings,
    )
    return ClosureResult(item_id=item.id, closure_id=closure.id, cancelled=len(cancelled))


def approve_completion(
    session: Session,
    request_id: int,
    by: str,
    at: datetime,
    note: str = "",
    *,
    settings: Settings | None = None,
) -> ClosureResult:
    """Approve a pending completion request (销号): the item is closed at `at`.

    Cancels the item's pending check-ins (no further prompt, reminder or escalation),
    records the closure and `duban.item.closed`, emails the lead department and the office.
    Raises `InputError` for a request already decided or an item already closed.
    """
    request, item = _decidable(session, request_id)
    text = check_decision(
        closure_facts(session=session, item=item),
        request_id=request.id,
        decision=request.decision,
        approve=True,
        reason=note,
    )
    request.decision = CompletionDecision.APPROVED
    request.decided_by = by[:100]
    request.decided_at = at
    request.reason = text
    return _close(
        session=session,
        item=item,
        by=by,
        reason=text or "办结申请审核通过",
        at=at,
        request=request,
        settings=settings,
    )


def reject_completion(
    session: Session,
    request_id: int,
    by: str,
    reason: str,
    at: datetime,
    *,
    settings: Settings | None = None,
) -> CompletionRequest:
    """Reject a pending completion request with a reason (驳回): the item carries on.

    Writes `duban.item.completion_rejected` and emails the department the reason. Raises
    `InputError` for a missing reason or a request already decided, with nothing written.
    """
    request, item = _decidable(session, request_id)
    text = check_decision(
        closure_facts(session=session, item=item),
        request_id=request.id,
        decision=request.decision,
        approve=False,
        reason=reason,
    )
    request.decision = CompletionDecision.REJECTED
    request.decided_by = by[:100]
    request.decided_at = at
    request.reason = text
    department = _department(session, request.department_id)
    session.flush()
    _event(
        session=session,
        event_type=EventType.ITEM_COMPLETION_REJECTED,
        item=item,
        departments=[department],
        now=at,
        payload={
            "completion_request_id": request.id,
            "department_id": department.id,
            "reason": text,
            "decided_by": request.decided_by,
        },
    )
    _mail(
        session=session,
        key=f"completion:{request.id}:rejected",
        item=item,
        departments=[department],
        action="rejected",
        details={
            "reason": text,
            "by": request.decided_by,
            "summary": request.summary,
            "request_id": request.id,
        },
        now=at,
        settings=settings,
    )
    return request


def close_item(
    session: Session,
    item_id: int,
    by: str,
    reason: str,
    at: datetime,
    *,
    settings: Settings | None = None,
) -> ClosureResult:
    """The office closes an open item directly (e.g. cancelled by a decision), with a reason.

    A pending completion request of the item is approved with it. Raises `InputError` for
    a missing reason or an item already closed.
    """
    item = _item(session, item_id)
    facts = closure_facts(session=session, item=item)
    text = check_close(facts, reason=reason)
    request = None
    if facts.pending_request_id is not None:
        request = session.get(CompletionRequest, facts.pending_request_id)
        if request is not None:
            request.decision = CompletionDecision.APPROVED
            request.decided_by = by[:100]
            request.decided_at = at
            request.reason = text
    return _close(
        session=session, item=item, by=by, reason=text, at=at, request=request, settings=settings
    )


def reopen_item(
    session: Session,
    item_id: int,
    by: str,
    reason: str,
    at: datetime,
    *,
    settings: Settings | None = None,
) -> ReopenResult:
    """Reopen a closed item with a reason: supervision resumes from `at`.

    The check-ins the closure cancelled that are due from `at`'s date are pending again,
    the schedule (`tasks.checkins.materialise_checkins`) adds the missing ones from then
    on, the closure row records the reopen, and `duban.item.reopened` and its email are
    written. Raises `InputError` for a missing reason or an item that is not closed.
    """
    item = _item(session, item_id)
    text = check_reopen(closure_facts(session=session, item=item), reason=reason)
    closure = _open_closure(session, item.id)
    today = local_date(at)
    restored: list[int] = []
    if closure is not None:
        rows = session.execute(
            select(Checkin.id, Checkin.status, Checkin.due_date).where(Checkin.item_id == item.id)
        ).tuples()
        restored = checkins_to_restore(
            rows, cancelled=[int(i) for i in closure.cancelled_checkins], today=today
        )
        closure.reopened_at = at
        closure.reopened_by = by[:100]
        closure.reopen_reason = text
    if restored:
        session.execute(
            update(Checkin)
            .where(Checkin.id.in_(restored), Checkin.status == CheckinStatus.CANCELLED)
            .values(status=CheckinStatus.PENDING)
            .execution_options(synchronize_session=False)
        )
    item.closed_at = None
    session.flush()
    created = _replan(session=session, item=item, at=at)
    leads = _leads(session, item.id)
    _event(
        session=session,
        event_type=EventType.ITEM_REOPENED,
        item=item,
        departments=leads,
        now=at,
        payload={
            "closure_id": closure.id if closure is not None else None,
            "reason": text,
            "reopened_by": by[:100],
            "restored_checkins": len(restored),
            "created_checkins": created,
        },
    )
    _mail(
        session=session,
        key=f"closure:{closure.id if closure is not None else f'item{item.id}'}:reopened",
        item=item,
        departments=leads,
        action="reopened",
        details={"reason": text, "by": by[:100], "summary": "", "request_id": None},
        now=at,
        settings=settings,
    )
    return ReopenResult(item_id=item.id, restored=len(restored), created=created)


def _replan(*, session: Session, item: Item, at: datetime) -> int:
    """Insert the check-ins the schedule asks of the item from `at` on and that are missing."""
    plan: Plan = item.plan
    if plan.started_at is None:
        return 0
    policy = parse_policy(plan.policy or None)
    calendar = work_calendar(session=session)
    specs = schedule_for_plan(
        session=session,
        plan=plan,
        policy=policy,
        calendar=calendar,
        not_before=local_date(plan.started_at),
    )
    windows = plan_windows(session=session, plan=plan, policy=policy)
    per_item = own_schedules(
        items=[item], windows=windows, specs=specs, policy=policy, calendar=calendar
    )
    counts = materialise_checkins(
        session=session,
        plan_id=plan.id,
        specs=specs,
        now=at,
        item_ids=[item.id],
        per_item=per_item,
    )
    return counts.get(item.id, 0)


def completion_requests(
    *,
    session: Session,
    plan_id: int | None = None,
    decision: CompletionDecision | None = CompletionDecision.PENDING,
) -> list[PendingCompletion]:
    """Completion requests (pending only by default; all with `decision=None`), oldest first."""
    query = (
        select(CompletionRequest, Item, Department)
        .join(Item, Item.id == CompletionRequest.item_id)
        .join(Department, Department.id == CompletionRequest.department_id)
        .order_by(CompletionRequest.requested_at, CompletionRequest.id)
    )
    if decision is not None:
        query = query.where(CompletionRequest.decision == decision)
    if plan_id is not None:
        query = query.where(Item.plan_id == plan_id)
    return [
        PendingCompletion(
            request_id=request.id,
            item_id=item.id,
            item_label=item_label(item),
            plan_id=item.plan_id,
            department_id=department.id,
            department=department.name,
            summary=request.summary,
            requested_at=request.requested_at,
            requested_by=request.requested_by,
            decision=request.decision,
            reason=request.reason,
        )
        for request, item, department in session.execute(query).tuples()
    ]


def pending_completions(*, session: Session, plan_id: int | None = None) -> list[PendingCompletion]:
    """The completion requests awaiting the office's decision, oldest first (the inbox)."""
    return completion_requests(session=session, plan_id=plan_id)


def closed_items(
    *, session: Session, plan_id: int, start: date | None = None, end: date | None = None
) -> dict[int, date]:
    """Item id -> local closing date of the plan's items closed now, optionally only those
    closed within [start, end]."""
    found: dict[int, date] = {}
    for item_id, closed_at in session.execute(
        select(Item.id, Item.closed_at).where(Item.plan_id == plan_id, Item.closed_at.is_not(None))
    ).tuples():
        if closed_at is None:
            continue
        day = local_date(closed_at)
        if (start is None or day >= start) and (end is None or day <= end):
            found[int(item_id)] = day
    return found
