"""The office's review of reports (审核/退回) on SQLite and PostgreSQL.

One lead department's work plan, due Wednesday 2021-06-30 (the mobilize phase's last day),
worked out by hand on the 2021 calendar with `review.office_workdays: 3` and
`review.return_workdays: 5`:

- submitted Monday 06-28 10:00: the office has until Thursday 07-01 (3 working days);
  the pass on 07-01 says nothing, the pass on Friday 07-02 escalates to the office's
  主要负责人 once (a re-run and Monday's pass add nothing);
- returned Monday 07-05: due max(06-30, 07-05 + 5 working days) = Monday 07-12; the ladder
  restarts under epoch 1: request from 07-05 (5 working days before 07-12), reminder on
  07-12, level 1 on 07-13, level 2 on Thursday 07-15, level 3 on Monday 07-19;
- answered (version 2) Friday 07-16 and accepted Monday 07-19: closed, and the item is not
  red for it.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import LOCAL_TZ, resolve
from models.directory import Department
from models.errors import InputError
from models.forms import SubmissionForm
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.policy import ReviewRule, SupervisionPolicy, default_policy
from models.report_review import ReviewSelection
from models.review import quarter_period
from models.review_figures import build_review
from models.supervision import Checkin, CheckinReview, Notice
from models.vocabulary import CheckinStatus, ReviewDecision
from tasks.assignment import start_supervision
from tasks.reconcile import reconcile_items
from tasks.report_review import (
    accept_report,
    decide_selection,
    pending_reviews,
    return_report,
)
from tasks.reporting.chapters import department_blocks
from tasks.reporting.data import load_plan_row, load_review_inputs
from tasks.submissions import CheckinClosed, accepts_answers, record_submission
from tests.builders import BuiltPlan, make_department, make_plan
from tests.integration.test_pass_statements import counting

CALENDAR = WorkCalendar()
POLICY = default_policy().model_copy(
    update={"review": ReviewRule(office_workdays=3, return_workdays=5)}
)


def at(day: date, hour: int = 9) -> datetime:
    return resolve(datetime(day.year, day.month, day.day, hour, 0, tzinfo=LOCAL_TZ))


def supervised(
    session: Session, policy: SupervisionPolicy = POLICY, items: int = 1
) -> tuple[BuiltPlan, list[Checkin]]:
    """A started plan whose items each have their own lead; the lead's work plans."""
    office = make_department(session, office=True)
    office.head_name = "督查室主任"
    built = make_plan(
        session,
        items=[(f"任务{n}", [make_department(session)], []) for n in range(items)],
    )
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=policy,
        calendar=CALENDAR,
    )
    work_plans = list(
        session.scalars(
            select(Checkin)
            .where(
                Checkin.item_id.in_([item.id for item in built.items]),
                Checkin.kind == "work_plan",
            )
            .order_by(Checkin.item_id)
        )
    )
    assert [c.due_date for c in work_plans] == [date(2021, 6, 30)] * items
    return built, work_plans


def submit(session: Session, checkin: Checkin, when: datetime, status: str = "on_track") -> None:
    record_submission(
        session=session,
        checkin_id=checkin.id,
        department_id=checkin.department_id,
        form=SubmissionForm(status=status, narrative="工作方案已印发"),
        source="cli",
        now=when,
    )


def run_pass(session: Session, built: BuiltPlan, day: date) -> list[str]:
    results = reconcile_items(
        session=session,
        plan_id=built.plan.id,
        item_ids=[item.id for item in built.items],
        as_of=resolve(day),
        policy=POLICY,
        calendar=CALENDAR,
    )
    session.flush()
    return [key for result in results for key in result.notices]


def mine(built: BuiltPlan) -> ReviewSelection:
    """This test's plan only: other tests (and processes) commit reports to the same database."""
    return ReviewSelection(plan_id=built.plan.id)


def count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def checkin_events(session: Session, checkin: Checkin) -> list[str]:
    return list(
        session.scalars(
            select(DomainEvent.type)
            .where(DomainEvent.resource_id == f"duban.checkin.{checkin.id}")
            .order_by(DomainEvent.id)
        )
    )


