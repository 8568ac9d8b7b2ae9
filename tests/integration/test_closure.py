"""Completion and 销号 on SQLite and PostgreSQL: request, approve, reject, close, reopen.

Each change writes its rows, its domain event and its email in the caller's transaction;
bad input raises a Chinese `InputError` and leaves every table as it was; the daily pass
sends a closed item nothing on later days and supervises a reopened one again.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import resolve
from models.completion import CompletionRequest, ItemClosure
from models.errors import InputError
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.supervision import Checkin, Notice
from models.vocabulary import CheckinStatus, CompletionDecision, EventType, ItemState
from tasks.closure import (
    approve_completion,
    close_item,
    completion_requests,
    pending_completions,
    reject_completion,
    reopen_item,
    request_completion,
)
from tests.integration.test_reconcile import run, started_plan


def at(day: date) -> datetime:
    return resolve(day)


def counts(session: Session) -> tuple[int, ...]:
    """Rows in every table a closure change writes (to show a refusal wrote nothing)."""
    session.flush()
    tables = (CompletionRequest, ItemClosure, DomainEvent, OutboxMessage, Notice)
    rows = [int(session.scalar(select(func.count()).select_from(t)) or 0) for t in tables]
    pending = select(func.count()).where(Checkin.status == CheckinStatus.PENDING)
    return (*rows, int(session.scalar(pending) or 0))


def events(session: Session, event_type: EventType) -> list[DomainEvent]:
    return list(
        session.scalars(
            select(DomainEvent).where(DomainEvent.type == event_type).order_by(DomainEvent.id)
        )
    )


def mails(session: Session, prefix: str) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.key.startswith(prefix))
            .order_by(OutboxMessage.key)
        )
    )


def pending_dues(session: Session, item_id: int) -> list[date]:
    return list(
        session.scalars(
            select(Checkin.due_date)
            .where(Checkin.item_id == item_id, Checkin.status == CheckinStatus.PENDING)
            .order_by(Checkin.due_date)
        )
    )


def test_request_then_approve_closes_the_item_and_the_pass_sends_nothing_more(
    session: Session,
) -> None:
    built, lead, support = started_plan(session)
    item = built.items[0]
    assert run(session, item.id, date(2021, 6, 23))
    request = request_completion(
        session=session,
        item_id=item.id,
        department_id=lead,
        summary="  已建成平台并投入运行，全年举办活动 212 场次。 ",
        now=at(date(2021, 9, 1)),
    )
    assert request.summary == "已建成平台并投入运行，全年举办活动 212 场次。"
    assert request.decision == CompletionDecision.PENDING
    [requested] = events(session, EventType.ITEM_COMPLETION_REQUESTED)
    assert requested.payload == {
        "item_id": item.id,
        "completion_request_id": request.id,
        "department_id": lead,
    }
    roles = {r["prefect.resource.role"] for r in requested.related}
    assert roles == {"department", "plan"}
    [asked] = mails(session, f"completion:{request.id}:requested")
    assert asked.subject.startswith("【办结申请】第1项")
    assert "全年举办活动 212 场次" in asked.text_body
    [pending] = pending_completions(session=session, plan_id=built.plan.id)
    assert (pending.request_id, pending.item_id, pending.department_id) == (
        request.id,
        item.id,
        lead,
    )

    before = pending_dues(session, item.id)
    assert (before[0], len(before)) == (date(2021, 6, 30), 7)
    result = approve_completion(session, request.id, "督查室 赵敏", at(date(2021, 9, 3)))
    assert result.cancelled == len(before)
    assert pending_dues(session, item.id) == []
    assert session.get(Item, item.id).closed_at == at(date(2021, 9, 3))  # type: ignore[union-attr]
    assert request.decision == CompletionDecision.APPROVED
    assert (request.decided_by, request.decided_at) == ("督查室 赵敏", at(date(2021, 9, 3)))
    [closed] = events(session, EventType.ITEM_CLOSED)
    assert closed.payload["completion_request_id"] == request.id
    assert closed.payload["cancelled_checkins"] == len(before)
    [approved] = mails(session, f"closure:{result.closure_id}:closed")
    assert approved.subject.startswith("【办结销号】第1项")
    assert "予以销号，于2021年9月3日（星期五）办结" in approved.text_body
    assert approved.cc_addrs, "the office is copied"
    assert pending_completions(session=session) == []

    notices = int(session.scalar(select(func.count()).select_from(Notice)) or 0)
    for day in (date(2021, 9, 17), date(2021, 9, 27), date(2021, 10, 8), date(2021, 12, 31)):
        assert run(session, item.id, day) == []
    assert int(session.scalar(select(func.count()).select_from(Notice)) or 0) == notices
    assert pending_dues(session, item.id) == []

    with pytest.raises(InputError, match="已处理（已销号），不能再次审核"):
        approve_completion(session, request.id, "督查室", at(date(2021, 9, 4)))
    frozen = counts(session)
    with pytest.raises(InputError, match="已于 2021-09-03 办结（销号），无需再申请办结"):
        request_completion(
            session=session,
            item_id=item.id,
            department_id=lead,
            summary="再次",
            now=at(date(2021, 9, 5)),
        )
    with pytest.raises(InputError, match="只有第1项"):
        request_completion(
            session=session,
            item_id=item.id,
            department_id=support,
            summary="x",
            now=at(date(2021, 9, 5)),
        )
    assert counts(session) == frozen


def test_reject_keeps_the_item_supervised_and_mails_the_reason(session: Session) -> None:
    built, lead, _support = started_plan(session)
    item = built.items[0]
    request = request_completion(
        session=session,
        item_id=item.id,
        department_id=lead,
        summary="已完成",
        now=at(date(2021, 7, 1)),
    )
    frozen = counts(session)
    with pytest.raises(InputError, match="已有一份办结申请"):
        request_completion(
            session=session,
            item_id=item.id,
            department_id=lead,
            summary="再交一份",
            now=at(date(2021, 7, 2)),
        )
    with pytest.raises(InputError, match="请填写驳回理由"):
        reject_completion(session, request.id, "督查室", "  ", at(date(2021, 7, 2)))
    assert counts(session) == frozen

    reject_completion(session, request.id, "督查室 赵敏", "佐证材料不足", at(date(2021, 7, 2)))
    assert request.decision == CompletionDecision.REJECTED
    assert request.reason == "佐证材料不足"
    assert session.get(Item, item.id).closed_at is None  # type: ignore[union-attr]
    [rejected] = events(session, EventType.ITEM_COMPLETION_REJECTED)
    assert rejected.payload["reason"] == "佐证材料不足"
    [mail] = mails(session, f"completion:{request.id}:rejected")
    assert mail.subject.startswith("【办结申请驳回】第1项")
    assert "驳回理由：佐证材料不足" in mail.text_body
    assert "/c/" in mail.text_body, "the form link of the next check-in"
    assert mail.to_addrs and mail.to_addrs[0].startswith("contact-")
    assert run(session, item.id, date(2021, 7, 16)), "the ladder carries on"
    second = request_completion(
        session=session,
        item_id=item.id,
        department_id=lead,
        summary="补充材料后再申请",
        now=at(date(2021, 7, 20)),
    )
    assert [p.request_id for p in pending_completions(session=session)] == [second.id]
    assert len(completion_requests(session=session, decision=None)) == 2


def test_office_closes_directly_and_reopen_plans_check_ins_again(session: Session) -> None:
    built, _lead, _support = started_plan(session)
    item = built.items[0]
    frozen = counts(session)
    with pytest.raises(InputError, match="请填写销号理由"):
        close_item(session, item.id, "督查室", "", at(date(2021, 8, 2)))
    with pytest.raises(InputError, match="尚未办结，无需重新打开"):
        reopen_item(session, item.id, "督查室", "整改", at(date(2021, 8, 2)))
    assert counts(session) == frozen

    result = close_item(session, item.id, "督查室", "经主席办公会研究取消", at(date(2021, 8, 2)))
    assert result.cancelled == 7
    closure = session.get(ItemClosure, result.closure_id)
    assert closure is not None and closure.completion_request_id is None
    [mail] = mails(session, f"closure:{result.closure_id}:closed")
    assert "销号理由：经主席办公会研究取消" in mail.text_body
    assert run(session, item.id, date(2021, 8, 27)) == []
    with pytest.raises(InputError, match="已于 2021-08-02 办结，无需再次销号"):
        close_item(session, item.id, "督查室", "重复", at(date(2021, 8, 3)))

    with pytest.raises(InputError, match="请填写重新打开的理由"):
        reopen_item(session, item.id, "督查室", " ", at(date(2021, 10, 8)))
    reopened = reopen_item(session, item.id, "督查室 赵敏", "整改未到位", at(date(2021, 10, 8)))
    assert (reopened.restored, reopened.created) == (3, 0)
    assert pending_dues(session, item.id) == [
        date(2021, 10, 25),
        date(2021, 11, 25),
        date(2021, 12, 31),
    ]
    assert closure.reopened_at == at(date(2021, 10, 8))
    assert (closure.reopened_by, closure.reopen_reason) == ("督查室 赵敏", "整改未到位")
    assert session.get(Item, item.id).closed_at is None  # type: ignore[union-attr]
    [event] = events(session, EventType.ITEM_REOPENED)
    assert event.payload["restored_checkins"] == 3
    [mail] = mails(session, f"closure:{result.closure_id}:reopened")
    assert mail.subject.startswith("【办结任务重新督办】第1项")
    assert "2021年10月25日" in mail.text_body, "the next due date"
    notices = run(session, item.id, date(2021, 10, 18))
    assert notices == [f"checkin:{first_pending(session, item.id)}:request:e0"]
    assert run(session, item.id, date(2021, 10, 18)) == [], "a re-run changes nothing"

    again = close_item(session, item.id, "督查室", "再次销号", at(date(2021, 11, 1)))
    assert again.closure_id != result.closure_id
    assert session.scalar(select(func.count()).select_from(ItemClosure)) == 2


def first_pending(session: Session, item_id: int) -> int:
    return int(
        session.scalars(
            select(Checkin.id)
            .where(Checkin.item_id == item_id, Checkin.status == CheckinStatus.PENDING)
            .order_by(Checkin.due_date)
        ).first()
        or 0
    )


def test_a_repeated_form_post_records_one_request(session: Session) -> None:
    built, lead, _support = started_plan(session)
    item = built.items[0]
    first = request_completion(
        session=session,
        item_id=item.id,
        department_id=lead,
        summary="已完成",
        now=at(date(2021, 9, 1)),
        idempotency_key="k" * 64,
    )
    again = request_completion(
        session=session,
        item_id=item.id,
        department_id=lead,
        summary="已完成",
        now=at(date(2021, 9, 1)),
        idempotency_key="k" * 64,
    )
    assert again.id == first.id
    assert len(events(session, EventType.ITEM_COMPLETION_REQUESTED)) == 1


def test_the_pass_result_of_a_closed_item_is_closed(session: Session) -> None:
    from models.calendar import WorkCalendar
    from models.policy import default_policy
    from tasks.reconcile import reconcile_item

    built, _lead, _support = started_plan(session)
    item = built.items[0]
    close_item(session, item.id, "督查室", "取消", at(date(2021, 8, 2)))
    result = reconcile_item(
        session=session,
        item_id=item.id,
        as_of=at(date(2021, 8, 27)),
        policy=default_policy(),
        calendar=WorkCalendar(),
    )
    assert result.state == ItemState.CLOSED
    assert (result.checkins_created, result.notices) == (0, [])


def test_the_quarter_review_reads_closures_as_they_stood(session: Session) -> None:
    from models.review import quarter_period
    from models.review_figures import build_review
    from tasks.reporting.data import load_plan_row, load_review_inputs

    built, _lead, _support = started_plan(session)
    item = built.items[0]
    result = close_item(session, item.id, "督查室", "经研究取消", at(date(2021, 8, 2)))
    reopen_item(session, item.id, "督查室", "恢复", at(date(2021, 10, 8)))
    plan = load_plan_row(session=session, plan_id=built.plan.id)
    q3 = quarter_period(2021, 3)
    third = build_review(
        load_review_inputs(session=session, plan=plan, period=q3, as_of=at(date(2021, 9, 30)))
    )
    assert [(c.number, c.closed_on, c.reason) for c in third.closed] == [
        ("1", date(2021, 8, 2), "经研究取消")
    ]
    assert third.sections[0].items[0].closed_on == date(2021, 8, 2)
    q4 = quarter_period(2021, 4)
    fourth = build_review(
        load_review_inputs(session=session, plan=plan, period=q4, as_of=at(date(2021, 12, 31)))
    )
    assert fourth.closed == ()
    assert fourth.sections[0].items[0].closed_on is None
    assert result.closure_id


def test_closing_or_reopening_re_supervises_the_item_at_once() -> None:
    from tests.integration.test_deployments import TEMPLATE, _deployments

    triggers = _deployments()["supervise-item"]["triggers"]
    [trigger] = [t for t in triggers if "duban.item.closed" in t["expect"]]
    assert {EventType.ITEM_CLOSED, EventType.ITEM_REOPENED} <= set(trigger["expect"])
    assert trigger["match"]["prefect.resource.id"] == "duban.item.*"
    match = TEMPLATE.match(trigger["parameters"]["item_id"])
    assert match is not None and match["expr"] == "event.payload.item_id"


def test_a_closed_item_run_is_named_and_ends_as_closed(session: Session) -> None:
    from flows.supervise import state_name
    from tasks.supervision import item_run_label

    built, _lead, _support = started_plan(session)
    item = built.items[0]
    close_item(session, item.id, "督查室", "取消", at(date(2021, 8, 2)))
    session.flush()
    sessions = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    assert item_run_label(sessions, item.id).endswith("（已办结）")
    assert state_name(ItemState.CLOSED) == "已办结"
    assert state_name(ItemState.OVERDUE) == "Overdue"
