"""The email outbox: a message row is written in the transaction of the change that caused it.

`enqueue_message` is the only way mail enters duban; a relay (see `notifications.relay`)
delivers pending rows later. The row's `key` is the business key of the notice it delivers,
so enqueueing the same notice twice writes one row.

Lifecycle: `pending` -> `claim_messages` -> `sending` (leased; `attempts` is the claim
token) -> `mark_sent` / `mark_retry` (back to `pending` after a backoff) / `mark_dead`. A row
whose lease expired is claimable again, so a crashed relay's rows are picked up.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal, cast, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Update,
    and_,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

import models.tables  # noqa: F401 - every table mapped before rows are flushed
from models.outbox import OutboxMessage
from models.vocabulary import Channel, OutboxStatus
from tasks.sql import insert_rows, table_of


class HeaderInjectionError(ValueError):
    """A value meant for a mail header contains CR or LF."""


def check_header(value: str) -> str:
    """Return `value` unchanged, or raise `HeaderInjectionError` if it contains CR/LF."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError("mail header values must not contain CR or LF")
    return value


def enqueue_message(
    *,
    session: Session,
    key: str,
    kind: str,
    to: Sequence[str],
    subject: str,
    text_body: str,
    html_body: str = "",
    cc: Sequence[str] = (),
    now: datetime,
    notice_id: int | None = None,
    attachments: Sequence[dict[str, str]] = (),
) -> OutboxMessage:
    """Add a pending message for `key`, or return the existing one: never two rows per key.

    Does not commit. Raises `HeaderInjectionError` for CR/LF in the subject or an address.
    `attachments` are `{path, filename, mime}` dicts read at send time.
    """
    existing = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if existing is not None:
        return existing
    for value in (subject, *to, *cc):
        check_header(value)
    message = OutboxMessage(
        id=uuid.uuid4().hex,
        key=key,
        kind=kind,
        notice_id=notice_id,
        to_addrs=list(to),
        cc_addrs=list(cc),
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        attachments=[dict(item) for item in attachments],
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


@dataclass(frozen=True)
class NewMessage:
    """One message for `enqueue_messages` (same fields as `enqueue_message`'s arguments)."""

    key: str
    kind: str
    to: Sequence[str]
    subject: str
    text_body: str
    html_body: str = ""
    cc: Sequence[str] = ()
    notice_id: int | None = None
    attachments: Sequence[dict[str, str]] = ()
    channel: Channel = Channel.EMAIL


@dataclass(frozen=True)
class Enqueued:
    """What `enqueue_messages` did: the row of every key (existing or added), and how many
    rows it added."""

    rows: dict[str, OutboxMessage]
    added: int


def enqueue_messages(
    *, session: Session, messages: Sequence[NewMessage], now: datetime
) -> Enqueued:
    """Add a pending row for every key not already in the outbox: never two rows per key.

    For bulk producers: one `SELECT … WHERE key IN` per 500 keys and one batched INSERT at
    the next flush. Does not commit. Raises `HeaderInjectionError` like `enqueue_message`,
    before anything is added.
    """
    for message in messages:
        for value in (message.subject, *message.to, *message.cc):
            check_header(value)
    keys = list(dict.fromkeys(message.key for message in messages))
    rows: dict[str, OutboxMessage] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows.update(
            (row.key, row)
            for row in session.scalars(select(OutboxMessage).where(OutboxMessage.key.in_(chunk)))
        )
    added = []
    for message in messages:
        if message.key in rows:
            continue
        row = OutboxMessage(
            id=uuid.uuid4().hex,
            key=message.key,
            kind=message.kind,
            notice_id=message.notice_id,
            to_addrs=list(message.to),
            cc_addrs=list(message.cc),
            subject=message.subject,
            text_body=message.text_body,
            html_body=message.html_body,
            attachments=[dict(item) for item in message.attachments],
            next_attempt_at=now,
            created_at=now,
            channel=message.channel,
        )
        rows[message.key] = row
        added.append(row)
    session.add_all(added)
    return Enqueued(rows=rows, added=len(added))


def enqueue_many(*, session: Session, messages: Sequence[NewMessage], now: datetime) -> int:
    """`enqueue_messages`, returning only how many rows were added. Does not commit."""
    return enqueue_messages(session=session, messages=messages, now=now).added


def insert_messages(*, session: Session, messages: Sequence[NewMessage], now: datetime) -> int:
    """Insert a pending row per message in one statement (`insert_rows`: one JSON recordset
    parameter on PostgreSQL); a key already in the outbox (a
    concurrent or earlier enqueue) is skipped by the database. Returns rows added.

    Does not commit. Raises `HeaderInjectionError` like `enqueue_message`, before anything
    is written.
    """
    if not messages:
        return 0
    for message in messages:
        for value in (message.subject, *message.to, *message.cc):
            check_header(value)
    unique: dict[str, NewMessage] = {}
    for message in messages:
        unique.setdefault(message.key, message)
    rows: list[dict[str, object]] = [
        {
            "id": uuid.uuid4().hex,
            "key": message.key,
            "kind": message.kind,
            "notice_id": message.notice_id,
            "to_addrs": list(message.to),
            "cc_addrs": list(message.cc),
            "subject": message.subject,
            "text_body": message.text_body,
            "html_body": message.html_body,
            "attachments": [dict(item) for item in message.attachments],
            "next_attempt_at": now,
            "created_at": now,
            "channel": message.channel.value,
        }
        for message in unique.values()
    ]
    added = insert_rows(
        session=session,
        table=table_of(OutboxMessage),
        rows=rows,
        ignore_conflicts=True,
        returning=("id",),
    )
    return len(added)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, and the attempt count after which a row dies."""

    base_seconds: float = 60.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait before retrying after failed `attempt` (1-based): half fixed, half random."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        jitter = (rng or _RNG).random()
        return timedelta(seconds=ceiling / 2 + jitter * ceiling / 2)


_RNG = random.Random()  # noqa: S311 - jitter, not security
DEFAULT_POLICY = RetryPolicy()


@dataclass
class ClaimCursor:
    """Where one relay run's claims of due rows have got to: the largest `(next_attempt_at,
    id)` it claimed. Pass the same cursor to each `claim_messages` of the run."""

    after: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A claimed outbox row as the claim's `UPDATE … RETURNING` gave it (after the claim:
    `status` is `sending`, `attempts` the claim token): the attributes of `OutboxMessage`
    of the same names that the relay sends and records, without an ORM instance."""

    id: str
    key: str
    kind: str
    channel: Channel
    status: OutboxStatus
    attempts: int
    notice_id: int | None
    to_addrs: list[Any]
    cc_addrs: list[Any]
    subject: str
    text_body: str
    html_body: str
    attachments: list[Any]
    created_at: datetime
    next_attempt_at: datetime
    lease_until: datetime | None


_CLAIMED_FIELDS = tuple(field.name for field in fields(ClaimedMessage))


@overload
def claim_messages(
    *,
    session: Session,
    now: datetime,
    limit: int,
    lease: timedelta,
    cursor: ClaimCursor | None = None,
    plain: Literal[False] = False,
) -> list[OutboxMessage]: ...


@overload
def claim_messages(
    *,
    session: Session,
    now: datetime,
    limit: int,
    lease: timedelta,
    cursor: ClaimCursor | None = None,
    plain: Literal[True],
) -> list[ClaimedMessage]: ...


def claim_messages(
    *,
    session: Session,
    now: datetime,
    limit: int,
    lease: timedelta,
    cursor: ClaimCursor | None = None,
    plain: bool = False,
) -> list[OutboxMessage] | list[ClaimedMessage]:
    """Claim up to `limit` ready rows: first sending rows whose lease expired (a relay died
    holding them), then the oldest pending rows that are due. Returns them oldest
    `(created_at, id)` first: ORM rows loaded into `session`, or with `plain=True` the
    `ClaimedMessage` values the claims returned (the relay: no second SELECT of the rows'
    bodies, no ORM instances).

    Each kind is one `UPDATE … WHERE id IN (SELECT … ORDER BY … LIMIT n [FOR UPDATE SKIP
    LOCKED]) RETURNING …`, setting the rows to `sending` with `lease_until = now + lease`
    and incrementing `attempts`; the new `attempts` value is the claim token that `mark_*`
    check. Two statements instead of one condition with an OR, so that each walks
    `ix_outbox_ready` (status, next_attempt_at, id) in order and stops after `n` rows
    instead of sorting every ready row. On PostgreSQL concurrent claimers skip each other's
    rows; on SQLite the statement takes the write lock first, so two claimers never get the
    same row. The caller commits (soon) to publish the claim.

    With a `cursor`, due rows are first looked for after the cursor's `(next_attempt_at,
    id)` (the run's earlier claims took the rows before it), and only if that finds fewer
    than wanted from the start of the index, as without one: the same rows are claimed, but
    on PostgreSQL a claim no longer walks the index entries of every row the run has
    already claimed (an UPDATE leaves the old entry in the `pending` range until VACUUM),
    so a run's claims cost the same at its end as at its start.
    """
    if session.autoflush:
        session.flush()  # the claims run on the session's connection, without its autoflush
    expired = and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now)
    due = and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
    claimed = _claim_where(session, expired, now=now, limit=limit, lease=lease)
    claimed_due: list[ClaimedMessage] = []
    if cursor is not None and cursor.after is not None and len(claimed) < limit:
        after = tuple_(OutboxMessage.next_attempt_at, OutboxMessage.id) > tuple_(
            bindparam("after_at", cursor.after[0], type_=OutboxMessage.next_attempt_at.type),
            bindparam("after_id", cursor.after[1], type_=OutboxMessage.id.type),
        )
        claimed_due += _claim_where(
            session, due, now=now, limit=limit - len(claimed), lease=lease, after=after
        )
    if len(claimed) + len(claimed_due) < limit:
        claimed_due += _claim_where(
            session, due, now=now, limit=limit - len(claimed) - len(claimed_due), lease=lease
        )
    if cursor is not None and claimed_due:
        last = max((row.next_attempt_at, row.id) for row in claimed_due)
        cursor.after = last if cursor.after is None else max(last, cursor.after)
    claimed += claimed_due
    if plain:
        claimed.sort(key=_claim_order)
        return claimed
    if not claimed:
        return []
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_([row.id for row in claimed]))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def _claim_order(row: ClaimedMessage) -> tuple[datetime, str]:
    return row.created_at, row.id


def _claim_where(
    session: Session,
    ready: ColumnElement[bool],
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    after: ColumnElement[bool] | None = None,
) -> list[ClaimedMessage]:
    """Claim up to `limit` rows matching `ready` (and `after`, where the index walk starts),
    oldest `next_attempt_at` first; the claimed rows as the UPDATE returned them (a Core
    statement: the ORM's bulk UPDATE path costs more than the statement on SQLite).

    `after` restricts only the candidates' subquery: in the UPDATE's own recheck,
    PostgreSQL underestimates a row comparison (one row) and re-scanned the candidates for
    every row of the range."""
    table = table_of(OutboxMessage)
    candidates = (
        select(table.c.id)
        .where(ready if after is None else and_(ready, after))
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(limit)
    )
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # A materialized CTE: PostgreSQL runs the locking subquery once. Left inside
        # `IN (…)`, an index-ordered plan re-runs it for each row it updates, and with SKIP
        # LOCKED each run finds the next rows: one claim of 7 took all 100 ready rows.
        locked = (
            candidates.with_for_update(skip_locked=True)
            .cte("claim_candidates")
            .prefix_with("MATERIALIZED")
        )
        candidates = select(locked.c.id)
    claimed = (
        update(table)
        .where(table.c.id.in_(candidates), ready)
        .values(status="sending", lease_until=now + lease, attempts=table.c.attempts + 1)
        .returning(*(table.c[name] for name in _CLAIMED_FIELDS))
    )
    return [ClaimedMessage(*row) for row in connection.execute(claimed)]


def _finish(session: Session, *, message_id: str, attempt: int, values: dict[str, Any]) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == "sending",
            OutboxMessage.attempts == attempt,
        )
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))


def mark_sent(
    *,
    session: Session,
    message_id: str,
    attempt: int,
    now: datetime,
    recipient_results: dict[str, str],
) -> bool:
    """Mark a claimed row sent (after the server's 250); False if the claim was lost."""
    return _finish(
        session,
        message_id=message_id,
        attempt=attempt,
        values={
            "status": "sent",
            "sent_at": now,
            "lease_until": None,
            "last_error": "",
            "recipient_results": recipient_results,
        },
    )


@dataclass(frozen=True)
class SentRow:
    """A claimed row the server accepted: its id, claim token and per-recipient replies."""

    message_id: str
    attempt: int
    recipient_results: dict[str, str]


@functools.cache
def _mark_sent_statement() -> Update:
    """`mark_sent`'s UPDATE with every value a parameter, built once (constructing it per
    group commit cost more than executing it)."""
    table = cast(Table, OutboxMessage.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            table.c.status == "sending",
            table.c.attempts == bindparam("row_attempt"),
        )
        .values(
            status="sent",
            sent_at=bindparam("row_sent_at", type_=table.c.sent_at.type),
            lease_until=None,
            last_error="",
            recipient_results=bindparam("row_results", type_=table.c.recipient_results.type),
        )
    )


def mark_sent_many(
    *, session: Session | Connection, rows: Sequence[SentRow], now: datetime
) -> set[str]:
    """Mark claimed rows sent (each after its server's 250); returns the ids still owned.

    The checks of `mark_sent` in one executemany UPDATE, plus one SELECT only when some
    claim was lost. Does not commit. `session` may be a bare `Connection` in a transaction
    (the relay's group commit, when every outcome is a 250, skips the ORM session).
    """
    if not rows:
        return set()
    connection = session if isinstance(session, Connection) else session.connection()
    result = connection.execute(
        _mark_sent_statement(),
        [
            {
                "row_id": row.message_id,
                "row_attempt": row.attempt,
                "row_sent_at": now,
                "row_results": row.recipient_results,
            }
            for row in rows
        ],
    )
    if getattr(result, "rowcount", -1) == len(rows):
        return {row.message_id for row in rows}
    tokens = {row.message_id: row.attempt for row in rows}
    marked = connection.execute(
        select(OutboxMessage.id, OutboxMessage.attempts).where(
            OutboxMessage.id.in_(list(tokens)),
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at == now,
        )
    )
    return {message_id for message_id, attempts in marked if tokens[message_id] == attempts}


def mark_dead(
    *,
    session: Session,
    message_id: str,
    attempt: int,
    now: datetime,  # noqa: ARG001 - kept for a uniform signature
    error: str,
    recipient_results: dict[str, str] | None = None,
) -> bool:
    """Move a claimed row to the dead letters with the server's reply; False if lost."""
    values: dict[str, Any] = {"status": "dead", "lease_until": None, "last_error": error}
    if recipient_results is not None:
        values["recipient_results"] = recipient_results
    return _finish(session, message_id=message_id, attempt=attempt, values=values)


def mark_retry(
    *,
    session: Session,
    message_id: str,
    attempt: int,
    now: datetime,
    error: str,
    recipient_results: dict[str, str] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
    spends_attempt: bool = True,
) -> str | None:
    """Return a claimed row to `pending` after a backoff, or `dead` after the last attempt.

    `spends_attempt=False` (the server could not be reached or refused the login: not the
    message's fault) never dead-letters, however long an outage lasts; the backoff is still
    capped. Returns the new status, or None if the claim was lost to another relay.
    """
    if spends_attempt and attempt >= policy.max_attempts:
        dead = mark_dead(
            session=session,
            message_id=message_id,
            attempt=attempt,
            now=now,
            error=f"{error}（已重试{attempt}次）",
            recipient_results=recipient_results,
        )
        return "dead" if dead else None
    values: dict[str, Any] = {
        "status": "pending",
        "lease_until": None,
        "last_error": error,
        "next_attempt_at": now + policy.delay(attempt, rng),
    }
    if recipient_results is not None:
        values["recipient_results"] = recipient_results
    owned = _finish(session, message_id=message_id, attempt=attempt, values=values)
    return "pending" if owned else None


def requeue_messages(
    *, session: Session, now: datetime, message_id: str | None = None, dead: bool = False
) -> int:
    """Make dead (or pending) rows due now with a fresh attempt budget; returns the count.

    Give `message_id` for one row (dead or pending), or `dead=True` for every dead row.
    """
    query = update(OutboxMessage).where(OutboxMessage.status.in_(("dead", "pending")))
    if message_id is not None:
        query = query.where(OutboxMessage.id == message_id)
    elif dead:
        query = query.where(OutboxMessage.status == "dead")
    else:
        return 0
    result = session.execute(
        query.values(status="pending", attempts=0, next_attempt_at=now, lease_until=None),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0))


def list_messages(
    *, session: Session, status: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    """The newest `limit` outbox rows, optionally only those with `status`."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return list(session.scalars(query.limit(limit)))


def find_message(*, session: Session, prefix: str) -> OutboxMessage | None:
    """The outbox row whose id starts with `prefix` (at least 6 characters), if exactly one."""
    if len(prefix) < 6:
        return None
    rows = list(
        session.scalars(select(OutboxMessage).where(OutboxMessage.id.startswith(prefix)).limit(2))
    )
    return rows[0] if len(rows) == 1 else None


def count_by_status(*, session: Session) -> dict[str, int]:
    """How many outbox rows are in each status."""
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: int(count) for status, count in rows}
