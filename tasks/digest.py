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
from typing import Any, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from models.catch_up import HELD
from models.clock import local_date
from models.daily_pass import recipients_for
from models.db import transaction
from models.digest import (
    DeliveryRule,
    DigestEntry,
    EntryFacts,
    delivery_decision,
    group_digests,
    held_entries,
    leader_key,
)
from models.directory import Department, DepartmentAlias
from models.plan import Item
from models.policy import DeliveryNames, SupervisionPolicy
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Notice
from models.vocabulary import NoticeKind
from notifications.context import chunked
from notifications.digest import digest_context, digest_message, live_lines
from notifications.outbox import HeaderInjectionError, NewMessage, insert_messages
from tasks.sql import insert_ignoring, table_of

logger = logging.getLogger(__name__)
_Row = TypeVar("_Row", Notice, Checkin, Department)

__all__ = [
    "compose_digests",
    "compose_digests_now",
    "delivery_names",
    "hold_for_digest",
    "hold_return",
]


def delivery_names(session: Session) -> DeliveryNames:
    """The directory's names for checking a policy's per-recipient `delivery` lists
    (`models.policy.load_policy(names=…)`): departments and aliases, and every leader's,
    head's and supervision office's contact name and address. Two queries."""
    departments: dict[str, str] = {}
    leaders: set[str] = set()
    for row in session.execute(
        select(
            Department.name,
            Department.leader_name,
            Department.leader_email,
            Department.head_name,
            Department.head_email,
            Department.is_supervision_office,
            Department.contact_name,
            Department.contact_emails,
        )
    ):
        departments[row.name] = row.name
        people = [row.leader_name, row.leader_email, row.head_name, row.head_email]
        if row.is_supervision_office:
            people += [row.contact_name or row.name, *map(str, row.contact_emails or [])]
        leaders.update(leader_key(person) for person in people if person)
    for alias, name in session.execute(
        select(DepartmentAlias.alias, Department.name).join(
            Department, Department.id == DepartmentAlias.department_id
        )
    ).tuples():
        departments.setdefault(alias, name)
    return DeliveryNames(departments=departments, leaders=frozenset(leaders))


def hold_for_digest(
    *,
    session: Session,
    notices: Sequence[Notice],
    policy: SupervisionPolicy,
    now: datetime,
    attachments: Mapping[int, Sequence[dict[str, str]]] | None = None,
    departments: Mapping[int, Department] | None = None,
) -> list[Notice]:
    """The `notices` (just recorded, with ids) that keep their own email under the policy's
    `delivery` (`models.digest.delivery_decision`, per recipient); the others get their
    digest entries (one INSERT, a repeated one ignored), carrying their `attachments` (by
    notice id). A notice that keeps its email for some leaders and goes to the digests of
    others has those others marked `held` in its recipients, so its email leaves them out.
    `departments` (by id) give the names the policy's per-department lists match; missing
    ones are read in one query. Nothing is written when no recipient gets a digest."""
    rule = policy.delivery
    if rule.all_each:
        return list(notices)
    names = _department_names(session, rule, notices, departments or {})
    single: list[Notice] = []
    rows: list[dict[str, object]] = []
    marks: list[dict[str, object]] = []
    day = local_date(now)
    for notice in notices:
        decision = delivery_decision(
            key=notice.key,
            kind=str(notice.kind),
            department_id=notice.department_id,
            recipients=notice.recipients,
            rule=rule,
            department_name=names.get(notice.department_id or 0, ""),
        )
        if decision.single:
            single.append(notice)
            if decision.held:
                notice.recipients = _marked(notice.recipients, decision.held)
                marks.append({"notice": notice.id, "marked": notice.recipients})
        if not decision.entries:
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
            for entry in decision.entries
        )
    if rows:
        session.execute(insert_ignoring(session, table_of(DigestEntry)), rows)
    if marks:  # the pass's notices are transient rows: the marks are written here
        notices_table = table_of(Notice)
        session.execute(
            update(notices_table)
            .where(notices_table.c.id == bindparam("notice"))
            .values(recipients=bindparam("marked"))
            .execution_options(synchronize_session=False),
            marks,
        )
    return single


def _department_names(
    session: Session,
    rule: DeliveryRule,
    notices: Sequence[Notice],
    departments: Mapping[int, Department],
) -> dict[int, str]:
    """The names of the notices' departments, when the policy has per-department lists."""
    if not rule.digest_departments and not rule.each_departments:
        return {}
    ids = {n.department_id for n in notices if n.department_id is not None}
    names = {i: departments[i].name for i in ids if i in departments}
    missing = sorted(ids - set(names))
    for chunk in chunked(missing):
        names.update(
            session.execute(select(Department.id, Department.name).where(Department.id.in_(chunk)))
            .tuples()
            .all()
        )
    return names


def _marked(recipients: Sequence[Any], held: frozenset[str]) -> list[Any]:
    """`recipients` with the entries of the `held` addresses marked `held` (a new list, so
    the JSON column sees the change)."""
    return [
        {**r, HELD: "1"} if isinstance(r, dict) and r.get("email") in held else r
        for r in recipients
    ]


def hold_return(
    *,
    session: Session,
    checkin: Checkin,
    review: CheckinReview,
    department: Department,
    policy: SupervisionPolicy,
) -> str:
    """When the department gets digests (`departments: digest` or its name in
    `digest_departments`), record the return `review` of `checkin` as a `returned`
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
        department_name=department.name,
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
    hold_for_digest(
        session=session,
        notices=[notice],
        policy=policy,
        now=review.decided_at,
        departments={department.id: department},
    )
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
