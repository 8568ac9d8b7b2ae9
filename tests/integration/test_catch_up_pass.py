"""A plan set live after a gap: the pass caps the catch-up escalations each person gets and
sends the rest as one summary, once (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import resolve
from models.outbox import OutboxMessage
from models.policy import default_policy
from models.supervision import Notice
from tasks.assignment import start_supervision
from tasks.reconcile import reconcile_items
from tests.builders import make_department, make_plan

CALENDAR = WorkCalendar()
POLICY = default_policy()
HEAD = "zhao.zhigang@example.org"


def late_plan(session: Session) -> tuple[int, list[int], str]:
    """Eight items, each led by its own department under one 主要负责人, started on 05-24
    and not passed since; returns (plan id, item ids, the office's address)."""
    office = make_department(session, office=True)
    departments = [make_department(session) for _ in range(8)]
    for department in departments:
        department.head_email = HEAD
    built = make_plan(session, items=[(f"任务{n}", [d], []) for n, d in enumerate(departments)])
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=POLICY,
        calendar=CALENDAR,
    )
    return built.plan.id, [item.id for item in built.items], str(office.contact_emails[0])


def mail_to(session: Session, address: str, since: set[str]) -> list[OutboxMessage]:
    return [
        row
        for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        if address in row.to_addrs and row.id not in since
    ]


def test_a_late_pass_caps_what_each_person_gets_and_summarises_the_rest(
    session: Session,
) -> None:
    plan_id, item_ids, office = late_plan(session)
    before = set(session.scalars(select(OutboxMessage.id)))

    def run() -> None:
        reconcile_items(
            session=session,
            plan_id=plan_id,
            item_ids=item_ids,
            as_of=resolve(date(2021, 8, 20)),
            policy=POLICY,
            calendar=CALENDAR,
        )
        session.flush()

    run()
    # Each item owes its 06-30 work plan and its 07-23 progress report: 16 check-ins,
    # each with levels 1-3 all due before 08-20, so 48 catch-up escalations, all recorded.
    escalations = list(
        session.scalars(
            select(Notice).where(Notice.item_id.in_(item_ids), Notice.kind == "escalation")
        )
    )
    assert len(escalations) == 48
    # Level 3 goes to the one 主要负责人 and the office: 16 each. The cap (5) sends the
    # first five one by one and the other eleven in one summary, to each of them.
    for address in (HEAD, office):
        rows = mail_to(session, address, before)
        assert [row.kind for row in rows].count("escalation") == 5
        summaries = [row for row in rows if row.kind == "catch_up"]
        assert len(summaries) == 1
        assert "另有11条补发督办" in summaries[0].subject
        assert summaries[0].text_body.count("第3级督办") == 11
        assert "本次已逐条发送5条" in summaries[0].text_body
    held = [n for n in escalations if any(r.get("held") for r in n.recipients)]
    assert len(held) == 11 and all(n.level == 3 for n in held)
    # Contacts and 分管领导 get two of each level: under the cap, nothing held.
    assert all(len(n.recipients) == 1 for n in escalations if n.level < 3)
    count = len(list(session.scalars(select(OutboxMessage.id))))
    run()
    assert len(list(session.scalars(select(OutboxMessage.id)))) == count
    # The re-run sends nothing: every catch-up is recorded, and so is each summary.
    summary_keys = session.scalars(
        select(Notice.key).where(
            Notice.kind == "catch_up", Notice.key.startswith(f"catchup:{plan_id}:")
        )
    )
    assert len(list(summary_keys)) == 2
