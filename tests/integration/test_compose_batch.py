"""Batch notice email: same mail as one notice at a time, in a bounded number of queries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from models.settings import Settings
from models.supervision import Notice
from notifications.compose import enqueue_notice_email, enqueue_notice_emails
from tests.integration.mail_fixtures import NOW, World, add_notice, add_submission, make_world

SETTINGS = Settings(public_url="http://mail.test:8765")


def _assignment(session: Session, world: World) -> Notice:
    """An assignment notice: no check-in, so the mail links the next pending one."""
    notice = Notice(
        key=f"assign:{world.item.id}:{world.department.id}:{uuid.uuid4().hex[:6]}",
        kind="assignment",
        level=0,
        item_id=world.item.id,
        department_id=world.department.id,
        recipients=[{"role": "contact", "name": "王芳", "email": "xuehui@example.org"}],
        reason="牵头交办",
        decided_at=NOW,
    )
    session.add(notice)
    session.flush()
    return notice


def _notices(session: Session, worlds: int) -> list[Notice]:
    """Four kinds of notice per world; every other world has a submission."""
    notices: list[Notice] = []
    for n in range(worlds):
        world = make_world(session, title=f"任务{n}")
        if n % 2 == 0:
            add_submission(session, world, narrative=f"第{n}个部门的进展")
        notices += [
            add_notice(session, world, kind="reminder"),
            add_notice(session, world, kind="request"),
            add_notice(session, world, kind="escalation", level=2, email="lead@example.org"),
            _assignment(session, world),
        ]
    return notices


def _mail(row: OutboxMessage) -> tuple[Any, ...]:
    return (
        row.kind,
        row.notice_id,
        row.to_addrs,
        row.cc_addrs,
        row.subject,
        row.text_body,
        row.html_body,
    )


def test_batch_writes_the_same_mail_as_one_notice_at_a_time(session: Session) -> None:
    notices = _notices(session, 3)
    single: dict[str, tuple[Any, ...]] = {}
    savepoint = session.begin_nested()
    for notice in notices:
        row = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
        assert row is not None
        single[row.key] = _mail(row)
    savepoint.rollback()
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.key.in_(single))).all() == []

    added = enqueue_notice_emails(session=session, notices=notices, now=NOW, settings=SETTINGS)
    session.flush()
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.key.in_(single))).all()
    assert added == len(notices) == len(rows)
    assert {row.key: _mail(row) for row in rows} == single
    assert len({row.subject for row in rows}) == len(rows)
    reported = [row for row in rows if row.kind == "reminder" and "上次报送：86" in row.text_body]
    assert len(reported) == 2
    assignments = [row for row in rows if row.kind == "assignment"]
    assert len(assignments) == 3 and all("/c/" in row.text_body for row in assignments)
    escalations = [row for row in rows if row.kind == "escalation"]
    assert all(row.to_addrs == ["lead@example.org"] for row in escalations)


def test_batch_skips_keys_already_in_the_outbox(session: Session) -> None:
    notices = _notices(session, 2)
    first = enqueue_notice_email(session=session, notice=notices[0], now=NOW, settings=SETTINGS)
    assert first is not None
    added = enqueue_notice_emails(session=session, notices=notices, now=NOW, settings=SETTINGS)
    again = enqueue_notice_emails(session=session, notices=notices, now=NOW, settings=SETTINGS)
    session.flush()
    assert (added, again) == (len(notices) - 1, 0)
    keys = [f"notice:{notice.key}" for notice in notices]
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.key.in_(keys))).all()
    assert len(rows) == len(notices)
    assert first in rows


@contextmanager
def _counted(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    bind = session.connection()

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(bind, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(bind, "before_cursor_execute", count)


def test_batch_issues_the_same_number_of_queries_for_any_batch_size(session: Session) -> None:
    counts = []
    for worlds in (1, 4, 12):
        notices = _notices(session, worlds)
        with _counted(session) as statements:
            added = enqueue_notice_emails(
                session=session, notices=notices, now=NOW, settings=SETTINGS
            )
            session.flush()
        assert added == len(notices)
        counts.append(len(statements))
    assert counts[0] == counts[1] == counts[2], counts
    assert counts[0] <= 12, counts


def test_a_message_that_cannot_be_composed_does_not_stop_the_others(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    notices = _notices(session, 2)
    broken = make_world(session, title="换行任务")
    broken.department.name = "学会部\r\nBcc: evil@example.org"
    session.flush()
    poisoned = add_notice(session, broken, kind="escalation", level=2, email="lead@example.org")
    with caplog.at_level(logging.WARNING, logger="notifications.compose"):
        added = enqueue_notice_emails(
            session=session, notices=[*notices, poisoned], now=NOW, settings=SETTINGS
        )
    session.flush()
    assert added == len(notices)
    assert (
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.key == f"notice:{poisoned.key}")
        ).all()
        == []
    )
    assert poisoned.key in caplog.text and "line break" in caplog.text
