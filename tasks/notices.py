"""Recording notices (交办, 报送提醒, 催办, 督办) once per business key, with their email.

A notice is inserted inside a SAVEPOINT: when a concurrent run inserted the same key first,
the database's unique constraint rejects ours and the notice is skipped, so nothing is ever
sent twice. The email is enqueued in the same transaction by `notifications.compose`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.directory import Department
from models.plan import Item
from models.supervision import Checkin, Notice
from notifications.compose import enqueue_notice_email
from tasks.events import record_event, related

ROLE_LABELS = {
    "contact": "部门联系人",
    "leader": "分管领导",
    "head": "主要负责人",
    "office": "督查室",
}


def recipients_for(
    department: Department, roles: Iterable[str], offices: Sequence[Department]
) -> list[dict[str, str]]:
    """`{role, name, email}` for each role (`contact`, `leader`, `head`, `office`).

    A role without an address is skipped; `office` expands to every supervision-office
    department's contacts. Duplicate addresses keep their first role.
    """
    found: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(role: str, name: str, email: str) -> None:
        if email and email not in seen:
            seen.add(email)
            found.append({"role": role, "name": name, "email": email})

    for role in roles:
        if role == "contact":
            for email in department.contact_emails:
                add(role, department.contact_name, str(email))
        elif role == "leader":
            add(role, department.leader_name, department.leader_email)
        elif role == "head":
            add(role, department.head_name, department.head_email)
        elif role == "office":
            for office in offices:
                for email in office.contact_emails:
                    add(role, office.contact_name or office.name, str(email))
    return found


def record_notice(
    *,
    session: Session,
    key: str,
    kind: str,
    level: int,
    item_id: int,
    department_id: int,
    checkin_id: int | None,
    recipients: list[dict[str, str]],
    reason: str,
    now: datetime,
    enqueue_email: bool = True,
) -> Notice | None:
    """Insert the notice for `key` and enqueue its email; None if the key exists already.

    Does not commit. The insert runs in a SAVEPOINT so a duplicate key (a concurrent run)
    is skipped without disturbing the caller's transaction. With `enqueue_email=False` the
    caller enqueues the email of every notice returned, in batch, in the same transaction
    (`notifications.compose.enqueue_notice_emails`).
    """
    notice = Notice(
        key=key,
        kind=kind,
        level=level,
        item_id=item_id,
        department_id=department_id,
        checkin_id=checkin_id,
        recipients=recipients,
        reason=reason,
        decided_at=now,
    )
    try:
        with session.begin_nested():
            session.add(notice)
            session.flush([notice])
    except IntegrityError:
        return None
    if enqueue_email:
        enqueue_notice_email(session=session, notice=notice, now=now)
    return notice


def _related(item: Item, department: Department) -> list[dict[str, str]]:
    return [
        related("item", item.id, f"第{item.number}项 {item.title}"[:200]),
        related("department", department.id, department.name),
        related("plan", item.plan_id),
    ]


def record_notice_events(
    *,
    session: Session,
    item: Item,
    department: Department,
    checkin: Checkin,
    kind: str,
    level: int,
    now: datetime,
) -> None:
    """Domain events of one new notice: requested, reminded, overdue (level 1), escalated."""
    payload = {
        "item_id": item.id,
        "checkin_id": checkin.id,
        "department_id": department.id,
        "due_date": checkin.due_date.isoformat(),
        "kind": checkin.kind,
    }
    links = _related(item, department)
    checkin_resource = f"duban.checkin.{checkin.id}"
    if kind == "request":
        types = [("duban.checkin.requested", checkin_resource)]
    elif kind == "reminder":
        types = [("duban.checkin.reminded", checkin_resource)]
    elif level == 1:
        types = [
            ("duban.checkin.overdue", checkin_resource),
            ("duban.item.escalated", f"duban.item.{item.id}"),
        ]
    else:
        types = [("duban.item.escalated", f"duban.item.{item.id}")]
    for event_type, resource_id in types:
        record_event(
            session=session,
            event_type=event_type,
            resource_id=resource_id,
            occurred_at=now,
            now=now,
            related_resources=[related("checkin", checkin.id), *links]
            if resource_id != checkin_resource
            else links,
            payload={**payload, "level": level} if kind == "escalation" else payload,
        )
