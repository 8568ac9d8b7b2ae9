"""Load everything a review needs for one plan and period, in a few set-based queries.

Read-only. Rows are read as they stood at `as_of`: assignments open then, check-ins created
by then, submissions, extensions, escalation notices and status events up to then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.completion import ItemClosure
from models.directory import Department
from models.errors import NotFoundError
from models.outbox import DomainEvent
from models.plan import Item, Plan, Section, Target
from models.report_review import ReviewSelection
from models.review import (
    AssignmentRow,
    AwaitingReviewRow,
    CheckinRow,
    ClosureRow,
    DepartmentRow,
    EscalationRow,
    ExtensionRow,
    ItemRow,
    Period,
    PlanRow,
    ReviewDecisionRow,
    ReviewInputs,
    SectionRow,
    StatusChange,
    SubmissionRow,
    TargetRow,
    default_quarter,
    parse_period,
    year_period,
)
from models.supervision import (
    Assignment,
    Checkin,
    CheckinReview,
    Extension,
    Notice,
    Submission,
)
from tasks.attachments import file_names_by_item
from tasks.instructions import instruction_facts
from tasks.report_review import pending_reviews

STATUS_EVENT = "duban.item.status_changed"
COLOUR_KEYS = ("colour", "color", "to", "new", "status")


def load_plan_row(*, session: Session, plan_id: int) -> PlanRow:
    """The plan as a `PlanRow`; raises `NotFoundError` (Chinese message) if it does not exist."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"计划 {plan_id} 不存在，请用 duban status 查看已导入的计划。")
    return PlanRow(plan.id, plan.title, plan.organisation, plan.year, plan.document_number or "")


def choose_period(
    *, plan: PlanRow, as_of: datetime, quarter: str | None = None, year: bool = False
) -> Period:
    """The period to report: the whole year, the named quarter, or the default quarter."""
    if year:
        return year_period(plan.year)
    if quarter is not None:
        return parse_period(quarter, plan_year=plan.year)
    return default_quarter(local_date(as_of), plan_year=plan.year)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _colour(payload: dict[str, Any]) -> str | None:
    for key in COLOUR_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value in ("green", "amber", "red", "none"):
            return value
    return None


