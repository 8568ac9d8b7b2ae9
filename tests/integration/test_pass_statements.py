"""A chunk of the daily pass runs a fixed number of SQL statements, whatever its size.

Counts every statement the database receives (`before_cursor_execute`) while one chunk of
N and of 4N items is reconciled, on SQLite and PostgreSQL, on days that write every kind of
action: assignment notices after a reassignment, requests, catch-up escalations, levels,
colours, events and emails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import resolve
from models.forms import SubmissionForm
from models.outbox import DomainEvent, OutboxMessage
from models.policy import default_policy
from models.supervision import Checkin, Notice
from tasks.assignment import reassign_item, start_supervision
from tasks.reconcile import reconcile_items
from tasks.submissions import record_submission
from tests.builders import make_department, make_plan

CALENDAR = WorkCalendar()
POLICY = default_policy()


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    """The statements sent on the session's connection while the block runs."""
    statements: list[str] = []
    connection = session.connection()

    def count(*args: Any) -> None:
        statements.append(str(args[2]).split()[0])

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", count)


def supervised_plan(session: Session, items: int) -> tuple[int, list[int]]:
    """A started plan of `items` items, each led by its own department and supported by
    another; the first item is reassigned and the second has a submission."""
    make_department(session, office=True)
    entries = [
        (f"任务{n}", [make_department(session)], [make_department(session)]) for n in range(items)
    ]
    built = make_plan(session, items=entries)
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=POLICY,
        calendar=CALENDAR,
    )
    first, second = built.items[0], built.items[1]
    reassign_item(
        session=session,
        item_id=first.id,
        from_department_id=entries[0][1][0].id,
        to_department_id=make_department(session).id,
        now=resolve(date(2021, 6, 1)),
    )
    checkin = session.scalars(
        select(Checkin).where(Checkin.item_id == second.id).order_by(Checkin.due_date)
    ).first()
    assert checkin is not None
    record_submission(
        session=session,
        checkin_id=checkin.id,
        department_id=checkin.department_id,
        form=SubmissionForm(status="at_risk", narrative="进展"),
        source="cli",
        now=resolve(date(2021, 6, 2)),
    )
    return built.plan.id, [item.id for item in built.items]


def pass_statements(session: Session, items: int) -> tuple[list[int], int]:
    """Statements per pass on three days, and the notices the passes recorded."""
    plan_id, item_ids = supervised_plan(session, items)
    counts = []
    for day in (date(2021, 6, 1), date(2021, 6, 23), date(2021, 7, 7)):
        with counting(session) as statements:
            reconcile_items(
                session=session,
                plan_id=plan_id,
                item_ids=item_ids,
                as_of=resolve(day),
                policy=POLICY,
                calendar=CALENDAR,
            )
            session.flush()
        counts.append(len(statements))
    notices = session.scalar(
        select(func.count()).select_from(Notice).where(Notice.item_id.in_(item_ids))
    )
    return counts, int(notices or 0)


def test_a_chunk_statement_count_does_not_grow_with_its_items(session: Session) -> None:
    small, small_notices = pass_statements(session, 4)
    large, large_notices = pass_statements(session, 16)
    assert large_notices > 3 * small_notices > 0
    assert large == small, (small, large)
    assert max(large) <= 25, large


def test_the_chunk_writes_its_events_and_emails(session: Session) -> None:
    plan_id, item_ids = supervised_plan(session, 3)
    before_events = session.scalar(select(func.count()).select_from(DomainEvent))
    before_mail = session.scalar(select(func.count()).select_from(OutboxMessage))
    results = reconcile_items(
        session=session,
        plan_id=plan_id,
        item_ids=item_ids,
        as_of=resolve(date(2021, 7, 7)),
        policy=POLICY,
        calendar=CALENDAR,
    )
    session.flush()
    new_notices = sum(len(result.notices) for result in results)
    events = session.scalar(select(func.count()).select_from(DomainEvent)) - (before_events or 0)
    mail = session.scalar(select(func.count()).select_from(OutboxMessage)) - (before_mail or 0)
    # Only item 3 owes its 06-30 work plan: item 2 submitted it, and item 1's new lead
    # (reassigned 06-01, first pass today) owes nothing due before today. Catch-up sends
    # levels 1-3 at once; item 1's new lead gets its assignment notice.
    assert new_notices == 3
    assert sum(result.assignments_notified for result in results) == 1
    # Level 3 is two emails: the head's own copy (their instruct link) and the office's.
    assert mail == 5
    # overdue + escalated (level 1), escalated (2, 3), assigned, and three first colours
    assert events == 2 + 1 + 1 + 1 + 3