def test_accept_closes_the_checkin_with_its_event(session: Session) -> None:
    built, (checkin,) = supervised(session)
    submit(session, checkin, at(date(2021, 6, 28), 10))
    waiting = pending_reviews(
        session, selection=mine(built), as_of=at(date(2021, 6, 29)), calendar=CALENDAR
    )
    assert [p.candidate.checkin_id for p in waiting] == [checkin.id]
    assert waiting[0].review_due == date(2021, 7, 1)
    assert not waiting[0].overdue
    outcome = accept_report(session, checkin.id, "督查室 赵敏", at(date(2021, 6, 29)))
    session.flush()
    assert outcome.decision == ReviewDecision.ACCEPTED
    row = session.get(CheckinReview, outcome.review_id)
    assert row is not None
    assert (row.decision, row.reviewer, row.reason) == ("accepted", "督查室 赵敏", "")
    assert row.decided_at == at(date(2021, 6, 29))
    assert checkin.review == ReviewDecision.ACCEPTED
    assert checkin.status == CheckinStatus.SUBMITTED
    assert not accepts_answers(checkin)
    assert checkin_events(session, checkin)[-1] == "duban.checkin.accepted"
    assert pending_reviews(session, selection=mine(built)) == []
    with pytest.raises(CheckinClosed):
        submit(session, checkin, at(date(2021, 6, 30)))


def test_return_emails_the_department_and_the_ladder_resumes(session: Session) -> None:
    built, (checkin,) = supervised(session)
    submit(session, checkin, at(date(2021, 6, 28), 10))
    # The office has until 07-01; the pass on 07-01 says nothing about the review.
    assert not [k for k in run_pass(session, built, date(2021, 7, 1)) if "review" in k]
    keys = run_pass(session, built, date(2021, 7, 2))
    assert f"checkin:{checkin.id}:review_overdue:r0" in keys
    notice = session.scalars(
        select(Notice).where(Notice.key == f"checkin:{checkin.id}:review_overdue:r0")
    ).one()
    office = session.scalars(
        select(OutboxMessage).where(OutboxMessage.notice_id == notice.id)
    ).one()
    assert office.to_addrs == [r["email"] for r in notice.recipients if r["role"] == "head"]
    assert office.cc_addrs and office.subject.startswith("【审核超时督办】")
    assert "2021年7月1日" in office.text_body
    before = (count(session, Notice), count(session, OutboxMessage), count(session, DomainEvent))
    assert run_pass(session, built, date(2021, 7, 2)) == []
    assert (
        count(session, Notice),
        count(session, OutboxMessage),
        count(session, DomainEvent),
    ) == before
    assert not [k for k in run_pass(session, built, date(2021, 7, 5)) if "review" in k]
    assert count(session, Notice) == before[0]

    reason = "方案未列明<b>责任人</b>和时间表，请补充。"
    outcome = return_report(
        session, checkin.id, "督查室 赵敏", reason, at(date(2021, 7, 5), 15), calendar=CALENDAR
    )
    session.flush()
    assert outcome.due_date == date(2021, 7, 12)
    assert (checkin.status, checkin.due_date, checkin.returns) == ("pending", date(2021, 7, 12), 1)
    assert checkin.submitted_at is None and checkin.escalation_level == 0
    assert checkin.return_reason == reason
    row = session.get(CheckinReview, outcome.review_id)
    assert row is not None
    assert (row.decision, row.reason, row.previous_due_date, row.due_date) == (
        "returned",
        reason,
        date(2021, 6, 30),
        date(2021, 7, 12),
    )
    event = session.scalars(
        select(DomainEvent).where(DomainEvent.type == "duban.checkin.returned")
    ).one()
    assert event.payload["reason"] == reason and event.payload["due_date"] == "2021-07-12"
    assert {r["prefect.resource.role"] for r in event.related} == {"item", "department", "plan"}
    mail = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key == outcome.email_key)
    ).one()
    assert mail.kind == "returned" and mail.subject.startswith("【退回】")
    assert reason in mail.text_body and "2021年7月12日" in mail.text_body
    assert "&lt;b&gt;责任人&lt;/b&gt;" in mail.html_body and "<b>责任人" not in mail.html_body
    assert "/c/" in mail.text_body  # the form link
    assert pending_reviews(session, selection=mine(built)) == []

    # The ladder after the return, epoch 1, by hand.
    assert run_pass(session, built, date(2021, 7, 6)) == [f"checkin:{checkin.id}:request:e1"]
    assert run_pass(session, built, date(2021, 7, 12)) == [f"checkin:{checkin.id}:reminder:e1"]
    assert run_pass(session, built, date(2021, 7, 15)) == [
        f"checkin:{checkin.id}:escalation:1:e1",
        f"checkin:{checkin.id}:escalation:2:e1",
    ]
    assert run_pass(session, built, date(2021, 7, 15)) == []
    item = session.get(Item, checkin.item_id)
    assert item is not None and item.colour == "red"

    # Version 2 answers the return; the office accepts; the item is not red for it.
    submit(session, checkin, at(date(2021, 7, 16), 10))
    assert checkin.status == CheckinStatus.SUBMITTED
    waiting = pending_reviews(session, selection=mine(built))
    assert [(p.candidate.checkin_id, p.version, p.returns) for p in waiting] == [(checkin.id, 2, 1)]
    accept_report(session, checkin.id, "督查室 赵敏", at(date(2021, 7, 19), 10))
    later = run_pass(session, built, date(2021, 7, 19))
    assert not [key for key in later if key.startswith(f"checkin:{checkin.id}:")]
    session.refresh(item)
    assert item.colour != "red"
    assert [
        row.decision
        for row in session.scalars(
            select(CheckinReview)
            .where(CheckinReview.checkin_id == checkin.id)
            .order_by(CheckinReview.id)
        )
    ] == ["returned", "accepted"]


