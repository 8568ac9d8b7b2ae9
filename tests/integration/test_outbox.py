"""Outbox repository functions on SQLite and PostgreSQL (rolled-back sessions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from notifications.outbox import (
    ClaimCursor,
    HeaderInjectionError,
    NewMessage,
    RetryPolicy,
    claim_messages,
    enqueue_many,
    enqueue_message,
    find_message,
    mark_retry,
    mark_sent,
)

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


def new(key: str, subject: str = "主题") -> NewMessage:
    return NewMessage(key=key, kind="request", to=["a@example.org"], subject=subject, text_body="x")


def test_enqueue_many_skips_existing_and_repeated_keys(session: Session) -> None:
    tag = NOW.isoformat() + str(id(session))
    enqueue_message(
        session=session,
        key=f"{tag}:0",
        kind="request",
        to=["a@example.org"],
        subject="s",
        text_body="x",
        now=NOW,
    )
    added = enqueue_many(
        session=session, messages=[new(f"{tag}:{n}") for n in (0, 1, 2, 2)], now=NOW
    )
    assert added == 2
    session.flush()
    keys = session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.startswith(tag)))
    assert sorted(keys) == [f"{tag}:0", f"{tag}:1", f"{tag}:2"]


def test_enqueue_many_refuses_header_injection_before_adding(session: Session) -> None:
    with pytest.raises(HeaderInjectionError):
        enqueue_many(session=session, messages=[new("ok-1"), new("bad", "a\r\nBcc: x")], now=NOW)
    assert not session.new


def test_marks_need_the_current_claim(session: Session) -> None:
    row = enqueue_message(
        session=session,
        key=f"claim-{id(session)}",
        kind="request",
        to=["a@example.org"],
        subject="s",
        text_body="x",
        now=NOW,
    )
    row.status, row.attempts = "sending", 2
    session.flush()
    assert not mark_sent(
        session=session, message_id=row.id, attempt=1, now=NOW, recipient_results={}
    )
    policy = RetryPolicy(max_attempts=2)
    assert (
        mark_retry(
            session=session, message_id=row.id, attempt=2, now=NOW, error="450", policy=policy
        )
        == "dead"
    )
    session.expire_all()
    stored = session.get(OutboxMessage, row.id)
    assert stored is not None and stored.status == "dead" and "已重试2次" in stored.last_error
    assert find_message(session=session, prefix=row.id[:10]) is not None
    assert find_message(session=session, prefix=row.id[:3]) is None
    assert stored.next_attempt_at - NOW < timedelta(seconds=1)


def test_a_cursor_claims_the_same_rows_and_one_that_became_due_behind_it(
    session: Session,
) -> None:
    oldest = NOW - timedelta(days=7300)  # before any other test's rows
    lease = timedelta(minutes=15)

    def pending(name: str, due: datetime) -> None:
        row = enqueue_message(
            session=session,
            key=f"cursor-{id(session)}-{name}",
            kind="request",
            to=["a@example.org"],
            subject="s",
            text_body="x",
            now=NOW,
        )
        row.next_attempt_at = due
        session.flush()

    def claim(cursor: ClaimCursor) -> set[str]:
        rows = claim_messages(session=session, now=NOW, limit=2, lease=lease, cursor=cursor)
        return {row.key.rsplit("-", 1)[1] for row in rows}

    for n in range(5):
        pending(f"a{n}", oldest + timedelta(minutes=n))
    cursor = ClaimCursor()
    assert claim(cursor) == {"a0", "a1"}
    assert cursor.after is not None and cursor.after[0] == oldest + timedelta(minutes=1)
    pending("late", oldest - timedelta(minutes=1))  # due behind the cursor
    assert claim(cursor) == {"a2", "a3"}
    assert claim(cursor) == {"a4", "late"}  # after the cursor first, then from the start
    assert cursor.after[0] == oldest + timedelta(minutes=4)
    stored = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key.startswith(f"cursor-{id(session)}-"))
    ).all()
    assert sorted((row.status, row.attempts) for row in stored) == [("sending", 1)] * 6
