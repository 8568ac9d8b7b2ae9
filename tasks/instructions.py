"""Leader instructions (领导批示): record them, email them, answer them; the caller commits.

`record_instruction` writes the instruction, its `duban.item.instructed` event and its
emails (the lead departments' contacts, the supervision office in Cc) in the caller's
session, so they commit together; the business key makes a repeated recording (a double
submit, a re-run command) return the first row and write nothing. `record_answers` stores
a report's 落实批示情况 with its submission. `instruction_facts` reads what status cards and
reports show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import local_date
from models.daily_pass import item_label
from models.directory import Department
from models.errors import InputError, NotFoundError
from models.instruction import (
    Instruction,
    InstructionAnswer,
    InstructionFact,
    check_instruction_text,
    check_leader_name,
    instruction_key,
    leader_title,
)
from models.plan import Item
from models.settings import Settings, get_settings
from models.supervision import Assignment, Checkin, Submission
from models.vocabulary import AssignmentRole, EventType, InstructionSource, RecipientRole
from notifications.context import item_context, load_item, next_pending_checkins
from notifications.outbox import HeaderInjectionError, enqueue_message
from notifications.rendering import render_message
from tasks.assignment import supervision_offices
from tasks.events import record_event, related
from tasks.reporting.markdown import md_escape

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """The instruction `record_instruction` found or wrote, and whether it wrote it now."""

    instruction: Instruction
    created: bool


def leader_of(department: Department, role: str) -> tuple[str, str]:
    """The (name, email) of a department's 分管领导 (`leader`) or 主要负责人 (`head`)."""
    if role == RecipientRole.HEAD:
        return department.head_name, department.head_email
    if role == RecipientRole.LEADER:
        return department.leader_name, department.leader_email
    raise InputError(f"批示领导的身份应为 leader（分管领导）或 head（主要负责人），收到：{role}")


def lead_departments(*, session: Session, item_id: int) -> list[Department]:
    """The departments leading the item now (open lead assignments), by id."""
    return list(
        session.scalars(
            select(Department)
            .join(Assignment, Assignment.department_id == Department.id)
            .where(
                Assignment.item_id == item_id,
                Assignment.role == AssignmentRole.LEAD,
                Assignment.ended_at.is_(None),
            )
            .order_by(Department.id)
        )
    )


def record_instruction(
    *,
    session: Session,
    item_id: int,
    leader_role: str,
    leader_name: str,
    text: str,
    source: InstructionSource,
    now: datetime,
    leader_department_id: int | None = None,
    recorded_by: str = "",
    given_at: datetime | None = None,
    submit_id: str = "",
    settings: Settings | None = None,
) -> Recorded:
    """Record one leader's instruction on `item_id` with its event and emails; no commit.

    `text` and `leader_name` are checked (`models.instruction`: `InputError` in Chinese
    when empty or too long, nothing written); an unknown item is `NotFoundError`. Paper
    instructions carry the day they were given (`given_at`, default `now`) in their key.
    A link's `submit_id` (one per page shown) is part of the key: a double submit of one
    page is one instruction. An instruction already recorded under the same key is
    returned with `created=False`.
    """
    cleaned = check_instruction_text(text)
    name = check_leader_name(leader_name)
    role = RecipientRole(leader_role)
    if role not in (RecipientRole.LEADER, RecipientRole.HEAD):
        raise InputError("批示领导的身份应为分管领导或主要负责人。")
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"没有编号为 {item_id} 的任务（可用 duban status 查看任务编号）。")
    given = given_at or now
    key = instruction_key(
        item_id=item_id,
        leader_role=role,
        leader_name=name,
        text=cleaned,
        given_on=local_date(given) if source == InstructionSource.PAPER else None,
        nonce=submit_id[:64],
    )
    existing = session.scalars(select(Instruction).where(Instruction.key == key)).first()
    if existing is not None:
        return Recorded(existing, created=False)
    instruction = Instruction(
        key=key,
        item_id=item_id,
        leader_department_id=leader_department_id,
        leader_role=role,
        leader_name=name,
        text=cleaned,
        source=source,
        recorded_by=recorded_by or name,
        given_at=given,
        recorded_at=now,
    )
    try:
        with session.begin_nested():
            session.add(instruction)
    except IntegrityError:
        raced = session.scalars(select(Instruction).where(Instruction.key == key)).one()
        return Recorded(raced, created=False)
    leads = lead_departments(session=session, item_id=item_id)
    item = load_item(session, item_id)
    record_event(
        session=session,
        event_type=EventType.ITEM_INSTRUCTED,
        resource_id=f"duban.item.{item_id}",
        occurred_at=given,
        now=now,
        related_resources=[
            related("item", item.id, item_label(item)[:200]),
            *(related("department", dept.id, dept.name) for dept in leads),
            related("plan", item.plan_id, item.plan.title[:200]),
        ],
        payload={
            "item_id": item.id,
            "instruction_id": instruction.id,
            "leader": leader_title(role, name),
            "source": source.value,
            "department_ids": [dept.id for dept in leads],
        },
    )
    _enqueue_emails(
        session=session,
        instruction=instruction,
        item=item,
        leads=leads,
        now=now,
        settings=settings or get_settings(),
    )
    return Recorded(instruction, created=True)


