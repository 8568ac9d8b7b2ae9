"""What the check-in page shows: one check-in with its item, targets and earlier answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.orm import Session

from models.attachment_table import Attachment
from models.clock import LOCAL_TZ
from models.directory import Department
from models.formats import cn_date, cn_number
from models.instruction import Instruction, InstructionAnswer, answer_field, leader_title
from models.limits import add_days, latest_extension_date
from models.plan import Item, Phase, Plan, Target
from models.supervision import Checkin, Extension, Submission
from models.vocabulary import AssignmentRole, CheckinStatus, ReviewDecision, SelfStatusValue
from notifications.links import InvalidLink, LinkClaims
from tasks.attachments import AttachmentInfo, attachments_of_submissions
from tasks.instructions import open_instructions
from tasks.submissions import accepts_answers

DECISION_LABELS = {
    "pending": "待审批",
    "approved": "已批准",
    "rejected": "未批准",
    "withdrawn": "已撤回",
}


@dataclass(frozen=True, slots=True)
class PagePlan:
    """The plan facts the page shows."""

    id: int
    title: str
    year: int


@dataclass(frozen=True, slots=True)
class PageItem:
    """The item facts the page shows, with its plan."""

    id: int
    number: str
    title: str
    body: str
    plan_id: int
    plan: PagePlan


@dataclass(frozen=True, slots=True)
class PageDepartment:
    """The answering department."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PageCheckin:
    """The check-in a link names, with its item (and plan) and department, read as plain
    rows (the attribute names follow the ORM's `Checkin`)."""

    id: int
    item_id: int
    department_id: int
    phase_key: str
    due_date: date
    status: CheckinStatus
    asks: str
    role: AssignmentRole
    review: ReviewDecision | None
    return_reason: str
    item: PageItem
    department: PageDepartment


@dataclass(frozen=True, slots=True)
class PageTarget:
    """One of the item's targets (a `value_<id>` field of the form)."""

    id: int
    text: str
    unit: str


@dataclass(frozen=True, slots=True)
class PageSubmission:
    """One earlier version of the department's answer."""

    id: int
    version: int
    submitted_at: datetime
    status: str
    narrative: str
    problems: str
    next_steps: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PageExtension:
    """One extension request of the check-in and its decision."""

    requested_date: date
    reason: str
    decision: str


@dataclass(frozen=True)
class CheckinPage:
    """Everything the form page needs, read in one session (plain rows, not ORM objects)."""

    checkin: PageCheckin
    targets: list[PageTarget]
    phase_name: str
    submissions: list[PageSubmission]
    extensions: list[PageExtension]
    instructions: list[Instruction] = field(default_factory=list)
    attachments: dict[int, list[AttachmentInfo]] = field(default_factory=dict)


# Built once: Core statements over the mapped columns (their types convert the values),
# so a page costs three cached statements and no ORM identity-map work.
_CHECKIN_ROWS = (
    select(
        Checkin.id,
        Checkin.item_id,
        Checkin.department_id,
        Checkin.phase_key,
        Checkin.due_date,
        Checkin.status,
        Checkin.asks,
        Checkin.role,
        Checkin.review,
        Checkin.return_reason,
        Item.number,
        Item.title,
        Item.body,
        Item.plan_id,
        Plan.title.label("plan_title"),
        Plan.year,
        Department.name.label("department_name"),
        Phase.name.label("phase_name"),
        Target.id.label("target_id"),
        Target.text.label("target_text"),
        Target.unit.label("target_unit"),
        exists()
        .where(
            Instruction.item_id == Checkin.item_id,
            ~exists().where(InstructionAnswer.instruction_id == Instruction.id),
        )
        .label("open_instructions"),
    )
    .select_from(Checkin)
    .join(Item, Item.id == Checkin.item_id)
    .join(Plan, Plan.id == Item.plan_id)
    .join(Department, Department.id == Checkin.department_id)
    .outerjoin(Phase, and_(Phase.plan_id == Item.plan_id, Phase.key == Checkin.phase_key))
    .outerjoin(Target, Target.item_id == Item.id)
    .where(Checkin.id == bindparam("checkin_id"))
    .order_by(Target.position, Target.id)
)
_SUBMISSION_ROWS = (
    select(
        Submission.id,
        Submission.version,
        Submission.submitted_at,
        Submission.status,
        Submission.narrative,
        Submission.problems,
        Submission.next_steps,
        Submission.values,
        exists().where(Attachment.submission_id == Submission.id).label("has_files"),
    )
    .where(Submission.checkin_id == bindparam("checkin_id"))
    .order_by(Submission.version.desc())
)
_EXTENSION_ROWS = (
    select(Extension.requested_date, Extension.reason, Extension.decision)
    .where(Extension.checkin_id == bindparam("checkin_id"))
    .order_by(Extension.requested_at.desc(), Extension.id.desc())
)


def load_page(*, session: Session, claims: LinkClaims, history: bool = True) -> CheckinPage:
    """Load the check-in a verified link names; `InvalidLink` if gone, not the department's,
    or closed. Reads only: one statement for the check-in with its item, plan, department,
    phase name and targets (one row per target) and whether the item has open leader
    instructions (then one more for them), then, with `history`, its submissions (each saying
    whether it has evidence files), extension requests and, where there are files, their names
    (no bytes; a POST needs none of these to store an answer).
    """
    ident = {"checkin_id": claims.checkin_id}
    connection = session.connection()  # Core statements: no ORM result processing
    rows = connection.execute(_CHECKIN_ROWS, ident).all()
    if not rows:
        raise InvalidLink
    head = rows[0]
    if head.department_id != claims.department_id or not accepts_answers(head):
        raise InvalidLink
    plan = PagePlan(id=head.plan_id, title=head.plan_title, year=head.year)
    item = PageItem(
        id=head.item_id,
        number=head.number,
        title=head.title,
        body=head.body,
        plan_id=head.plan_id,
        plan=plan,
    )
    checkin = PageCheckin(
        id=head.id,
        item_id=head.item_id,
        department_id=head.department_id,
        phase_key=head.phase_key,
        due_date=head.due_date,
        status=head.status,
        asks=head.asks,
        role=head.role,
        review=head.review,
        return_reason=head.return_reason,
        item=item,
        department=PageDepartment(id=head.department_id, name=head.department_name),
    )
    targets = [
        PageTarget(id=row.target_id, text=row.target_text, unit=row.target_unit)
        for row in rows
        if row.target_id is not None
    ]
    page = CheckinPage(
        checkin=checkin,
        targets=targets,
        phase_name=head.phase_name or head.phase_key,
        submissions=[],
        extensions=[],
    )
    if head.open_instructions:  # read only when the item has some (most have none)
        page.instructions.extend(open_instructions(session=session, item_id=checkin.item_id))
    if not history:
        return page
    with_files: list[int] = []
    for row in connection.execute(_SUBMISSION_ROWS, ident):
        *fields, has_files = row
        page.submissions.append(PageSubmission(*fields))
        if has_files:
            with_files.append(row.id)
    page.extensions.extend(
        PageExtension(*row) for row in connection.execute(_EXTENSION_ROWS, ident)
    )
    if with_files:
        page.attachments.update(
            attachments_of_submissions(session=session, submission_ids=with_files)
        )
    return page


# The form's names for the shared formats (`models.formats`).
format_date = cn_date
format_number = cn_number


def format_moment(moment: datetime) -> str:
    """A timestamp in local time, `2026-06-30 14:05`."""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


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


def returned_context(checkin: PageCheckin) -> dict[str, Any]:
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
