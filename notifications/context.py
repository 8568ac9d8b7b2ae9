"""Template contexts for item messages, read from the database (no writes).

The keys match `notifications.samples`; `notifications.compose` adds kind-specific keys
(escalation level, the submission of a receipt, the report) and enqueues.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.clock import local_date
from models.directory import Department
from models.plan import Item, Phase, Plan
from models.settings import Settings
from models.supervision import Checkin, Submission
from notifications.links import form_url
from notifications.rendering import format_date

ROLE_LABELS = {"lead": "牵头", "support": "配合"}
STATUS_LABELS = {
    "on_track": "正常推进",
    "at_risk": "存在风险",
    "blocked": "受阻",
    "done": "已完成",
}


def item_label(item: Item) -> str:
    """`第4项` for a numbered item, the number itself (`（一）`) otherwise."""
    return f"第{item.number}项" if item.number.isdigit() else item.number


def _phase_range(phase: Phase) -> str:
    if phase.start_text and phase.end_text:
        return f"{phase.start_text}至{phase.end_text}"
    return f"{format_date(phase.start_date)}至{format_date(phase.end_date)}"


def submission_summary(submission: Submission) -> dict[str, Any]:
    """Version, date, status label and texts of a submission, for templates."""
    return {
        "version": submission.version,
        "submitted_on": local_date(submission.submitted_at),
        "status_label": STATUS_LABELS.get(submission.status, submission.status),
        "narrative": submission.narrative,
        "problems": submission.problems,
        "next_steps": submission.next_steps,
    }


def load_item(session: Session, item_id: int) -> Item:
    """The item with its plan and targets loaded."""
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


def next_checkin(session: Session, *, item_id: int, department_id: int) -> Checkin | None:
    """The earliest pending check-in of one department on one item, if any."""
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
                "reported": as_number(reported.get(str(target.id))),
            }
            for target in item.targets
        ],
        "last": submission_summary(last) if last is not None else None,
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


def as_number(value: Any) -> float | None:
    """A reported value as a float, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def period_label(period: str) -> str:
    """`2021Q2` -> `2021年第二季度`, `2021` -> `2021年度`."""
    if len(period) == 6 and period[4] == "Q":
        quarter = "一二三四"[int(period[5]) - 1] if period[5] in "1234" else period[5]
        return f"{period[:4]}年第{quarter}季度"
    return f"{period}年度" if period.isdigit() else period
