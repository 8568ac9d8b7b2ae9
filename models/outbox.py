"""The transactional outboxes: domain events and email messages, written with the change."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, JsonDict, JsonList, StrEnumColumn, Timestamp
from models.vocabulary import Channel, OutboxStatus


class DomainEvent(Base):
    """A state change as an event row (`duban.checkin.submitted` …), committed with the change.

    `resource_id` names the object (`duban.checkin.12`); `related` lists `{id, role, name}`
    resources (item, department, plan). `published_at` is set once the event has been
    emitted to Prefect.
    """

    __tablename__ = "domain_event"
    __table_args__ = (Index("ix_domain_event_unpublished", "published_at", "id"),)

    id: Mapped[IntPK]
    type: Mapped[str] = mapped_column(String(100), index=True)
    resource_id: Mapped[str] = mapped_column(String(100))
    related: Mapped[JsonList] = mapped_column(default=list)
    payload: Mapped[JsonDict] = mapped_column(default=dict)
    occurred_at: Mapped[Timestamp]
    created_at: Mapped[Timestamp]
    published_at: Mapped[Timestamp | None] = mapped_column(default=None)


class OutboxMessage(Base):
    """An email waiting to be sent, being sent, sent or dead.

    `id` doubles as the Message-ID's local part. `key` is the business key of the notice it
    delivers, so a message is written once. `status` is `pending`, `sending` (claimed until
    `lease_until`), `sent`, or `dead` (5xx or too many attempts, with `last_error`).
    `recipient_results` maps each address to the server's reply. `channel` is `email`, or
    a chat app (`wecom`, `dingtalk`, `feishu`) whose row has the robot's webhook in
    `to_addrs` and no subject (`notifications.chat`).
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_ready", "status", "next_attempt_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("notice.id", ondelete="SET NULL"), default=None
    )
    to_addrs: Mapped[JsonList] = mapped_column(default=list)
    cc_addrs: Mapped[JsonList] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[JsonList] = mapped_column(default=list)
    status: Mapped[OutboxStatus] = mapped_column(
        StrEnumColumn(OutboxStatus, 10), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Timestamp]
    lease_until: Mapped[Timestamp | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    recipient_results: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[Timestamp]
    sent_at: Mapped[Timestamp | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(
        StrEnumColumn(Channel, 20), default=Channel.EMAIL, server_default=Channel.EMAIL.value
    )
