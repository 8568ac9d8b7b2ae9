"""Composing email from the database: build a template context, render it, enqueue it.

Each function reads what the message needs (item, plan, phase, department, check-in,
targets, last submission), renders it with `notifications.rendering` and writes one outbox
row with `enqueue_message` in the caller's transaction (it does not commit). The outbox
key is derived from the business key, so composing the same notice twice writes one row.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.catch_up import HELD
from models.clock import local_date
from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Item, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.report import Report
from models.settings import Settings, get_settings
from models.supervision import Checkin, Extension, Notice, Submission
from models.vocabulary import NoticeKind, RecipientRole
from notifications.context import (
    ContextRows,
    SharedContext,
    build_item_context,
    chunked,
    load_context_rows,
    period_label,
)
from notifications.links import instruct_links
from notifications.outbox import (
    HeaderInjectionError,
    NewMessage,
    check_header,
    enqueue_message,
    enqueue_messages,
    insert_messages,
)
from notifications.receipt import receipt_for
from notifications.rendering import render_message

logger = logging.getLogger(__name__)
ITEM_KINDS = ("assignment", "request", "reminder", "escalation")


def _outbox_key(prefix: str, key: str) -> str:
    full = f"{prefix}:{key}"
    if len(full) <= 200:
        return full
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _addresses(recipients: Sequence[Any]) -> tuple[list[str], list[str]]:
    emails: list[str] = []
    names: list[str] = []
    for recipient in recipients:
        if isinstance(recipient, str):
            email, name = recipient, ""
        else:
            email, name = str(recipient.get("email") or ""), str(recipient.get("name") or "")
        if email and email not in emails:
            emails.append(email)
            if name:
                names.append(name)
    return emails, names


def _notice_recipients(notice: Notice) -> tuple[list[str], list[str], list[str]]:
    """To addresses, their names and the Cc addresses of a notice's email (recipients the
    catch-up cap held back, `models.catch_up.HELD`, get it in their summary instead)."""
    recipients = [r for r in notice.recipients if not (isinstance(r, dict) and r.get(HELD))]
    emails, names = _addresses(recipients)
    copied: list[str] = []
    if notice.kind == "escalation":
        leaders = [r for r in recipients if isinstance(r, dict) and r.get("role") != "contact"]
        if leaders:
            emails, names = _addresses(leaders)
            copied = [e for e in _addresses(recipients)[0] if e not in emails]
    return emails, names, copied


def notice_messages(
    *,
    session: Session,
    notices: Sequence[Notice],
    now: datetime,
    settings: Settings | None = None,
) -> list[NewMessage]:
    """Render the email of every notice that has one (see `enqueue_notice_email`).

    Reads with a fixed number of set-based queries (per 500 rows), writes nothing. A notice
    without an item, a department or a recipient with an address has no message.
    """
    wanted = [notice for notice in notices if _wants_message(notice)]
    checkin_ids = sorted({n.checkin_id for n in wanted if n.checkin_id is not None})
    checkins = {
        row.id: row
        for chunk in chunked(checkin_ids)
        for row in session.scalars(select(Checkin).where(Checkin.id.in_(chunk)))
    }
    pairs = {
        (notice.item_id, department_id)
        for notice in wanted
        if notice.item_id is not None
        and (department_id := _department_id(notice, checkins)) is not None
    }
    departments = {
        row.id: row
        for chunk in chunked(sorted({department_id for _, department_id in pairs}))
        for row in session.scalars(select(Department).where(Department.id.in_(chunk)))
    }
    rows = load_context_rows(
        session,
        pairs={pair for pair in pairs if pair[1] in departments},
        pending_pairs={
            (notice.item_id, department_id)
            for notice in wanted
            if notice.item_id is not None
            and notice.checkin_id is None
            and (department_id := _department_id(notice, checkins)) in departments
        },
    )
    return messages_from_rows(
        notices=wanted,
        rows=rows,
        checkins=checkins,
        departments=departments,
        now=now,
        settings=settings,
    )


def _wants_message(notice: Notice) -> bool:
    return (
        notice.item_id is not None
        and notice.kind in ITEM_KINDS
        and bool(_notice_recipients(notice)[0])
    )


def _department_id(notice: Notice, checkins: Mapping[int, Checkin]) -> int | None:
    checkin = checkins.get(notice.checkin_id) if notice.checkin_id else None
    return notice.department_id or (checkin.department_id if checkin else None)


def escalation_label(policy: SupervisionPolicy, level: int) -> str:
    """The title of a level-`level` escalation under `policy`: who it goes to, from the
    policy's ladder (`分管领导督办`, `主要负责人、督查室督办`); `第n级督办` for a level
    the ladder does not have."""
    for rung in policy.escalation:
        if rung.level == level:
            return "、".join(RecipientRole.label_of(role) for role in rung.recipients) + "督办"
    return f"第{level}级督办"


def messages_from_rows(
    *,
    notices: Sequence[Notice],
    rows: ContextRows,
    checkins: Mapping[int, Checkin],
    departments: Mapping[int, Department],
    now: datetime,
    settings: Settings | None = None,
    attachments: Mapping[int, Sequence[dict[str, str]]] | None = None,
) -> list[NewMessage]:
    """Render the email of every notice from rows already loaded (no queries); a notice's
    `attachments` (by notice id) go with its email and are named in it.

    `rows.items` must have their plan and targets loaded. A notice whose item or department
    is not in the rows, or with no recipient address, has no message. A message that cannot
    be composed (a line break in its subject, from a department's name for example) is
    logged and left out; the others are composed.
    """
    settings = settings or get_settings()
    policies: dict[int, SupervisionPolicy] = {}
    shared = SharedContext()
    attachments = attachments or {}
    messages = []
    for notice in notices:
        kind, item_id = notice.kind, notice.item_id
        if item_id is None or kind not in ITEM_KINDS:
            continue
        emails, names, copied = _notice_recipients(notice)
        if not emails:
            continue
        checkin_id = notice.checkin_id
        checkin = checkins.get(checkin_id) if checkin_id else None
        department_id = notice.department_id or (checkin.department_id if checkin else None)
        department = departments.get(department_id) if department_id is not None else None
        item = rows.items.get(item_id)
        if department is None or item is None:
            continue
        pair = (item.id, department.id)
        context = build_item_context(
            settings=settings,
            item=item,
            department=department,
            checkin=checkin or rows.next_pending.get(pair),
            now=now,
            recipient_name="、".join(names) or department.name,
            phases=rows.phases.get(item.plan_id, []),
            last=rows.latest.get(pair),
            shared=shared,
        )
        notice_id = notice.id
        attached = list(attachments.get(notice_id, ()))
        context["attached"] = [attachment["filename"] for attachment in attached]
        copies = [(notice.key, emails, copied, context)]
        if kind == NoticeKind.ESCALATION:
            if item.plan_id not in policies:
                policies[item.plan_id] = parse_policy(item.plan.policy or None)
            context["level"] = notice.level
            context["level_label"] = escalation_label(policies[item.plan_id], notice.level)
            context["reason"] = notice.reason
            copies = _escalation_copies(
                notice,
                copies[0],
                partial(
                    instruct_links,
                    settings=settings,
                    item_id=item.id,
                    department_id=department.id,
                    now=now,
                ),
            )
        for key, to, cc, own in copies:
            try:
                rendered = render_message(kind, own)
                for value in (*to, *cc):
                    check_header(value)
            except HeaderInjectionError:
                logger.warning(
                    "no email for notice %s: its subject or an address contains a line break",
                    notice.key,
                )
                continue
            messages.append(
                NewMessage(
                    key=_outbox_key("notice", key),
                    kind=kind,
                    to=to,
                    cc=cc,
                    subject=rendered.subject,
                    text_body=rendered.text,
                    html_body=rendered.html,
                    notice_id=notice_id,
                    attachments=attached,
                )
            )
    return messages


_Copy = tuple[str, list[str], list[str], dict[str, Any]]
_LEADER_ROLES = frozenset({RecipientRole.LEADER.value, RecipientRole.HEAD.value})


def _escalation_copies(
    notice: Notice,
    default: _Copy,
    links_for: Callable[..., list[dict[str, object]]],
) -> list[_Copy]:
    """An escalation's emails, `(business key, to, cc, context)` each, from the one email
    `default` would be.

    A leader's instruct link is seen by that leader alone: when the escalation goes to one
    leader and nobody else, that one email (key `notice:<key>`) carries the link; otherwise
    the others (the office, contacts in Cc) get the shared copy without links under the same
    key and each leader (分管领导, 主要负责人) an own copy with their link only, keyed
    `notice:<key>:leader:<digest>` (stable: composing again sends nothing twice)."""
    key, to, cc, context = default
    recipients = [
        r for r in notice.recipients if isinstance(r, dict) and r.get("email") and not r.get(HELD)
    ]
    leaders = [r for r in recipients if str(r.get("role") or "") in _LEADER_ROLES]
    emails = {str(r["email"]) for r in leaders}
    others = [r for r in recipients if str(r["email"]) not in emails]
    if not others and len(emails) <= 1:
        return [
            (key, to, cc, context | {"instruct_links": links_for(recipients=notice.recipients)})
        ]
    copies: list[_Copy] = []
    if others:
        named = [r for r in others if r.get("role") != RecipientRole.CONTACT.value] or others
        shared_to, names = _addresses(named)
        shared_cc = [e for e in _addresses(others)[0] if e not in shared_to]
        shared = {"recipient_name": "、".join(names) or context["recipient_name"]}
        copies.append((key, shared_to, shared_cc, context | shared | {"instruct_links": []}))
    for email in dict.fromkeys(str(r["email"]) for r in leaders):
        own = [r for r in leaders if r["email"] == email]
        name = next((str(r["name"]) for r in own if r.get("name")), "")
        digest = hashlib.sha256(email.encode()).hexdigest()[:16]
        mine = {
            "recipient_name": name or context["recipient_name"],
            "instruct_links": links_for(recipients=own),
        }
        copies.append((f"{key}:leader:{digest}", [email], [], context | mine))
    return copies


def insert_notice_emails(
    *,
    session: Session,
    notices: Sequence[Notice],
    rows: ContextRows,
    checkins: Mapping[int, Checkin],
    departments: Mapping[int, Department],
    now: datetime,
    settings: Settings | None = None,
    attachments: Mapping[int, Sequence[dict[str, str]]] | None = None,
) -> int:
    """Compose the emails of `notices` from loaded rows (`messages_from_rows`) and insert
    them in one statement (`insert_messages`); returns rows added. `attachments` by notice
    id (a 督办单 with its escalation) go with their notice's email. Does not commit."""
    messages = messages_from_rows(
        notices=notices,
        rows=rows,
        checkins=checkins,
        departments=departments,
        now=now,
        settings=settings,
        attachments=attachments,
    )
    return insert_messages(session=session, messages=messages, now=now)


def enqueue_notice_emails(
    *,
    session: Session,
    notices: Sequence[Notice],
    now: datetime,
    settings: Settings | None = None,
) -> int:
    """Render and enqueue the email of every notice in one batch; returns rows added.

    Set-based reads (`notice_messages`), one key check and one batched INSERT at the next
    flush (`enqueue_messages`: a key already in the outbox is skipped). Does not commit.
    """
    messages = notice_messages(session=session, notices=notices, now=now, settings=settings)
    return enqueue_messages(session=session, messages=messages, now=now).added


def enqueue_notice_email(
    *, session: Session, notice: Notice, now: datetime, settings: Settings | None = None
) -> OutboxMessage | None:
    """Render `notice` (assignment, request, reminder, escalation) and enqueue its email.

    Recipients come from `notice.recipients` (`{role, name, email}`); an escalation to
    leaders and others gives each leader an own copy with their instruct link
    (`_escalation_copies`). Returns the notice's first outbox row (the existing one if the
    notice was enqueued before), or None, writing nothing, when the notice has no item, no
    department or no recipient with an address. The batch of one of `enqueue_notice_emails`.
    """
    messages = notice_messages(session=session, notices=[notice], now=now, settings=settings)
    if not messages:
        return None
    return enqueue_messages(session=session, messages=messages, now=now).rows[messages[0].key]


def enqueue_receipt_email(
    *, session: Session, submission: Submission, now: datetime, settings: Settings | None = None
) -> OutboxMessage | None:
    """Enqueue the receipt (回执) for one submission version to the department's contacts.

    Returns None when the department has no contact address. Loads the check-in and the
    extension asked for with this version, then composes with `notifications.receipt`
    (which `tasks.submissions` calls directly with the rows it holds).
    """
    checkin = session.scalars(
        select(Checkin)
        .where(Checkin.id == submission.checkin_id)
        .options(
            selectinload(Checkin.item).selectinload(Item.plan),
            selectinload(Checkin.item).selectinload(Item.targets),
            selectinload(Checkin.department),
        )
    ).first()
    if checkin is None:
        return None
    extension = session.scalars(
        select(Extension)
        .where(
            Extension.checkin_id == checkin.id,
            Extension.requested_at == submission.submitted_at,
        )
        .limit(1)
    ).first()
    message = receipt_for(
        session=session,
        checkin=checkin,
        submission=submission,
        extension=extension,
        now=now,
        settings=settings,
    )
    if message is None:
        return None
    return enqueue_messages(session=session, messages=[message], now=now).rows[message.key]


def enqueue_report_email(
    *,
    session: Session,
    report: Report,
    recipients: Sequence[str | dict[str, Any]],
    now: datetime,
    settings: Settings | None = None,
    key: str | None = None,
    instruct_links: Sequence[Mapping[str, Any]] = (),
) -> OutboxMessage | None:
    """Enqueue the delivery (通报) of `report` with its files attached, once per report.

    `recipients` are addresses or `{name, email}` dicts; returns None when there are none.
    A leader's own copy has its own `key` (default `report:<id>`) and carries
    `instruct_links` (`{item, colour, url, expires_on}`: one leader's instruct links).
    """
    settings = settings or get_settings()
    emails, names = _addresses(recipients)
    if not emails:
        return None
    plan = session.get(Plan, report.plan_id)
    if plan is None:
        return None
    attachments = []
    for path_text in report.files.values():
        path = Path(str(path_text))
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        attachments.append({"path": str(path), "filename": path.name, "mime": mime})
    summary_lines = report.summary.get("lines", [])
    context = {
        "organisation": settings.organisation or plan.organisation or settings.mail_from_name,
        "recipient_name": "、".join(names) or "各位领导",
        "sent_on": local_date(now),
        "plan": {"title": plan.title, "year": plan.year},
        "report": {
            "period_label": period_label(report.period),
            "kind_label": "总结评估" if report.kind == "year" else "督办通报",
            "as_of_date": local_date(report.as_of),
            "summary_lines": [str(line) for line in summary_lines]
            if isinstance(summary_lines, list)
            else [],
            "attachments": [attachment["filename"] for attachment in attachments],
        },
        "instruct_links": [dict(link) for link in instruct_links],
    }
    rendered = render_message("report", context)
    return enqueue_message(
        session=session,
        key=key or _outbox_key("report", str(report.id)),
        kind="report",
        to=emails,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        now=now,
        attachments=attachments,
    )