def test_a_decision_taken_twice_is_refused_and_changes_nothing(session: Session) -> None:
    _, (checkin,) = supervised(session)
    submit(session, checkin, at(date(2021, 6, 28), 10))
    return_report(session, checkin.id, "赵敏", "太简略", at(date(2021, 6, 29)), calendar=CALENDAR)
    session.flush()
    before = (
        count(session, CheckinReview),
        count(session, DomainEvent),
        count(session, OutboxMessage),
    )
    with pytest.raises(InputError, match="已退回，正在等待部门重新报送"):
        return_report(session, checkin.id, "赵敏", "再退", at(date(2021, 6, 30)), calendar=CALENDAR)
    with pytest.raises(InputError, match="已退回"):
        accept_report(session, checkin.id, "赵敏", at(date(2021, 6, 30)))
    submit(session, checkin, at(date(2021, 7, 1)))
    accept_report(session, checkin.id, "赵敏", at(date(2021, 7, 2)))
    session.flush()
    after_accept = (
        count(session, CheckinReview),
        count(session, DomainEvent),
        count(session, OutboxMessage),
    )
    assert after_accept[0] == before[0] + 1
    with pytest.raises(InputError, match="已审核通过"):
        accept_report(session, checkin.id, "赵敏", at(date(2021, 7, 5)))
    with pytest.raises(InputError, match="已审核通过"):
        return_report(session, checkin.id, "赵敏", "x", at(date(2021, 7, 5)), calendar=CALENDAR)
    session.flush()
    assert (
        count(session, CheckinReview),
        count(session, DomainEvent),
        count(session, OutboxMessage),
    ) == after_accept


def test_a_return_needs_a_reason_and_a_pending_checkin_cannot_be_reviewed(
    session: Session,
) -> None:
    _, (checkin,) = supervised(session)
    with pytest.raises(InputError, match="待报送"):
        accept_report(session, checkin.id, "赵敏", at(date(2021, 6, 29)))
    submit(session, checkin, at(date(2021, 6, 28), 10))
    with pytest.raises(InputError, match="退回必须填写理由"):
        return_report(session, checkin.id, "赵敏", "  ", at(date(2021, 6, 29)), calendar=CALENDAR)
    assert count(session, CheckinReview) == 0
    assert checkin.status == CheckinStatus.SUBMITTED


