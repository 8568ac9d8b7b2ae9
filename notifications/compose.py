"""Composing email from the database: build a template context, render it, enqueue it.

Each function reads what the message needs (item, plan, phase, department, check-in,
targets, last submission), renders it with `notifications.rendering` and writes one outbox
row with `enqueue_message` in the caller's transaction (it does not commit). The outbox
key is derived from the business key, so composing the same notice twice writes one row.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import LOCAL_TZ, local_date
from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Plan
from models.report import Report
from models.settings import Settings, get_settings
from models.supervision import Checkin, Extension, Notice, Submission
from notifications.context import (
    as_number,
    build_item_context,
    chunked,
    item_context,
    load_context_rows,
    load_item,
    period_label,
    submission_summary,
)
from notifications.outbox import NewMessage, enqueue_message, enqueue_messages
from notifications.rendering import format_date, render_message

LEVEL_LABELS = {1: "分管领导督办", 2: "主要负责人督办", 3: "督查室督办"}
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
    """To addresses, their names and the Cc addresses of a notice's email."""
    emails, names = _addresses(notice.recipients)
    copied: list[str] = []
    if notice.kind == "escalation":
        leaders = [
            r for r in notice.recipients if isinstance(r, dict) and r.get("role") != "contact"
        ]
        if leaders:
            emails, names = _addresses(leaders)
            copied = [e for e in _addresses(notice.recipients)[0] if e not in emails]
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
    settings = settings or get_settings()
    wanted = []
    for notice in notices:
        emails, names, copied = _notice_recipients(notice)
        if emails and notice.item_id is not None and notice.kind in ITEM_KINDS:
            wanted.append((notice, notice.item_id, emails, names, copied))
    checkin_ids = sorted({n.checkin_id for n, *_ in wanted if n.checkin_id is not None})
    checkins = {
        row.id: row
        for chunk in chunked(checkin_ids)
        for row in session.scalars(select(Checkin).where(Checkin.id.in_(chunk)))
    }
    resolved = []
    for notice, item_id, emails, names, copied in wanted:
        checkin = checkins.get(notice.checkin_id) if notice.checkin_id else None
        department_id = notice.department_id or (checkin.department_id if checkin else None)
        if department_id is not None:
            resolved.append((notice, item_id, department_id, checkin, emails, names, copied))
    department_ids = sorted({department_id for _, _, department_id, *_ in resolved})
    departments = {
        row.id: row
        for chunk in chunked(department_ids)
        for row in session.scalars(select(Department).where(Department.id.in_(chunk)))
    }
    resolved = [entry for entry in resolved if entry[2] in departments]
    rows = load_context_rows(
        session,
        pairs={(item_id, department_id) for _, item_id, department_id, *_ in resolved},
        pending_pairs={(e[1], e[2]) for e in resolved if e[3] is None},
    )
    messages = []
    for notice, item_id, department_id, checkin, emails, names, copied in resolved:
        department = departments[department_id]
        item = rows.items[item_id]
        context = build_item_context(
            settings=settings,
            item=item,
            department=department,
            checkin=checkin or rows.next_pending.get((item_id, department_id)),
            now=now,
            recipient_name="、".join(names) or department.name,
            phases=rows.phases.get(item.plan_id, []),
            last=rows.latest.get((item_id, department_id)),
        )
        if notice.kind == "escalation":
            context["level"] = notice.level
            context["level_label"] = LEVEL_LABELS.get(notice.level, f"第{notice.level}级督办")
            context["reason"] = notice.reason
        rendered = render_message(notice.kind, context)
        messages.append(
            NewMessage(
                key=_outbox_key("notice", notice.key),
                kind=notice.kind,
                to=emails,
                cc=copied,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                notice_id=notice.id,
            )
        )
    return messages


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

    Recipients come from `notice.recipients` (`{role, name, email}`); an escalation goes to
    the leaders with the department's contacts in Cc. Returns the outbox row (the existing
    one if the notice was enqueued before), or None, writing nothing, when the notice has no
    item, no department or no recipient with an address. The batch of one of
    `enqueue_notice_emails`.
    """
    messages = notice_messages(session=session, notices=[notice], now=now, settings=settings)
    if not messages:
        return None
    return enqueue_messages(session=session, messages=messages, now=now).rows[messages[0].key]


def enqueue_receipt_email(
    *, session: Session, submission: Submission, now: datetime, settings: Settings | None = None
) -> OutboxMessage | None:
    """Enqueue the receipt (回执) for one submission version to the department's contacts.

    Returns None when the department has no contact address.
    """
    settings = settings or get_settings()
    checkin = session.get(Checkin, submission.checkin_id)
    if checkin is None:
        return None
    department = session.get(Department, checkin.department_id)
    if department is None or not department.contact_emails:
        return None
    item = load_item(session, checkin.item_id)
    context = item_context(
        session=session,
        settings=settings,
        item=item,
        department=department,
        checkin=checkin,
        now=now,
        recipient_name=f"{department.name} {department.contact_name}".strip(),
        exclude_submission_id=submission.id,
    )
    extension = session.scalars(
        select(Extension)
        .where(
            Extension.checkin_id == checkin.id,
            Extension.requested_at == submission.submitted_at,
        )
        .limit(1)
    ).first()
    targets = {str(target.id): target for target in item.targets}
    submitted_local = submission.submitted_at.astimezone(LOCAL_TZ)
    context["submission"] = {
        **submission_summary(submission),
        "submitted_text": f"{format_date(submitted_local.date())}{submitted_local:%H:%M}",
        "figures": [
            {"text": targets[key].text, "unit": targets[key].unit, "value": number}
            for key, value in submission.values.items()
            if key in targets and (number := as_number(value)) is not None
        ],
        "extension": (
            {"requested_date": extension.requested_date, "reason": extension.reason}
            if extension is not None
            else None
        ),
    }
    rendered = render_message("receipt", context)
    return enqueue_message(
        session=session,
        key=_outbox_key("receipt", str(submission.id)),
        kind="receipt",
        to=list(department.contact_emails),
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        now=now,
    )


def enqueue_report_email(
    *,
    session: Session,
    report: Report,
    recipients: Sequence[str | dict[str, Any]],
    now: datetime,
    settings: Settings | None = None,
) -> OutboxMessage | None:
    """Enqueue the delivery (通报) of `report` with its files attached, once per report.

    `recipients` are addresses or `{name, email}` dicts; returns None when there are none.
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
    }
    rendered = render_message("report", context)
    return enqueue_message(
        session=session,
        key=_outbox_key("report", str(report.id)),
        kind="report",
        to=emails,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        now=now,
        attachments=attachments,
    )
