"""Starting supervision writes in batches (check-in rows as one JSON recordset on PostgreSQL,
notices and emails a batch of assignments at a time): the rows are those one batch writes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import tasks.assignment
import tasks.checkins
from models.calendar import WorkCalendar
from models.clock import resolve
from models.directory import Department
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.policy import default_policy
from models.supervision import Checkin, Notice
from models.vocabulary import CheckinStatus
from tasks.assignment import start_supervision
from tests.builders import make_department, make_plan

STARTED = resolve(date(2021, 5, 24))
POLICY = default_policy().model_copy(update={"support_departments_report": True})


def _anonymous(text: str, departments: list[Department]) -> str:
    for n, department in enumerate(departments):
        text = text.replace(department.name, f"部门{n}")
    return text


def _start(session: Session) -> list[tuple[object, ...]]:
    """Start a three-item plan of new departments; what it wrote, with ids made relative."""
    departments = [make_department(session) for _ in range(3)]
    built = make_plan(
        session,
        items=[(f"第{n}项重点工作", [departments[n]], departments[n + 1 :]) for n in range(3)],
    )
    summary = start_supervision(
        session=session, plan_id=built.plan.id, now=STARTED, policy=POLICY, calendar=WorkCalendar()
    )
    items = {item.id: item.position for item in built.items}
    depts = {department.id: n for n, department in enumerate(departments)}
    checkins = session.scalars(
        select(Checkin).where(Checkin.item_id.in_(items)).order_by(Checkin.id)
    ).all()
    notices = session.scalars(
        select(Notice).where(Notice.item_id.in_(items)).order_by(Notice.id)
    ).all()
    mails = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.notice_id.in_([notice.id for notice in notices]))
        .order_by(OutboxMessage.created_at, OutboxMessage.notice_id, OutboxMessage.id)
    ).all()  # by notice, not by key: a key holds ids, whose digits sort as text
    events = session.scalars(
        select(DomainEvent.type).where(
            DomainEvent.resource_id.in_([f"duban.item.{item}" for item in items])
        )
    ).all()
    return [
        (summary.items, summary.assignments, summary.checkins),
        *(
            (
                items[c.item_id],
                depts[c.department_id],
                c.phase_key,
                c.seq,
                c.kind,
                c.role,
                c.due_date,
                c.original_due_date,
                c.status,
                c.escalation_level,
                c.created_at,
                c.asks,
                c.review,
                c.returns,
                c.return_reason,
                c.submitted_at,
            )
            for c in checkins
        ),
        *((items[n.item_id or 0], n.kind, n.level, n.reason) for n in notices),
        *((len(m.to_addrs), m.kind, _anonymous(m.subject, departments)) for m in mails),
        tuple(sorted(events)),
    ]


def test_batched_start_writes_what_one_batch_writes(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _start(session)
    monkeypatch.setattr(tasks.assignment, "NOTICE_BATCH", 1)
    monkeypatch.setattr(tasks.checkins, "ASSIGNMENT_BATCH", 1)
    monkeypatch.setattr(tasks.checkins, "INSERT_CHUNK", 4)
    assert _start(session) == whole
    counts = whole[0]
    assert counts == (3, 6, counts[2]) and counts[2] > 6
    first = whole[1]
    assert first[2:] == (
        "mobilize", 1, "work_plan", "lead", date(2021, 6, 30), date(2021, 6, 30),
        CheckinStatus.PENDING, 0, STARTED, "", None, 0, "", None,
    )  # fmt: skip
    assert session.scalars(select(Item.needs_assignment)).all().count(True) == 0
