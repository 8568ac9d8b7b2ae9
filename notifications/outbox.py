"""The email outbox: a message row is written in the transaction of the change that caused it.

`enqueue_message` is the only way mail enters duban; a relay (see `notifications.relay`)
delivers pending rows later. The row's `key` is the business key of the notice it delivers,
so enqueueing the same notice twice writes one row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage


class HeaderInjectionError(ValueError):
    """A value meant for a mail header contains CR or LF."""


def check_header(value: str) -> str:
    """Return `value` unchanged, or raise `HeaderInjectionError` if it contains CR/LF."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError("mail header values must not contain CR or LF")
    return value


def enqueue_message(
    *,
    session: Session,
    key: str,
    kind: str,
    to: Sequence[str],
    subject: str,
    text_body: str,
    html_body: str = "",
    cc: Sequence[str] = (),
    now: datetime,
    notice_id: int | None = None,
    attachments: Sequence[dict[str, str]] = (),
) -> OutboxMessage:
    """Add a pending message for `key`, or return the existing one: never two rows per key.

    Does not commit. Raises `HeaderInjectionError` for CR/LF in the subject or an address.
    `attachments` are `{path, filename, mime}` dicts read at send time.
    """
    existing = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).first()
    if existing is not None:
        return existing
    for value in (subject, *to, *cc):
        check_header(value)
    message = OutboxMessage(
        id=uuid.uuid4().hex,
        key=key,
        kind=kind,
        notice_id=notice_id,
        to_addrs=list(to),
        cc_addrs=list(cc),
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        attachments=[dict(item) for item in attachments],
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message
