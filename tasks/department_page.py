"""Loading one department's own page (本部门督办事项) in a fixed number of queries.

`load_department_page` reads, for one department and whatever its number of check-ins:
the department; its check-ins with their items and plans; the plans' policies; the
closures of the items it has check-ins on; the open leader instructions on the items it
leads — five SELECTs, no query per row — and hands them to the pure
`models.department_page.assemble_page`. It reads only.

`department_checkin_due` is the one SELECT behind a row's link (`/d/{token}/c/{id}`): the
due date of one check-in if it is the department's own, for signing its form link.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.completion import ItemClosure
from models.department_page import (
    DepartmentCheckin,
    DepartmentClosure,
    DepartmentPage,
    assemble_page,
)
from models.directory import Department
from models.instruction import Instruction, InstructionAnswer, InstructionFact, leader_title
from models.plan import Item, Plan
from models.policy import parse_policy
from models.supervision import Assignment, Checkin
from models.vocabulary import AssignmentRole
from notifications.compose import escalation_label

__all__ = ["PAGE_QUERIES", "department_checkin_due", "load_department_page"]

PAGE_QUERIES = 5
"""The SELECTs one page takes, however many check-ins the department has."""


def department_checkin_due(*, session: Session, department_id: int, checkin_id: int) -> date | None:
    """The due date of check-in `checkin_id` if it belongs to `department_id` (the page
    lists every check-in of the department, whatever its status), else None."""
    return session.scalar(
        select(Checkin.due_date).where(
            Checkin.id == checkin_id, Checkin.department_id == department_id
        )
    )


def load_department_page(
    *, session: Session, department_id: int, now: datetime
) -> DepartmentPage | None:
    """The page of `department_id` at `now`, or None when there is no such department."""
    department = session.get(Department, department_id)
    if department is None:
        return None
    rows = session.execute(
        select(
            Checkin.id,
            Checkin.item_id,
            Item.plan_id,
            Plan.title,
            Item.number,
            Item.position,
            Item.title,
            Item.colour,
            Checkin.kind,
            Checkin.role,
            Checkin.phase_key,
            Checkin.due_date,
            Checkin.status,
            Checkin.submitted_at,
            Checkin.escalation_level,
            Checkin.review,
            Checkin.return_reason,
        )
        .join(Item, Item.id == Checkin.item_id)
        .join(Plan, Plan.id == Item.plan_id)
        .where(Checkin.department_id == department_id)
    ).all()
    checkins = [
        DepartmentCheckin(
            checkin_id=row[0],
            item_id=row[1],
            plan_id=row[2],
            plan_title=row[3],
            item_number=row[4],
            item_position=row[5],
            item_title=row[6],
            colour=str(row[7]),
            kind=str(row[8]),
            role=str(row[9]),
            phase_key=row[10],
            due_date=row[11],
            status=str(row[12]),
            submitted_at=row[13],
            escalation_level=row[14],
            review=None if row[15] is None else str(row[15]),
            return_reason=row[16],
        )
        for row in rows
    ]
    own_items = select(Checkin.item_id).where(Checkin.department_id == department_id)
    policies = {
        plan_id: parse_policy(policy or None)
        for plan_id, policy in session.execute(
            select(Plan.id, Plan.policy).where(
                Plan.id.in_(select(Item.plan_id).where(Item.id.in_(own_items)))
            )
        ).tuples()
    }
    closures = [
        DepartmentClosure(
            item_id=closure.item_id,
            closed_at=closure.closed_at,
            reopened_at=closure.reopened_at,
            reason=closure.reason,
        )
        for closure in session.scalars(
            select(ItemClosure).where(ItemClosure.item_id.in_(own_items))
        )
    ]
    led = select(Assignment.item_id).where(
        Assignment.department_id == department_id,
        Assignment.role == AssignmentRole.LEAD,
        Assignment.ended_at.is_(None),
    )
    answered = exists().where(
        InstructionAnswer.instruction_id == Instruction.id, InstructionAnswer.answered_at <= now
    )
    labels = {row.item_id: f"{row.item_number} {row.item_title}" for row in checkins}
    instructions = [
        InstructionFact(
            id=row.id,
            item_id=row.item_id,
            item_label=labels.get(row.item_id, ""),
            leader=leader_title(row.leader_role, row.leader_name),
            text=row.text,
            source=row.source,
            given_at=row.given_at,
        )
        for row in session.scalars(
            select(Instruction)
            .where(Instruction.item_id.in_(led), Instruction.given_at <= now, ~answered)
            .order_by(Instruction.given_at, Instruction.id)
        )
    ]
    escalated = {
        (row.plan_id, row.escalation_level)
        for row in checkins
        if row.escalation_level > 0 and row.plan_id in policies
    }
    level_labels = {
        (plan_id, level): escalation_label(policies[plan_id], level) for plan_id, level in escalated
    }
    return assemble_page(
        department_id=department.id,
        department_name=department.name,
        now=now,
        today=local_date(now),
        checkins=checkins,
        closures=closures,
        instructions=instructions,
        review_rules={plan_id: policy.review for plan_id, policy in policies.items()},
        level_labels=level_labels,
    )
