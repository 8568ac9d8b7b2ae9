"""Leader instructions (领导批示): the stored rows and the pure rules about them.

A 分管领导 or 主要负责人 writes an instruction on one item through a signed link in an
escalation email (`source = link`), or the supervision office records one given on paper
(`source = paper`). The lead department's next report answers it (落实批示情况): each
answer is an `InstructionAnswer` row stored with the submission that carried it. An
instruction is open until its first answer.

The rules here are pure (no session): text bounds, the business key that makes a
recording happen once, the state of an instruction, the answers a posted form carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, StrEnumColumn, Timestamp
from models.errors import InputError
from models.limits import normalise_text
from models.vocabulary import InstructionSource, InstructionState, RecipientRole

INSTRUCTION_MAX = 2000
ANSWER_MAX = 2000
LEADER_NAME_MAX = 100
ANSWER_FIELD_PREFIX = "instruction_"
LEADER_ROLES = (RecipientRole.LEADER, RecipientRole.HEAD)


class Instruction(Base):
    """A leader's written instruction on one item, with who gave it, how and when.

    `leader_department_id` names the department whose 分管领导 (`leader_role = leader`) or
    主要负责人 (`head`) gave it, when known; `leader_name` is the name at the time.
    `recorded_by` is who entered it (the leader through the link, or the office's clerk).
    `key` is the business key (`instruction_key`): recording the same instruction twice
    finds the first row.
    """

    __tablename__ = "instruction"
    __table_args__ = (Index("ix_instruction_item_given", "item_id", "given_at"),)

    id: Mapped[IntPK]
    key: Mapped[str] = mapped_column(String(64), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"))
    leader_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id"), default=None
    )
    leader_role: Mapped[RecipientRole] = mapped_column(StrEnumColumn(RecipientRole, 10))
    leader_name: Mapped[str] = mapped_column(String(LEADER_NAME_MAX))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[InstructionSource] = mapped_column(StrEnumColumn(InstructionSource, 10))
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    given_at: Mapped[Timestamp]
    recorded_at: Mapped[Timestamp]


class InstructionAnswer(Base):
    """One report's answer to an instruction (落实批示情况), stored with its submission."""

    __tablename__ = "instruction_answer"
    __table_args__ = (UniqueConstraint("instruction_id", "submission_id"),)

    id: Mapped[IntPK]
    instruction_id: Mapped[int] = mapped_column(
        ForeignKey("instruction.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    text: Mapped[str] = mapped_column(Text)
    answered_at: Mapped[Timestamp]


def check_instruction_text(text: str) -> str:
    """The instruction as stored (normalised, stripped), or `InputError` in Chinese when it
    is empty or longer than `INSTRUCTION_MAX` characters."""
    cleaned = normalise_text(text).strip()
    if not cleaned:
        raise InputError("批示内容不能为空，请填写批示意见。")
    if len(cleaned) > INSTRUCTION_MAX:
        raise InputError(
            f"批示内容不能超过{INSTRUCTION_MAX}字（现为{len(cleaned)}字），请精简后再提交。"
        )
    return cleaned


def check_leader_name(name: str) -> str:
    """The leader's name as stored, or `InputError` when empty, too long or multi-line."""
    cleaned = normalise_text(name).strip()
    if not cleaned:
        raise InputError("请填写批示领导的姓名（--leader）。")
    if "\n" in cleaned or "\t" in cleaned or len(cleaned) > LEADER_NAME_MAX:
        raise InputError(f"批示领导姓名须为一行，不超过{LEADER_NAME_MAX}字。")
    return cleaned


def instruction_key(
    *,
    item_id: int,
    leader_role: str,
    leader_name: str,
    text: str,
    given_on: date | None = None,
    nonce: str = "",
) -> str:
    """The business key of one instruction: the item, the leader, the text, and (for paper)
    the day it was given or (for a link) the page's submit id. Recording it again (a
    double submit of one page, a re-run CLI command) finds the first row."""
    day = given_on.isoformat() if given_on else ""
    parts = [str(item_id), str(leader_role), leader_name, text, day, nonce]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def instruction_state(answer_count: int) -> InstructionState:
    """An instruction with at least one answer is answered; otherwise it is open."""
    return InstructionState.ANSWERED if answer_count > 0 else InstructionState.OPEN


def answer_field(instruction_id: int) -> str:
    """The form field that carries the answer to instruction `instruction_id`."""
    return f"{ANSWER_FIELD_PREFIX}{instruction_id}"


@dataclass(frozen=True)
class ParsedAnswers:
    """The answers a posted form carries (instruction id -> text), or the errors to show."""

    answers: dict[int, str]
    errors: list[str]


def parse_answers(raw: Mapping[str, str], open_ids: Sequence[int]) -> ParsedAnswers:
    """Read the 落实批示情况 field of each open instruction from the posted fields.

    Every open instruction must be answered (the report is asked to answer it) in at most
    `ANSWER_MAX` characters; the errors number the instructions as the form shows them.
    """
    answers: dict[int, str] = {}
    errors: list[str] = []
    for position, instruction_id in enumerate(open_ids, start=1):
        text = normalise_text(raw.get(answer_field(instruction_id), "")).strip()
        if not text:
            errors.append(f"请填写第{position}条领导批示的落实情况（落实批示情况）。")
        elif len(text) > ANSWER_MAX:
            errors.append(f"第{position}条落实批示情况不能超过{ANSWER_MAX}字。")
        else:
            answers[instruction_id] = text
    return ParsedAnswers(answers=answers if not errors else {}, errors=errors)


@dataclass(frozen=True)
class InstructionFact:
    """An instruction as reports and status cards show it, with its first answer if any."""

    id: int
    item_id: int
    item_label: str
    leader: str
    text: str
    source: InstructionSource
    given_at: datetime
    answered_at: datetime | None = None
    answer: str = ""
    answered_by: str = ""

    @property
    def state(self) -> InstructionState:
        """Open until it has an answer."""
        return instruction_state(1 if self.answered_at is not None else 0)


def leader_title(role: RecipientRole | str, name: str) -> str:
    """`分管领导 张三` / `主要负责人 李四`: how a leader is named in emails and reports."""
    return f"{RecipientRole.label_of(str(role))} {name}".strip()


@dataclass(frozen=True)
class InstructionSummary:
    """The instructions given in a period and how many were answered by its end."""

    facts: tuple[InstructionFact, ...]
    answered: int
    open: int


def summarise_instructions(
    facts: Iterable[InstructionFact], *, start: datetime, end: datetime
) -> InstructionSummary:
    """The instructions given in [`start`, `end`], oldest first, and their states at `end`
    (an answer after `end` does not count: the report tells the period as it was)."""
    chosen = sorted(
        (fact for fact in facts if start <= fact.given_at <= end),
        key=lambda fact: (fact.given_at, fact.id),
    )
    as_of_end = tuple(
        fact
        if fact.answered_at is None or fact.answered_at <= end
        else replace(fact, answered_at=None, answer="", answered_by="")
        for fact in chosen
    )
    answered = sum(1 for fact in as_of_end if fact.state is InstructionState.ANSWERED)
    return InstructionSummary(facts=as_of_end, answered=answered, open=len(as_of_end) - answered)
