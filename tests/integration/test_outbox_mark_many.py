"""Marking accepted rows sent in one statement (SQLite and PostgreSQL, rolled back)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from notifications.outbox import SentRow, claim_messages, enqueue_message, mark_sent_many

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


def _claimed(session: Session, count: int) -> list[OutboxMessage]:
    tag = uuid.uuid4().hex[:8]
    for n in range(count):
        enqueue_message(
            session=session,
            key=f"mark-many:{tag}:{n}",
            kind="request",
            to=[f"d{n}@example.org"],
            subject=f"主题{n}",
            text_body="x",
            now=NOW - timedelta(days=3650),
        )
    session.flush()
    rows = claim_messages(session=session, now=NOW, limit=count, lease=timedelta(minutes=15))
    assert [row.key.startswith(f"mark-many:{tag}") for row in rows] == [True] * count
    return rows


def test_marks_every_row_whose_claim_holds_and_reports_the_lost_one(session: Session) -> None:
    rows = _claimed(session, 4)
    stolen = rows[1]
    stolen_attempt = stolen.attempts
    stolen.attempts += 1
    session.flush()
    sent = [
        SentRow(row.id, stolen_attempt if row is stolen else row.attempts, {row.to_addrs[0]: "250"})
        for row in rows
    ]
    owned = mark_sent_many(session=session, rows=sent, now=NOW)
    assert owned == {row.id for row in rows} - {stolen.id}
    session.expire_all()
    stored = {
        row.id: row
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([row.id for row in rows]))
        )
    }
    assert stored[stolen.id].status == "sending" and stored[stolen.id].sent_at is None
    for row in rows:
        if row.id != stolen.id:
            assert stored[row.id].status == "sent"
            assert stored[row.id].sent_at == NOW and stored[row.id].lease_until is None
            assert stored[row.id].recipient_results == {row.to_addrs[0]: "250"}


def test_all_owned_and_single_row(session: Session) -> None:
    rows = _claimed(session, 3)
    many = [SentRow(row.id, row.attempts, {}) for row in rows[:2]]
    assert mark_sent_many(session=session, rows=many, now=NOW) == {rows[0].id, rows[1].id}
    one = [SentRow(rows[2].id, rows[2].attempts + 5, {})]
    assert mark_sent_many(session=session, rows=one, now=NOW) == set()
    assert mark_sent_many(session=session, rows=[], now=NOW) == set()


def test_on_a_bare_connection_the_same_rows_are_marked(session: Session) -> None:
    """The relay's group commit passes its connection, not a session, when every outcome
    is a 250: the same checks, the lost claim reported the same way."""
    rows = _claimed(session, 3)
    lost = rows[0]
    sent = [SentRow(row.id, row.attempts + (row is lost), {"d@example.org": "250"}) for row in rows]
    owned = mark_sent_many(session=session.connection(), rows=sent, now=NOW)
    assert owned == {rows[1].id, rows[2].id}
    session.expire_all()
    statuses = {
        row.id: row.status
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([row.id for row in rows]))
        )
    }
    assert statuses == {lost.id: "sending", rows[1].id: "sent", rows[2].id: "sent"}
