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
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.clock import LOCAL_TZ, local_date
from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Item, Phase, Plan
from models.report import Report
from models.settings import Settings, get_settings
from models.supervision import Checkin, Extension, Notice, Submission
from notifications.links import form_url
from notifications.outbox import enqueue_message
from notifications.rendering import format_date, render_message

ROLE_LABELS = {"lead": "牵头", "support": "配合"}
STATUS_LABELS = {
    "on_track": "正常推进",
    "at_risk": "存在风险",
    "blocked": "受阻",
    "done": "已完成",
}
LEVEL_LABELS = {1: "分管领导督办", 2: "主要负责人督办", 3: "督查室督办"}
ITEM_KINDS = ("assignment", "request", "reminder", "escalation")


def _outbox_key(prefix: str, key: str) -> str:
    full = f"{prefix}:{key}"
    if len(full) <= 200:
        return full
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def item_label(item: Item) -> str:
    """`第4项` for a numbered item, the number itself (`（一）`) otherwise."""
    return f"第{item.number}项" if item.number.isdigit() else item.number


def _phase_range(phase: Phase) -> str:
    if phase.start_text and phase.end_text:
        return f"{phase.start_text}至{phase.end_text}"
    return f"{format_date(phase.start_date)}至{format_date(phase.end_date)}"


def _submission_summary(submission: Submission) -> dict[str, Any]:
    return {
        "version": submission.version,
        "submitted_on": local_date(submission.submitted_at),
        "status_label": STATUS_LABELS.get(submission.status, submission.status),
        "narrative": submission.narrative,
        "problems": submission.problems,
        "next_steps": submission.next_steps,
    }


def _load_item(session: Session, item_id: int) -> Item:
    return session.scalars(
        select(Item)
        .where(Item.id == item_id)
        .options(selectinload(Item.plan), selectinload(Item.targets))
    ).one()


def _phase_for(session: Session, plan_id: int, key: str | None, on: date) -> Phase | None:
    phases = list(session.scalars(select(Phase).where(Phase.plan_id == plan_id)))
    if key is not None:
        for phase in phases:
            if phase.key == key:
                return phase
    for phase in phases:
        if phase.start_date <= on <= phase.end_date:
            return phase
    return None


def _latest_submission(
    session: Session, *, item_id: int, department_id: int, before_id: int | None = None
) -> Submission | None:
    query = (
        select(Submission)
        .join(Checkin, Submission.checkin_id == Checkin.id)
        .where(Checkin.item_id == item_id, Checkin.department_id == department_id)
        .order_by(Submission.submitted_at.desc(), Submission.id.desc())
    )
    if before_id is not None:
        query = query.where(Submission.id != before_id)
    return session.scalars(query.limit(1)).first()


def _next_checkin(session: Session, *, item_id: int, department_id: int) -> Checkin | None:
    return session.scalars(
        select(Checkin)
        .where(
            Checkin.item_id == item_id,
            Checkin.department_id == department_id,
            Checkin.status == "pending",
        )
        .order_by(Checkin.due_date, Checkin.id)
        .limit(1)
    ).first()


def item_context(
    *,
    session: Session,
    settings: Settings,
    item: Item,
    department: Department,
    checkin: Checkin | None,
    now: datetime,
    recipient_name: str,
    exclude_submission_id: int | None = None,
) -> dict[str, Any]:
    """The template context shared by every item message (see `notifications.samples`)."""
    today = local_date(now)
    plan: Plan = item.plan
    phase = _phase_for(session, plan.id, checkin.phase_key if checkin else None, today)
    last = _latest_submission(
        session, item_id=item.id, department_id=department.id, before_id=exclude_submission_id
    )
    reported: dict[str, Any] = last.values if last is not None else {}
    due_date = checkin.due_date if checkin is not None else None
    return {
        "organisation": settings.organisation or plan.organisation or settings.mail_from_name,
        "recipient_name": recipient_name,
        "sent_on": today,
        "plan": {"title": plan.title, "year": plan.year},
        "item": {"label": item_label(item), "title": item.title},
        "department": {"name": department.name},
        "role_label": ROLE_LABELS.get(checkin.role if checkin else "lead", "牵头"),
        "phase": {"name": phase.name, "range": _phase_range(phase)} if phase else None,
        "due_date": due_date,
        "overdue_days": (today - due_date).days if due_date is not None else None,
        "targets": [
            {
                "text": target.text,
                "unit": target.unit,
                "reported": _as_number(reported.get(str(target.id))),
            }
            for target in item.targets
        ],
        "last": _submission_summary(last) if last is not None else None,
        "form_url": (
            form_url(
                settings=settings,
                checkin_id=checkin.id,
                department_id=department.id,
                due_date=checkin.due_date,
            )
            if checkin is not None and checkin.status != "cancelled"
            else None
        ),
    }


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


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


def enqueue_notice_email(
    *, session: Session, notice: Notice, now: datetime, settings: Settings | None = None
) -> OutboxMessage | None:
    """Render `notice` (assignment, request, reminder, escalation) and enqueue its email.

    Recipients come from `notice.recipients` (`{role, name, email}`). Returns None, writing
    nothing, when the notice has no item, no department or no recipient with an address.
    """
    settings = settings or get_settings()
    emails, names = _addresses(notice.recipients)
    if not emails or notice.item_id is None or notice.kind not in ITEM_KINDS:
        return None
    checkin = session.get(Checkin, notice.checkin_id) if notice.checkin_id else None
    department_id = notice.department_id or (checkin.department_id if checkin else None)
    if department_id is None:
        return None
    department = session.get(Department, department_id)
    if department is None:
        return None
    if checkin is None:
        checkin = _next_checkin(session, item_id=notice.item_id, department_id=department_id)
    context = item_context(
        session=session,
        settings=settings,
        item=_load_item(session, notice.item_id),
        department=department,
        checkin=checkin,
        now=now,
        recipient_name="、".join(names) or department.name,
    )
    if notice.kind == "escalation":
        context["level"] = notice.level
        context["level_label"] = LEVEL_LABELS.get(notice.level, f"第{notice.level}级督办")
        context["reason"] = notice.reason
    rendered = render_message(notice.kind, context)
    return enqueue_message(
        session=session,
        key=_outbox_key("notice", notice.key),
        kind=notice.kind,
        to=emails,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        now=now,
        notice_id=notice.id,
    )


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
    item = _load_item(session, checkin.item_id)
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
        **_submission_summary(submission),
        "submitted_text": f"{format_date(submitted_local.date())}{submitted_local:%H:%M}",
        "figures": [
            {"text": targets[key].text, "unit": targets[key].unit, "value": number}
            for key, value in submission.values.items()
            if key in targets and (number := _as_number(value)) is not None
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


def _period_label(period: str) -> str:
    if len(period) == 6 and period[4] == "Q":
        quarter = "一二三四"[int(period[5]) - 1] if period[5] in "1234" else period[5]
        return f"{period[:4]}年第{quarter}季度"
    return f"{period}年度" if period.isdigit() else period


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
            "period_label": _period_label(report.period),
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
