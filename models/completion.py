"""Completion and closure rows: completion requests (申请办结) and an item's closures (销号).

An item is closed while it has a closure row not yet reopened; `Item.closed_at` mirrors that
row's `closed_at` so the daily pass reads it with the item. A reopen ends the closure row
(`reopened_at`, by, reason), keeping the history. Evidence files attach to a completion
request by its id (`attachments`, another module).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IntPK, JsonList, StrEnumColumn, Timestamp
from models.directory import Department
from models.plan import Item
from models.vocabulary import CompletionDecision


class CompletionRequest(Base):
    """A lead department's request to close an item (申请办结), and the office's decision.

    `decision` is `pending`, `approved` (销号) or `rejected` (驳回, with `reason`); at most
    one request per item is pending. `idempotency_key` keeps a re-posted form to one row.
    """

    __tablename__ = "completion_request"
    __table_args__ = (
        Index(
            "uq_completion_request_pending",
            "item_id",
            unique=True,
            sqlite_where=text("decision = 'pending'"),
            postgresql_where=text("decision = 'pending'"),
        ),
    )

    id: Mapped[IntPK]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    summary: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[Timestamp]
    requested_by: Mapped[str] = mapped_column(String(100), default="")
    decision: Mapped[CompletionDecision] = mapped_column(
        StrEnumColumn(CompletionDecision, 10), default=CompletionDecision.PENDING
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[Timestamp | None] = mapped_column(default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)

    item: Mapped[Item] = relationship(lazy="raise")
    department: Mapped[Department] = relationship(lazy="raise")


class ItemClosure(Base):
    """One closure of an item (销号 on an approved request, or the office's direct close).

    `completion_request_id` is the approved request (None when the office closed it
    directly); `cancelled_checkins` the ids of the pending check-ins the closure cancelled,
    so a reopen restores the ones still ahead. `reopened_at` ends the closure; at most one
    closure per item is open.
    """

    __tablename__ = "item_closure"
    __table_args__ = (
        Index(
            "uq_item_closure_open",
            "item_id",
            unique=True,
            sqlite_where=text("reopened_at IS NULL"),
            postgresql_where=text("reopened_at IS NULL"),
        ),
    )

    id: Mapped[IntPK]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    completion_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("completion_request.id", ondelete="SET NULL"), default=None
    )
    closed_at: Mapped[Timestamp]
    closed_by: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    cancelled_checkins: Mapped[JsonList] = mapped_column(default=list)
    reopened_at: Mapped[Timestamp | None] = mapped_column(default=None)
    reopened_by: Mapped[str] = mapped_column(String(100), default="")
    reopen_reason: Mapped[str] = mapped_column(Text, default="")