def _enqueue_emails(
    *,
    session: Session,
    instruction: Instruction,
    item: Item,
    leads: Sequence[Department],
    now: datetime,
    settings: Settings,
) -> None:
    """One email per lead department (its contacts, the office in Cc), or to the office
    alone when no lead department has an address."""
    offices = supervision_offices(session=session)
    office = [email for dept in offices for email in dept.contact_emails]
    pending = next_pending_checkins(session, pairs={(item.id, dept.id) for dept in leads})
    instruction_context = {
        "leader": leader_title(instruction.leader_role, instruction.leader_name),
        "text": instruction.text,
        "given_on": local_date(instruction.given_at),
        "source_label": instruction.source.label,
    }
    sent = False
    for dept in leads:
        if not dept.contact_emails:
            continue
        context = item_context(
            session=session,
            settings=settings,
            item=item,
            department=dept,
            checkin=pending.get((item.id, dept.id)),
            now=now,
            recipient_name=f"{dept.name} {dept.contact_name}".strip(),
        )
        context["instruction"] = instruction_context
        copied = [email for email in office if email not in dept.contact_emails]
        key = f"instruction:{instruction.id}:{dept.id}"
        sent = _enqueue(session, key, context, dept.contact_emails, copied, now) or sent
    if not sent and office:
        context = item_context(
            session=session,
            settings=settings,
            item=item,
            department=leads[0] if leads else offices[0],
            checkin=None,
            now=now,
            recipient_name="督查室",
        )
        context["instruction"] = instruction_context
        _enqueue(session, f"instruction:{instruction.id}:office", context, office, [], now)


def _enqueue(
    session: Session,
    key: str,
    context: dict[str, object],
    to: Sequence[str],
    cc: Sequence[str],
    now: datetime,
) -> bool:
    rendered = render_message("instruction", context)
    try:
        enqueue_message(
            session=session,
            key=key,
            kind="instruction",
            to=list(to),
            cc=list(cc),
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            now=now,
        )
    except HeaderInjectionError:
        logger.warning("no instruction email %s: a subject or an address has a line break", key)
        return False
    return True


def open_instructions(*, session: Session, item_id: int) -> list[Instruction]:
    """The item's instructions no report has answered yet, oldest first."""
    answered = exists().where(InstructionAnswer.instruction_id == Instruction.id)
    return list(
        session.scalars(
            select(Instruction)
            .where(Instruction.item_id == item_id, ~answered)
            .order_by(Instruction.given_at, Instruction.id)
        )
    )


