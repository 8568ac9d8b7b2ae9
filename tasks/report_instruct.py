"""Report emails with leaders' instruct links: each 分管领导 or 主要负责人 among a report's
recipients gets an own copy carrying instruct links for the items their departments lead.

A recipient is a leader when their address is a department's `leader_email` (role
`leader`) or `head_email` (`head`) in the directory. Each leader's copy has its own outbox
key (`report:<id>:leader:<digest>`), so the links in it are seen by that leader alone; every
other recipient shares the plain copy (`report:<id>`), as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.directory import Department
from models.limits import add_days
from models.report import Report
from models.review import Review
from models.settings import Settings, get_settings
from models.supervision import Assignment
from models.vocabulary import AssignmentRole, Colour, RecipientRole
from notifications.compose import enqueue_report_email
from notifications.links import make_instruct_token

MAX_LINKS = 30
COLOUR_ORDER = {Colour.RED: 0, Colour.AMBER: 1, Colour.GREEN: 2, Colour.NONE: 3}


def _email_of(recipient: str | dict[str, Any]) -> str:
    return recipient if isinstance(recipient, str) else str(recipient.get("email") or "")


def leader_roles(
    *, session: Session, recipients: Sequence[str | dict[str, Any]]
) -> dict[str, list[tuple[int, RecipientRole]]]:
    """Per recipient address that is a leader in the directory: its (department id, role)
    pairs, by department id. One query."""
    emails = sorted({email for recipient in recipients if (email := _email_of(recipient))})
    if not emails:
        return {}
    found: dict[str, list[tuple[int, RecipientRole]]] = {}
    for dept in session.scalars(
        select(Department)
        .where(or_(Department.leader_email.in_(emails), Department.head_email.in_(emails)))
        .order_by(Department.id)
    ):
        if dept.leader_email in emails:
            found.setdefault(dept.leader_email, []).append((dept.id, RecipientRole.LEADER))
        if dept.head_email in emails:
            found.setdefault(dept.head_email, []).append((dept.id, RecipientRole.HEAD))
    return found


def report_links(
    *,
    session: Session,
    settings: Settings,
    review: Review,
    roles: Sequence[tuple[int, RecipientRole]],
    now: datetime,
) -> list[dict[str, Any]]:
    """One leader's instruct links: the report's items that a department of theirs leads,
    red first, then amber, green and unrated, at most `MAX_LINKS`."""
    lines = {line.item_id: line for block in review.sections for line in block.items}
    role_of = dict(roles)
    leads = session.execute(
        select(Assignment.item_id, Assignment.department_id)
        .where(
            Assignment.item_id.in_(list(lines)),
            Assignment.department_id.in_(list(role_of)),
            Assignment.role == AssignmentRole.LEAD,
            Assignment.ended_at.is_(None),
        )
        .order_by(Assignment.department_id)
    ).tuples()
    chosen: dict[int, int] = {}
    for item_id, department_id in leads:
        chosen.setdefault(item_id, department_id)
    ordered = sorted(
        chosen,
        key=lambda item_id: (
            COLOUR_ORDER.get(Colour.of(lines[item_id].colour) or Colour.NONE, 3),
            item_id,
        ),
    )
    expires_on = add_days(local_date(now), settings.instruct_link_valid_days)
    links = []
    for item_id in ordered[:MAX_LINKS]:
        line = lines[item_id]
        department_id = chosen[item_id]
        token = make_instruct_token(
            settings=settings,
            item_id=item_id,
            department_id=department_id,
            role=role_of[department_id],
            expires_on=expires_on,
        )
        links.append(
            {
                "item": f"第{line.number}项 {line.title}",
                "colour": Colour.label_of(line.colour),
                "url": f"{settings.public_url}/i/{token}",
                "expires_on": expires_on,
            }
        )
    return links


def enqueue_report_emails(
    *,
    session: Session,
    report: Report,
    review: Review,
    recipients: Sequence[str | dict[str, Any]],
    now: datetime,
    settings: Settings | None = None,
) -> bool:
    """Enqueue the report to `recipients`: an own copy with instruct links per leader, one
    shared copy for the others; True when any was enqueued. Does not commit."""
    settings = settings or get_settings()
    leaders = leader_roles(session=session, recipients=recipients)
    others = [recipient for recipient in recipients if _email_of(recipient) not in leaders]
    sent = False
    if others:
        shared = enqueue_report_email(
            session=session, report=report, recipients=others, now=now, settings=settings
        )
        sent = shared is not None
    for recipient in recipients:
        email = _email_of(recipient)
        if email not in leaders:
            continue
        digest = hashlib.sha256(email.encode()).hexdigest()[:16]
        links = report_links(
            session=session, settings=settings, review=review, roles=leaders[email], now=now
        )
        message = enqueue_report_email(
            session=session,
            report=report,
            recipients=[recipient],
            now=now,
            settings=settings,
            key=f"report:{report.id}:leader:{digest}",
            instruct_links=links,
        )
        sent = sent or message is not None
    return sent
