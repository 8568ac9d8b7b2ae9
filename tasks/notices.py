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
from models.supervision import Notice
from notifications.compose import enqueue_notice_email

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
) -> Notice | None:
    """Insert the notice for `key` and enqueue its email; None if the key exists already.

    Does not commit. The insert runs in a SAVEPOINT so a duplicate key (a concurrent run)
    is skipped without disturbing the caller's transaction.
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
    enqueue_notice_email(session=session, notice=notice, now=now)
    return notice