def test_bulk_decisions_write_one_audit_row_event_and_email_each(session: Session) -> None:
    built, checkins = supervised(session, items=4)
    for n, checkin in enumerate(checkins):
        submit(session, checkin, at(date(2021, 6, 28), 10 + n), "at_risk" if n == 3 else "on_track")
    on_track = ReviewSelection(plan_id=built.plan.id, on_track_only=True)
    outcomes = decide_selection(
        session, on_track, ReviewDecision.ACCEPTED, "督查室", at(date(2021, 6, 29))
    )
    session.flush()
    assert [o.checkin_id for o in outcomes] == [c.id for c in checkins[:3]]
    rows = list(session.scalars(select(CheckinReview).order_by(CheckinReview.id)))
    assert [r.checkin_id for r in rows] == [c.id for c in checkins[:3]]
    assert {r.batch for r in rows} == {f"bulk plan={built.plan.id} on_track"}
    assert count(session, DomainEvent) >= 3
    accepted = session.scalar(
        select(func.count())
        .select_from(DomainEvent)
        .where(DomainEvent.type == "duban.checkin.accepted")
    )
    assert accepted == 3
    # The at-risk one is left; a bulk return of one item's reports needs a reason.
    left = ReviewSelection(item_id=checkins[3].item_id)
    with pytest.raises(InputError, match="理由"):
        decide_selection(session, left, ReviewDecision.RETURNED, "督查室", at(date(2021, 6, 29)))
    returned = decide_selection(
        session,
        left,
        ReviewDecision.RETURNED,
        "督查室",
        at(date(2021, 6, 29)),
        reason="风险未说明应对措施",
        calendar=CALENDAR,
    )
    session.flush()
    assert [o.checkin_id for o in returned] == [checkins[3].id]
    assert count(session, OutboxMessage) >= 1
    assert (
        session.scalars(select(OutboxMessage).where(OutboxMessage.key == returned[0].email_key))
        .one()
        .kind
        == "returned"
    )
    assert pending_reviews(session, selection=mine(built)) == []


def test_review_none_reviews_nothing(session: Session) -> None:
    policy = default_policy().model_copy(update={"review": ReviewRule(checkins="none")})
    built, (checkin,) = supervised(session, policy)
    submit(session, checkin, at(date(2021, 6, 28), 10))
    assert pending_reviews(session, selection=mine(built)) == []
    with pytest.raises(InputError, match="无需审核"):
        accept_report(session, checkin.id, "赵敏", at(date(2021, 6, 29)))
    assert accepts_answers(checkin)


def test_the_quarter_report_counts_returns_per_department_and_reports_awaiting_review(
    session: Session,
) -> None:
    built, checkins = supervised(session, items=3)
    for checkin in checkins:
        submit(session, checkin, at(date(2021, 6, 28), 10))
    first, second, _third = checkins
    return_report(session, first.id, "赵敏", "太简略", at(date(2021, 6, 29)), calendar=CALENDAR)
    submit(session, first, at(date(2021, 6, 30), 10))
    accept_report(session, first.id, "赵敏", at(date(2021, 7, 1)))
    accept_report(session, second.id, "赵敏", at(date(2021, 6, 29)))
    session.flush()
    as_of = at(date(2021, 7, 5))
    plan = load_plan_row(session=session, plan_id=built.plan.id)
    inputs = load_review_inputs(
        session=session, plan=plan, period=quarter_period(2021, 2), as_of=as_of
    )
    review = build_review(inputs)
    names = {c.department_id: session.get_one(Department, c.department_id).name for c in checkins}
    # Q2 ends 06-30: the return (06-29) and the second's acceptance count, not 07-01's.
    assert {(line.name, line.accepted, line.returned) for line in review.review_returns} == {
        (names[first.department_id], 0, 1),
        (names[second.department_id], 1, 0),
    }
    assert [(line.department, line.overdue) for line in review.awaiting_review] == [
        (names[checkins[2].department_id], True)
    ]
    text = " ".join(getattr(block, "text", "") for block in department_blocks(review))
    assert "退回1次" in text and "尚有1份报送待审核" in text and "1份已超过审核期限" in text
    # The item returned once and answered is not red for it.
    run_pass(session, built, date(2021, 7, 5))
    item = session.get_one(Item, first.item_id)
    assert item.colour != "red"


def test_reviewer_escalations_keep_the_chunk_statement_count_fixed(session: Session) -> None:
    def statements(items: int) -> tuple[int, int]:
        built, checkins = supervised(session, items=items)
        for checkin in checkins:
            submit(session, checkin, at(date(2021, 6, 28), 10))
        session.flush()
        with counting(session) as seen:
            keys = run_pass(session, built, date(2021, 7, 2))
        return len(seen), sum(1 for key in keys if ":review_overdue:" in key)

    small, small_escalations = statements(2)
    large, large_escalations = statements(8)
    assert (small_escalations, large_escalations) == (2, 8)
    assert small == large, (small, large)
