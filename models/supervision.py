"""Supervision state: assignments, check-ins, submissions, extensions and notices sent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IntPK, JsonDict, JsonList, StrEnumColumn, Timestamp
from models.directory import Department
from models.plan import Item
from models.vocabulary import (
    AssignmentRole,
    CheckinKind,
    CheckinStatus,
    ExtensionDecision,
    NoticeKind,
    ReviewDecision,
)


class Assignment(Base):
    """An item given to a department as `lead` (牵头) or `support` (配合).

    Reassignment (转办) ends the old row (`ended_at`) and adds a new one, so history is kept;
    at most one open row exists per (item, department, role).
    """

    __tablename__ = "assignment"
    __table_args__ = (
        Index(
            "uq_assignment_open",
            "item_id",
            "department_id",
            "role",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[IntPK]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    role: Mapped[AssignmentRole] = mapped_column(StrEnumColumn(AssignmentRole, 10))
    assigned_at: Mapped[Timestamp]
    ended_at: Mapped[Timestamp | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text, default="")

    item: Mapped[Item] = relationship(lazy="raise")
    department: Mapped[Department] = relationship(lazy="raise")


class Checkin(Base):
    """One department's report on one item, due on a working day (报送).

    `kind` is `work_plan`, `progress` or `self_assessment`; `seq` numbers the check-ins of
    one (item, department, phase). `status` is `pending`, `submitted` or `cancelled`;
    `submitted_at` is the first submission. `due_date` moves with an approved extension and
    `original_due_date` keeps the first one. `asks` is what this check-in asks for when the
    item's own 时序进度 or 完成时限 set it ("" = the policy's generic report).
    """

    __tablename__ = "checkin"
    __table_args__ = (
        UniqueConstraint("item_id", "department_id", "phase_key", "seq"),
        Index("ix_checkin_status_due", "status", "due_date"),
        # A chunk's pending check-ins due by a date (`tasks.daily_pass.with_open_checkins`).
        Index("ix_checkin_status_item_due", "status", "item_id", "due_date"),
    )

    id: Mapped[IntPK]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    phase_key: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[CheckinKind] = mapped_column(StrEnumColumn(CheckinKind, 20))
    role: Mapped[AssignmentRole] = mapped_column(
        StrEnumColumn(AssignmentRole, 10), default=AssignmentRole.LEAD
    )
    due_date: Mapped[date] = mapped_column(Date)
    original_due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[CheckinStatus] = mapped_column(
        StrEnumColumn(CheckinStatus, 20), default=CheckinStatus.PENDING
    )
    submitted_at: Mapped[Timestamp | None] = mapped_column(default=None)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[Timestamp]
    asks: Mapped[str] = mapped_column(Text, default="")
    review: Mapped[ReviewDecision | None] = mapped_column(
        StrEnumColumn(ReviewDecision, 10), default=None
    )
    returns: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    return_reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))

    item: Mapped[Item] = relationship(lazy="raise")
    department: Mapped[Department] = relationship(lazy="raise")


class Submission(Base):
    """One version of a department's answer to a check-in; every edit is a new version.

    `values` maps a target id (as a string) to the reported number; `source` says where it
    came from (`form`, `prefect_ui`, `cli`).
    """

    __tablename__ = "submission"
    __table_args__ = (UniqueConstraint("checkin_id", "version"),)

    id: Mapped[IntPK]
    checkin_id: Mapped[int] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[Timestamp]
    status: Mapped[str] = mapped_column(String(20))
    narrative: Mapped[str] = mapped_column(Text, default="")
    problems: Mapped[str] = mapped_column(Text, default="")
    next_steps: Mapped[str] = mapped_column(Text, default="")
    values: Mapped[JsonDict] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(20), default="form")
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)

    checkin: Mapped[Checkin] = relationship(lazy="raise")


class Extension(Base):
    """A request to move a check-in's due date (延期申请) and the supervisor's decision.

    `decision` is `pending`, `approved` or `rejected`; approval moves the check-in's due date
    and restarts its escalation ladder.
    """

    __tablename__ = "extension"

    id: Mapped[IntPK]
    checkin_id: Mapped[int] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True
    )
    requested_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[Timestamp]
    decision: Mapped[ExtensionDecision] = mapped_column(
        StrEnumColumn(ExtensionDecision, 10), default=ExtensionDecision.PENDING
    )
    decided_at: Mapped[Timestamp | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    previous_due_date: Mapped[date | None] = mapped_column(Date, default=None)


class Notice(Base):
    """A prompt, reminder or escalation that was decided and recorded (who, when, why).

    `key` is the unique business key (for example `checkin:12:escalation:2:r0`) that makes
    every notice happen once however often a flow runs. `kind` is `assignment`, `request`,
    `reminder`, `escalation`, `receipt` or `report`; `level` is the escalation level (0 for
    the others); `recipients` lists `{role, name, email}`.
    """

    __tablename__ = "notice"

    id: Mapped[IntPK]
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[NoticeKind] = mapped_column(StrEnumColumn(NoticeKind, 20))
    level: Mapped[int] = mapped_column(Integer, default=0)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("item.id", ondelete="CASCADE"), index=True, default=None
    )
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), default=None)
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True, default=None
    )
    recipients: Mapped[JsonList] = mapped_column(default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[Timestamp]


class CheckinReview(Base):
    """One review decision (审核) on one submitted version: who, when, what and why.

    `decision` is `accepted` (通过, closes the check-in) or `returned` (退回, back to the
    department with `reason` and a new `due_date`, the one it replaced in
    `previous_due_date`). At most one decision per submission (`submission_id` unique), so
    a decision taken twice is refused by the database as well. `batch` names the bulk
    selection a decision was part of ("" for a single one).
    """

    __tablename__ = "checkin_review"

    id: Mapped[IntPK]
    checkin_id: Mapped[int] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True
    )
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), unique=True
    )
    decision: Mapped[ReviewDecision] = mapped_column(StrEnumColumn(ReviewDecision, 10))
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[Timestamp]
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    previous_due_date: Mapped[date | None] = mapped_column(Date, default=None)
    batch: Mapped[str] = mapped_column(String(200), default="")


LATEST_FIRST = (Submission.submitted_at.desc(), Submission.id.desc())
"""The one order of "latest submission": newest `submitted_at` first, then highest id."""


def latest_submission(
    submissions: Iterable[Submission], *, as_of: datetime | None = None
) -> Submission | None:
    """The latest of `submissions` made at or before `as_of` (all without it), in the order
    `LATEST_FIRST` gives in SQL; None if there is none."""
    eligible = [s for s in submissions if as_of is None or s.submitted_at <= as_of]
    return max(eligible, key=lambda s: (s.submitted_at, s.id), default=None)
