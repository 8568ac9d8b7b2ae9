"""Claims as plain values (`claim_messages(plain=True)`, the relay's): the same rows, in the
same order and with the same values as the ORM rows they stand for (SQLite and PostgreSQL,
rolled back)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from notifications.outbox import ClaimCursor, ClaimedMessage, claim_messages, enqueue_message

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)


def _enqueue(session: Session, tag: str, count: int) -> None:
    for n in range(count):
        enqueue_message(
            session=session,
            key=f"plain:{tag}:{n}",
            kind="request",
            to=[f"d{n}@example.org"],
            cc=["cc@example.org"] if n % 2 else [],
            subject=f"主题{n}",
            text_body=f"正文{n}",
            html_body=f"<p>正文{n}</p>" if n % 2 else "",
            attachments=[
                {"path": "attachments/a.pdf", "filename": "a.pdf", "mime": "application/pdf"}
            ]
            if n == 1
            else [],
            # Oldest first in reverse key order: the claim's order is (created_at, id).
            now=NOW - timedelta(days=3650, minutes=n),
        )
    session.flush()


def test_plain_claims_carry_the_rows_values_in_the_orm_order(session: Session) -> None:
    tag = uuid.uuid4().hex[:8]
    _enqueue(session, tag, 4)
    cursor = ClaimCursor()
    claimed = claim_messages(
        session=session, now=NOW, limit=4, lease=LEASE, cursor=cursor, plain=True
    )
    assert all(isinstance(row, ClaimedMessage) for row in claimed)
    assert [row.key for row in claimed] == [f"plain:{tag}:{n}" for n in (3, 2, 1, 0)]
    session.expire_all()
    stored = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_([row.id for row in claimed]))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )
    assert [row.id for row in stored] == [row.id for row in claimed]
    for plain, orm in zip(claimed, stored, strict=True):
        for item in dataclasses.fields(ClaimedMessage):
            assert getattr(plain, item.name) == getattr(orm, item.name), item.name
        assert plain.status == "sending" and plain.attempts == 1
        assert plain.lease_until == NOW + LEASE
    assert cursor.after == max((row.next_attempt_at, row.id) for row in stored)


def test_plain_claims_take_expired_leases_and_skip_live_ones(session: Session) -> None:
    tag = uuid.uuid4().hex[:8]
    _enqueue(session, tag, 2)

    def mine(rows: list[ClaimedMessage]) -> list[ClaimedMessage]:
        return [row for row in rows if row.key.startswith(f"plain:{tag}:")]

    first = mine(claim_messages(session=session, now=NOW, limit=2, lease=LEASE, plain=True))
    assert len(first) == 2
    assert mine(claim_messages(session=session, now=NOW, limit=10, lease=LEASE, plain=True)) == []
    later = NOW + LEASE + timedelta(seconds=1)
    again = mine(claim_messages(session=session, now=later, limit=10, lease=LEASE, plain=True))
    assert [row.id for row in again] == [row.id for row in first]
    assert [row.attempts for row in again] == [2, 2]
    assert all(row.lease_until == later + LEASE for row in again)
