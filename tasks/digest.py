"""The daily digest's I/O: hold notices for a digest, compose the digests in sets.

`hold_for_digest` is the daily pass's hook: of the notices a chunk just recorded it returns
those that keep their own email and inserts a `DigestEntry` (waiting: no `digest_key`) for
every digest recipient of the others, in one statement in the chunk's transaction, so a
notice and its place in a digest commit together.

`hold_return` is the office's return's hook (`tasks.report_review.return_report`): under
`departments: digest` it records the return as a `returned` notice (key `returned:<review
id>`, the reason in `reason`) and its department digest entry, in the return's transaction,
instead of the return's own email.

`compose_digests` runs once at the end of a pass (after all its chunks and shards): it claims
every waiting entry with one `UPDATE … RETURNING` (a concurrent composer skips the rows
claimed), reads the notices, check-ins, items and departments in a fixed number of queries,
groups them (`models.digest.group_digests`), renders one message per recipient
(`notifications.digest`), sets each entry's digest key with one executemany UPDATE and
inserts the messages with one `INSERT … ON CONFLICT DO NOTHING`, all in one transaction:
an entry is marked exactly when its digest is in the outbox. The number of statements does
not grow with the number of departments (up to 500 ids per `IN`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from models.clock import local_date
from models.daily_pass import recipients_for
from models.db import transaction
from models.digest import DigestEntry, EntryFacts, group_digests, held_entries
from models.directory import Department
from models.plan import Item
from models.policy import SupervisionPolicy
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Notice
from models.vocabulary import NoticeKind
from notifications.context import chunked
from notifications.digest import digest_context, digest_message, live_lines
from notifications.outbox import HeaderInjectionError, NewMessage, insert_messages
from tasks.sql import insert_ignoring, table_of

logger = logging.getLogger(__name__)
_Row = TypeVar("_Row", Notice, Checkin, Department)

__all__ = ["compose_digests", "compose_digests_now", "hold_for_digest", "hold_return"]


def hold_for_digest(
    *,
    session: Session,
    notices: Sequence[Notice],
    policy: SupervisionPolicy,
    now: datetime,
    attachments: Mapping[int, Sequence[dict[str, str]]] | None = None,
) -> list[Notice]:
    """The `notices` (just recorded, with ids) that keep their own email under the policy's
    `delivery`; the others get their digest entries (one INSERT, a repeated one ignored),
    carrying their `attachments` (by notice id). Nothing is written under `each`."""
    rule = policy.delivery
    if rule.departments == "each" and rule.leaders == "each":
        return list(notices)
    single: list[Notice] = []
    rows: list[dict[str, object]] = []
    day = local_date(now)
    for notice in notices:
        entries = held_entries(
            key=notice.key,
            kind=str(notice.kind),
            department_id=notice.department_id,
            recipients=notice.recipients,
            rule=rule,
        )
        if not entries:
            single.append(notice)
            continue
        files = [dict(file) for file in (attachments or {}).get(notice.id, ())]
        rows.extend(
            {
                "notice_id": notice.id,
                "recipient": entry.recipient,
                "addresses": list(entry.addresses),
                "names": list(entry.names),
                "attachments": files,
                "day": day,
                "digest_key": None,
                "created_at": now,
            }
            for entry in entries
        )
    if rows:
        session.execute(insert_ignoring(session, table_of(DigestEntry)), rows)
    return single


def hold_return(
    *,
    session: Session,
    checkin: Checkin,
    review: CheckinReview,
    department: Department,
    policy: SupervisionPolicy,
) -> str:
    """Under `departments: digest`, record the return `review` of `checkin` as a `returned`
    notice with its department digest entry (the department's next digest lists the
    check-in with the reason and its new due date); returns the notice's key, or "" when the
    return keeps its own email (`departments: each`, or no contact address). Does not commit."""
    key = f"returned:{review.id}"
    recipients = recipients_for(department, ["contact"], [])
    if not held_entries(
        key=key,
        kind=NoticeKind.RETURNED.value,
        department_id=department.id,
        recipients=recipients,
        rule=policy.delivery,
    ):
        return ""
    notice = Notice(
        key=key,
        kind=NoticeKind.RETURNED,
        level=0,
        item_id=checkin.item_id,
        department_id=department.id,
        checkin_id=checkin.id,
        recipients=recipients,
        reason=review.reason,
        decided_at=review.decided_at,
    )
    session.add(notice)
    session.flush()
    hold_for_digest(session=session, notices=[notice], policy=policy, now=review.decided_at)
    return key


def compose_digests(
    *, session: Session, now: datetime, settings: Settings | None = None
) -> list[str]:
    """Compose the digest of every recipient with waiting entries (module doc); returns the
    keys of the digests added to the outbox, in recipient order. Does not commit.

    A line whose check-in is no longer pending (reported since) is left out; a digest with
    nothing left is not sent, its entries are marked all the same.
    """
    settings = settings or get_settings()
    entries = table_of(DigestEntry)
    token = f"claim:{uuid.uuid4().hex}"
    claimed = session.execute(
        update(entries)
        .where(entries.c.digest_key.is_(None), entries.c.day <= local_date(now))
        .values(digest_key=token)
        .returning(
            entries.c.id,
            entries.c.notice_id,
            entries.c.recipient,
            entries.c.addresses,
            entries.c.names,
            entries.c.attachments,
        )
    ).all()
    if not claimed:
        return []
    notices = _by_id(session, Notice, sorted({row.notice_id for row in claimed}))
    checkins = _by_id(
        session,
        Checkin,
        sorted({n.checkin_id for n in notices.values() if n.checkin_id is not None}),
    )
    items = {
        item.id: item
        for chunk in chunked(sorted({n.item_id for n in notices.values() if n.item_id}))
        for item in session.scalars(
            select(Item)
            .where(Item.id.in_(chunk))
            .options(selectinload(Item.plan), selectinload(Item.targets))
        )
    }
    departments = _by_id(
        session,
        Department,
        sorted({n.department_id for n in notices.values() if n.department_id is not None}),
    )
    facts = []
    for row in claimed:
        notice = notices[row.notice_id]
        if notice.item_id not in items or notice.department_id not in departments:
            continue
        checkin = checkins.get(notice.checkin_id) if notice.checkin_id else None
        item = items[notice.item_id]
        facts.append(
            EntryFacts(
                entry_id=row.id,
                recipient=row.recipient,
                notice_id=notice.id,
                kind=str(notice.kind),
                level=notice.level,
                item_id=notice.item_id,
                department_id=notice.department_id,
                checkin_id=notice.checkin_id,
                due_date=checkin.due_date if checkin is not None else None,
                item_order=(item.plan_id, item.position, item.id),
                reason=notice.reason if notice.kind == NoticeKind.RETURNED else "",
            )
        )
    by_entry = {row.id: row for row in claimed}
    plans = group_digests(facts, day=local_date(now))
    messages: list[NewMessage] = []
    marks = [{"entry": row.id, "key": None} for row in claimed]
    keys_of = {}
    for plan in plans:
        for entry_id in plan.entry_ids:
            keys_of[entry_id] = plan.key
        live = live_lines(plan, checkins)
        if not live.items:
            continue
        rows = [by_entry[entry_id] for entry_id in plan.entry_ids]
        to = list(dict.fromkeys(address for row in rows for address in row.addresses))
        names = list(dict.fromkeys(name for row in rows for name in row.names))
        files = list({file["filename"]: file for row in rows for file in row.attachments}.values())
        context = digest_context(
            plan=live,
            settings=settings,
            items=items,
            checkins=checkins,
            departments=departments,
            notices=notices,
            names=names,
            now=now,
        )
        try:
            messages.append(digest_message(plan=live, context=context, to=to, attachments=files))
        except HeaderInjectionError:
            logger.warning(
                "no digest %s: its subject or an address contains a line break", plan.key
            )
    for mark in marks:
        # An entry whose notice lost its item or department is closed with a key of its own.
        mark["key"] = keys_of.get(int(str(mark["entry"])), f"digest:none:{mark['entry']}")
    session.execute(
        update(entries)
        .where(entries.c.id == bindparam("entry"))
        .values(digest_key=bindparam("key"))
        .execution_options(synchronize_session=False),
        marks,
    )
    insert_messages(session=session, messages=messages, now=now)
    return [message.key for message in messages]


def _by_id(session: Session, entity: type[_Row], ids: Sequence[int]) -> dict[int, _Row]:
    return {
        row.id: row
        for chunk in chunked(ids)
        for row in session.scalars(select(entity).where(entity.id.in_(chunk)))
    }


def compose_digests_now(sessions: sessionmaker[Session], now: datetime) -> list[str]:
    """`compose_digests` in a transaction of its own: the end-of-pass step of a flow."""
    with transaction(sessions) as session:
        return compose_digests(session=session, now=now)
