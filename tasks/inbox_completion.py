"""The inbox's completion source (办结申请 / 销号): requests waiting for 批准 / 驳回.

A decision is keyed by the completion request's id. Applying goes through `tasks.closure`
(`approve_completion` / `reject_completion`), the functions `duban item completion …` uses.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.clock import LOCAL_TZ
from models.completion import CompletionRequest
from models.inbox import Answer, PendingDecision
from models.plan import Item
from models.supervision import LATEST_FIRST, Checkin, Submission
from models.vocabulary import CompletionDecision, InboxKind
from tasks.attachments import attachments_of_completion_requests
from tasks.closure import (
    PendingCompletion,
    approve_completion,
    pending_completions,
    reject_completion,
)
from tasks.inbox import InboxSource, register, target_figures


def _header(pending: PendingCompletion) -> PendingDecision:
    return PendingDecision(
        kind=InboxKind.COMPLETION,
        decision_id=pending.request_id,
        plan_id=pending.plan_id,
        item_id=pending.item_id,
        item_label=pending.item_label,
        department=pending.department,
        requested_at=pending.requested_at,
    )


def pending_completion_requests(session: Session, plan_id: int) -> list[PendingDecision]:
    """The plan's completion requests awaiting the office (`tasks.closure.pending_completions`)."""
    return [_header(pending) for pending in pending_completions(session=session, plan_id=plan_id)]


def load_completion(session: Session, request_id: int, now: datetime) -> PendingDecision | None:
    """The request: its closing summary, who asked and when, its evidence, and the
    department's latest figures against the item's targets."""
    del now
    request = session.get(CompletionRequest, request_id)
    if request is None or request.decision != CompletionDecision.PENDING:
        return None
    item = session.scalars(
        select(Item).where(Item.id == request.item_id).options(selectinload(Item.targets))
    ).one()
    found = [
        pending
        for pending in pending_completions(session=session, plan_id=item.plan_id)
        if pending.request_id == request_id
    ]
    if not found:
        return None
    latest = session.scalars(
        select(Submission)
        .join(Checkin, Checkin.id == Submission.checkin_id)
        .where(Checkin.item_id == item.id, Checkin.department_id == request.department_id)
        .order_by(*LATEST_FIRST)
        .limit(1)
    ).first()
    requested = request.requested_at.astimezone(LOCAL_TZ)
    evidence = attachments_of_completion_requests(
        session=session, completion_request_ids=[request.id]
    )
    return replace(
        _header(found[0]),
        facts=(
            ("申请人", request.requested_by or "（未填写）"),
            ("申请时间", f"{requested:%Y-%m-%d %H:%M}"),
        ),
        texts=(("办结情况（工作总结）", request.summary),),
        figures=target_figures(item, latest),
        attachments=tuple(info.file_name for info in evidence.get(request.id, [])),
    )


def completion_is_pending(session: Session, request_id: int) -> bool:
    """True while the request is undecided; locks its row (PostgreSQL) for the apply."""
    request = session.get(CompletionRequest, request_id, with_for_update=True)
    return request is not None and request.decision == CompletionDecision.PENDING


def apply_completion(session: Session, answer: Answer, now: datetime) -> str:
    """Approve (`approve_completion`, 销号) or reject with the reason (`reject_completion`)."""
    if answer.approve:
        result = approve_completion(session, answer.decision_id, answer.decided_by, now)
        return (
            f"已批准办结申请 {answer.decision_id}：任务已销号，取消待报送 {result.cancelled} 项。"
        )
    reject_completion(session, answer.decision_id, answer.decided_by, answer.reason, now)
    return f"已驳回办结申请 {answer.decision_id}：{answer.reason}"


register(
    InboxSource(
        kind=InboxKind.COMPLETION,
        pending=pending_completion_requests,
        load=load_completion,
        is_pending=completion_is_pending,
        apply=apply_completion,
    )
)
