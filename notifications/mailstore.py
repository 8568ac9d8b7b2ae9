"""Reading the embedded server's Maildir: list messages and show one decoded."""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

from models.errors import NotFoundError
from notifications.sink import ENVELOPE_HEADER


@dataclass(frozen=True)
class StoredMail:
    """Headers of one stored message; `key` is its Maildir key."""

    key: str
    date: datetime | None
    sender: str
    to: str
    envelope_to: str
    subject: str
    kind: str
    message_id: str


@dataclass(frozen=True)
class MailContent:
    """One stored message decoded: headers, plain text, HTML and attachment names."""

    mail: StoredMail
    text: str
    html: str
    attachments: list[str]


def _maildir(path: Path) -> mailbox.Maildir:
    path.parent.mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, factory=None, create=True)


def _parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=default)


def _headers(key: str, message: EmailMessage) -> StoredMail:
    try:
        when = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        when = None
    return StoredMail(
        key=key,
        date=when,
        sender=str(message["From"] or ""),
        to=str(message["To"] or ""),
        envelope_to=str(message[ENVELOPE_HEADER] or ""),
        subject=str(message["Subject"] or ""),
        kind=str(message["X-Duban-Kind"] or ""),
        message_id=str(message["Message-ID"] or ""),
    )


def list_mail(path: Path) -> list[StoredMail]:
    """Every stored message, oldest first (by Date header, then key)."""
    box = _maildir(path)
    mails = [_headers(key, _parse(box.get_bytes(key))) for key in box.iterkeys()]
    return sorted(mails, key=lambda mail: (mail.date.timestamp() if mail.date else 0, mail.key))


def read_mail(path: Path, ref: str) -> MailContent:
    """The message whose Maildir key or Message-ID starts with `ref`, decoded.

    Raises `NotFoundError` when no message (or more than one) matches.
    """
    box = _maildir(path)
    needle = ref.strip("<>")
    matches = []
    for key in box.iterkeys():
        message = _parse(box.get_bytes(key))
        message_id = str(message["Message-ID"] or "").strip("<>")
        if needle and (key.startswith(needle) or message_id.startswith(needle)):
            matches.append((key, message))
    if len(matches) != 1:
        raise NotFoundError(
            f"邮件库中没有找到邮件 {ref}。"
            if not matches
            else f"有多封邮件匹配 {ref}，请写得更完整。"
        )
    key, message = matches[0]
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return MailContent(
        mail=_headers(key, message),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else "",
        attachments=[part.get_filename() or "" for part in message.iter_attachments()],
    )