def record_answers(
    *,
    session: Session,
    submission: Submission,
    answers: Mapping[int, str],
    now: datetime,
) -> list[InstructionAnswer]:
    """Store a report's answers (instruction id -> 落实批示情况) with its submission.

    Each instruction must be on the submission's item (`InputError` otherwise); an answer
    already stored for this (instruction, submission) is kept as it is. Does not commit.
    """
    if not answers:
        return []
    checkin = session.get_one(Checkin, submission.checkin_id)
    known = {
        row.id
        for row in session.scalars(
            select(Instruction).where(
                Instruction.id.in_(list(answers)), Instruction.item_id == checkin.item_id
            )
        )
    }
    stray = sorted(set(answers) - known)
    if stray:
        raise InputError("所答领导批示不属于该任务，请重新打开填报链接。")
    stored = {
        row.instruction_id: row
        for row in session.scalars(
            select(InstructionAnswer).where(InstructionAnswer.submission_id == submission.id)
        )
    }
    rows = []
    for instruction_id, text in answers.items():
        row = stored.get(instruction_id)
        if row is None:
            row = InstructionAnswer(
                instruction_id=instruction_id,
                submission_id=submission.id,
                department_id=checkin.department_id,
                text=text,
                answered_at=now,
            )
            session.add(row)
        rows.append(row)
    session.flush()
    return rows


def instruction_facts(*, session: Session, item_ids: Iterable[int]) -> list[InstructionFact]:
    """Every instruction on `item_ids` with its first answer (and who answered), oldest
    first: two queries per 500 items."""
    ids = sorted(set(item_ids))
    facts: list[InstructionFact] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.execute(
            select(Instruction, Item)
            .join(Item, Item.id == Instruction.item_id)
            .where(Instruction.item_id.in_(chunk))
            .order_by(Instruction.given_at, Instruction.id)
        ).tuples()
        instructions = list(rows)
        first = _first_answers(session, [row.id for row, _ in instructions])
        for row, item in instructions:
            answer = first.get(row.id)
            facts.append(
                InstructionFact(
                    id=row.id,
                    item_id=row.item_id,
                    item_label=item_label(item),
                    leader=leader_title(row.leader_role, row.leader_name),
                    text=row.text,
                    source=row.source,
                    given_at=row.given_at,
                    answered_at=answer[0].answered_at if answer else None,
                    answer=answer[0].text if answer else "",
                    answered_by=answer[1] if answer else "",
                )
            )
    return facts


def _first_answers(
    session: Session, instruction_ids: Sequence[int]
) -> dict[int, tuple[InstructionAnswer, str]]:
    if not instruction_ids:
        return {}
    found: dict[int, tuple[InstructionAnswer, str]] = {}
    rows = session.execute(
        select(InstructionAnswer, Department.name)
        .join(Department, Department.id == InstructionAnswer.department_id)
        .where(InstructionAnswer.instruction_id.in_(list(instruction_ids)))
        .order_by(InstructionAnswer.answered_at, InstructionAnswer.id)
    ).tuples()
    for answer, name in rows:
        found.setdefault(answer.instruction_id, (answer, name))
    return found


def instruction_card_lines(*, session: Session, item_id: int) -> list[str]:
    """The 领导批示 section of an item's status card (Markdown, outside text escaped): each
    instruction with who gave it, when, and its answer; no lines when there is none."""
    facts = instruction_facts(session=session, item_ids=[item_id])
    if not facts:
        return []
    open_count = sum(1 for fact in facts if fact.answered_at is None)
    lines = ["", f"**领导批示：** {len(facts)}条，待落实{open_count}条", ""]
    for fact in facts:
        lines.append(
            f"- {local_date(fact.given_at).isoformat()} {md_escape(fact.leader)}"
            f"（{fact.source.label}）：{md_escape(fact.text)} — **{fact.state.label}**"
        )
        if fact.answered_at is not None:
            lines.append(
                f"  - {local_date(fact.answered_at).isoformat()} {md_escape(fact.answered_by)}"
                f"落实情况：{md_escape(fact.answer)}"
            )
    return lines
