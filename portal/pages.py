"""What the check-in page shows: one check-in with its item, targets and earlier answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, contains_eager

from models.clock import LOCAL_TZ
from models.instruction import Instruction, answer_field, leader_title
from models.limits import add_days, latest_extension_date
from models.plan import Item, Phase, Target
from models.supervision import Checkin, Extension, Submission
from models.vocabulary import CheckinStatus, ReviewDecision, SelfStatusValue
from notifications.links import InvalidLink, LinkClaims
from tasks.attachments import AttachmentInfo, attachments_of_submissions
from tasks.instructions import open_instructions
from tasks.submissions import accepts_answers, list_submissions

WEEKDAYS = "一二三四五六日"
DECISION_LABELS = {
    "pending": "待审批",
    "approved": "已批准",
    "rejected": "未批准",
    "withdrawn": "已撤回",
}


@dataclass(frozen=True)
class CheckinPage:
    """Everything the form page needs, loaded inside one session."""

    checkin: Checkin
    targets: list[Target]
    phase_name: str
    submissions: list[Submission]
    extensions: list[Extension]
    instructions: list[Instruction] = field(default_factory=list)
    attachments: dict[int, list[AttachmentInfo]] = field(default_factory=dict)


def load_page(*, session: Session, claims: LinkClaims, history: bool = True) -> CheckinPage:
    """Load the check-in a verified link names; `InvalidLink` if gone, not the department's,
    or closed. Reads only, in five statements: the check-in with its item, plan, department
    and phase name (one join), then its targets, the item's open leader instructions,
    submissions and extension requests (the last two left empty without `history`, which is
    all a POST needs to store an answer), and with `history` a sixth for the earlier versions'
    attachments (names only, no bytes).
    """
    row = session.execute(
        select(Checkin, Phase.name)
        .join(Checkin.item)
        .join(Item.plan)
        .join(Checkin.department)
        .outerjoin(Phase, and_(Phase.plan_id == Item.plan_id, Phase.key == Checkin.phase_key))
        .where(Checkin.id == claims.checkin_id)
        .options(contains_eager(Checkin.item).contains_eager(Item.plan))
        .options(contains_eager(Checkin.department))
    ).first()
    if row is None:
        raise InvalidLink
    checkin, phase_name = row._tuple()
    if checkin.department_id != claims.department_id or not accepts_answers(checkin):
        raise InvalidLink
    targets = session.scalars(
        select(Target).where(Target.item_id == checkin.item_id).order_by(Target.position)
    )
    page = CheckinPage(
        checkin=checkin,
        targets=list(targets),
        phase_name=phase_name or checkin.phase_key,
        submissions=[],
        extensions=[],
    )
    page.instructions.extend(open_instructions(session=session, item_id=checkin.item_id))
    if not history:
        return page
    extensions = session.scalars(
        select(Extension)
        .where(Extension.checkin_id == checkin.id)
        .order_by(Extension.requested_at.desc(), Extension.id.desc())
    )
    page.submissions.extend(list_submissions(session=session, checkin_id=checkin.id))
    page.extensions.extend(extensions)
    page.attachments.update(
        attachments_of_submissions(session=session, submission_ids=[s.id for s in page.submissions])
    )
    return page


def format_date(day: date) -> str:
    """`2026年6月30日（星期二）`."""
    return f"{day.year}年{day.month}月{day.day}日（星期{WEEKDAYS[day.weekday()]}）"


def format_moment(moment: datetime) -> str:
    """A timestamp in local time, `2026-06-30 14:05`."""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def format_number(value: float) -> str:
    """`200` for whole numbers, `12.5` otherwise."""
    return f"{value:g}" if value != int(value) else str(int(value))


def page_context(page: CheckinPage) -> dict[str, Any]:
    """Template variables for the form page (all text escaped by the template)."""
    checkin = page.checkin
    item = checkin.item
    status_labels = SelfStatusValue.labels()
    target_text = {str(target.id): target for target in page.targets}
    history = [
        {
            "version": sub.version,
            "submitted_at": format_moment(sub.submitted_at),
            "status": status_labels.get(sub.status, sub.status),
            "narrative": sub.narrative,
            "problems": sub.problems,
            "next_steps": sub.next_steps,
            "values": [
                {
                    "label": target_text[key].text if key in target_text else key,
                    "value": format_number(float(value)),
                    "unit": target_text[key].unit if key in target_text else "",
                }
                for key, value in sub.values.items()
            ],
        }
        for sub in page.submissions
    ]
    extensions = [
        {
            "requested_date": format_date(ext.requested_date),
            "reason": ext.reason,
            "decision": DECISION_LABELS.get(ext.decision, ext.decision),
        }
        for ext in page.extensions
    ]
    return {
        "plan_title": item.plan.title,
        "item_number": item.number,
        "item_title": item.title,
        "item_body": item.body,
        "department": checkin.department.name,
        "phase_name": page.phase_name,
        "due_date": format_date(checkin.due_date),
        "asks": checkin.asks,
        "extension_min": add_days(checkin.due_date, 1).isoformat(),
        "extension_max": latest_extension_date(
            due_date=checkin.due_date, plan_year=item.plan.year
        ).isoformat(),
        "submitted": bool(page.submissions),
        "targets": [
            {"id": target.id, "text": target.text, "unit": target.unit} for target in page.targets
        ],
        "history": history,
        "extensions": extensions,
        "statuses": list(SelfStatusValue.labels().items()),
        "instructions": [
            {
                "field": answer_field(instruction.id),
                "leader": leader_title(instruction.leader_role, instruction.leader_name),
                "given_at": format_moment(instruction.given_at),
                "text": instruction.text,
            }
            for instruction in page.instructions
        ],
        **returned_context(checkin),
    }


def returned_context(checkin: Checkin) -> dict[str, Any]:
    """The office's return (退回) the form shows above its fields: the reason, and whether
    the department has answered it with a new version (the report then waits for review)."""
    if checkin.review != ReviewDecision.RETURNED or not checkin.return_reason:
        return {"returned_reason": "", "returned_answered": False}
    return {
        "returned_reason": checkin.return_reason,
        "returned_answered": checkin.status == CheckinStatus.SUBMITTED,
    }


def previous_answer(page: CheckinPage) -> dict[str, str]:
    """The latest version as form field values, so an edit starts from what was sent."""
    if not page.submissions:
        return {}
    latest = page.submissions[0]
    fields = {
        "status": latest.status,
        "narrative": latest.narrative,
        "problems": latest.problems,
        "next_steps": latest.next_steps,
    }
    for key, value in latest.values.items():
        fields[f"value_{key}"] = format_number(float(value))
    return fields