def load_review_inputs(
    *, session: Session, plan: PlanRow, period: Period, as_of: datetime
) -> ReviewInputs:
    """Read the plan's rows for `period` as they stood at `as_of` (no writes)."""
    until = min(period.end, local_date(as_of))
    in_plan = Item.plan_id == plan.id
    sections = tuple(
        SectionRow(*row)
        for row in session.execute(
            select(Section.id, Section.position, Section.number, Section.title).where(
                Section.plan_id == plan.id
            )
        )
    )
    items = tuple(
        ItemRow(*row)
        for row in session.execute(
            select(
                Item.id,
                Item.section_id,
                Item.position,
                Item.number,
                Item.title,
                Item.colour,
                Item.needs_assignment,
            ).where(in_plan)
        )
    )
    targets = tuple(
        TargetRow(*row)
        for row in session.execute(
            select(
                Target.id,
                Target.item_id,
                Target.position,
                Target.text,
                Target.comparator,
                Target.value,
                Target.unit,
            )
            .join(Item)
            .where(in_plan)
        )
    )
    assignments = tuple(
        AssignmentRow(*row)
        for row in session.execute(
            select(Assignment.item_id, Assignment.department_id, Assignment.role)
            .join(Item)
            .where(
                in_plan,
                Assignment.assigned_at <= as_of,
                or_(Assignment.ended_at.is_(None), Assignment.ended_at > as_of),
            )
        )
    )
    checkins = tuple(
        CheckinRow(
            cid,
            item_id,
            dept,
            due,
            status,
            sub if sub is not None and sub <= as_of else None,
            asks,
        )
        for cid, item_id, dept, due, status, sub, asks in session.execute(
            select(
                Checkin.id,
                Checkin.item_id,
                Checkin.department_id,
                Checkin.due_date,
                Checkin.status,
                Checkin.submitted_at,
                Checkin.asks,
            )
            .join(Item)
            .where(
                in_plan,
                Checkin.status != "cancelled",
                Checkin.created_at <= as_of,
                Checkin.due_date <= until,
                or_(
                    Checkin.due_date >= period.start,
                    Checkin.submitted_at.is_(None),
                    Checkin.submitted_at > as_of,
                ),
            )
        )
    )
    ranked = (
        select(
            Checkin.item_id,
            Checkin.department_id,
            Submission.submitted_at,
            Submission.status,
            Submission.narrative,
            Submission.problems,
            Submission.next_steps,
            Submission.values,
            Submission.id.label("submission_id"),
            func.row_number()
            .over(
                partition_by=Checkin.item_id,
                order_by=(Submission.submitted_at.desc(), Submission.id.desc()),
            )
            .label("rank"),
        )
        .join(Checkin, Submission.checkin_id == Checkin.id)
        .join(Item, Checkin.item_id == Item.id)
        .where(in_plan, Submission.submitted_at <= as_of)
        .subquery()
    )
    submissions = tuple(
        SubmissionRow(
            row.item_id,
            row.department_id,
            row.submitted_at,
            row.status,
            row.narrative,
            row.problems,
            row.next_steps,
            {
                str(key): number
                for key, value in (row.values or {}).items()
                if (number := _number(value)) is not None
            },
            submission_id=row.submission_id,
        )
        for row in session.execute(select(ranked).where(ranked.c.rank == 1))
    )
    extensions = tuple(
        ExtensionRow(*row)
        for row in session.execute(
            select(
                Extension.checkin_id,
                Checkin.department_id,
                Extension.decision,
                Extension.decided_at,
            )
            .join(Checkin, Extension.checkin_id == Checkin.id)
            .join(Item, Checkin.item_id == Item.id)
            .where(in_plan, Extension.decided_at <= as_of)
        )
    )
    escalations = tuple(
        EscalationRow(*row)
        for row in session.execute(
            select(
                Notice.item_id,
                Notice.department_id,
                Notice.checkin_id,
                Notice.level,
                Notice.decided_at,
            )
            .join(Item, Notice.item_id == Item.id)
            .where(in_plan, Notice.kind == "escalation", Notice.decided_at <= as_of)
        )
    )
    item_ids = {item.id for item in items}
    changes = []
    for resource_id, occurred_at, payload in session.execute(
        select(DomainEvent.resource_id, DomainEvent.occurred_at, DomainEvent.payload).where(
            DomainEvent.type == STATUS_EVENT,
            DomainEvent.occurred_at <= as_of,
            DomainEvent.resource_id.like("duban.item.%"),
        )
    ):
        suffix = resource_id.removeprefix("duban.item.")
        colour = _colour(payload or {})
        if suffix.isdigit() and int(suffix) in item_ids and colour is not None:
            changes.append(StatusChange(int(suffix), occurred_at, colour))
    department_ids = {a.department_id for a in assignments} | {c.department_id for c in checkins}
    decisions, awaiting = review_rows(session=session, plan_id=plan.id, as_of=as_of)
    department_ids |= {row.department_id for row in decisions}
    department_ids |= {row.department_id for row in awaiting}
    departments = tuple(
        DepartmentRow(*row)
        for row in session.execute(
            select(Department.id, Department.name).where(Department.id.in_(department_ids))
        )
    )
    closures = tuple(
        ClosureRow(*row)
        for row in session.execute(
            select(
                ItemClosure.item_id,
                ItemClosure.closed_at,
                ItemClosure.reason,
                ItemClosure.reopened_at,
            )
            .join(Item, ItemClosure.item_id == Item.id)
            .where(in_plan, ItemClosure.closed_at <= as_of)
        )
    )
    return ReviewInputs(
        plan=plan,
        period=period,
        as_of=as_of,
        sections=sections,
        items=items,
        targets=targets,
        departments=departments,
        assignments=assignments,
        checkins=checkins,
        submissions=submissions,
        extensions=extensions,
        escalations=escalations,
        status_changes=tuple(changes),
        instructions=tuple(
            fact
            for fact in instruction_facts(session=session, item_ids=item_ids)
            if fact.given_at <= as_of
        ),
        closures=closures,
        attachments=file_names_by_item(
            session=session, latest={s.item_id: s.submission_id for s in submissions}
        ),
        review_decisions=decisions,
        awaiting_review=awaiting,
    )


def review_rows(
    *, session: Session, plan_id: int, as_of: datetime
) -> tuple[tuple[ReviewDecisionRow, ...], tuple[AwaitingReviewRow, ...]]:
    """The plan's review decisions made by `as_of` and the reports waiting for review that
    arrived by then (`tasks.report_review.pending_reviews`)."""
    decisions = tuple(
        ReviewDecisionRow(*row)
        for row in session.execute(
            select(
                Checkin.item_id,
                Checkin.department_id,
                CheckinReview.decision,
                CheckinReview.decided_at,
            )
            .join(Checkin, Checkin.id == CheckinReview.checkin_id)
            .join(Item, Item.id == Checkin.item_id)
            .where(Item.plan_id == plan_id, CheckinReview.decided_at <= as_of)
        ).tuples()
    )
    awaiting = tuple(
        AwaitingReviewRow(
            row.candidate.item_id,
            row.candidate.department_id,
            row.candidate.submitted_at,
            row.overdue,
        )
        for row in pending_reviews(session, selection=ReviewSelection(plan_id=plan_id), as_of=as_of)
        if row.candidate.submitted_at <= as_of
    )
    return decisions, awaiting
