"""The MIME form of an outbox row: what the relay sends and what a mail client shows."""

from __future__ import annotations

from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import check_header


class PermanentMessageError(Exception):
    """The row itself cannot be sent (for example an attachment file is missing)."""


def message_domain(settings: Settings) -> str:
    """The domain part of Message-IDs: the sender address's domain."""
    return settings.mail_from_address.rpartition("@")[2] or "duban.local"


def build_email(row: OutboxMessage, settings: Settings) -> Message:
    """The MIME message of `row`: text + HTML alternatives, attachments, stable headers.

    Headers are the same on every attempt (Date is the row's creation time), so a duplicate
    delivery is recognisable. Bodies are UTF-8 in base64; built with the `email.mime`
    classes (compat32), several times faster than `EmailMessage` for the same bytes.
    Raises `PermanentMessageError` for an unreadable attachment.
    """
    body: Message = MIMEText(row.text_body, "plain", "utf-8")
    if row.html_body:
        alternative = MIMEMultipart("alternative")
        alternative.attach(body)
        alternative.attach(MIMEText(row.html_body, "html", "utf-8"))
        body = alternative
    if row.attachments:
        mixed = MIMEMultipart("mixed")
        mixed.attach(body)
        for attachment in row.attachments:
            mixed.attach(_attachment_part(attachment))
        body = mixed
    subject = Header(check_header(row.subject), "utf-8", header_name="Subject")
    body["Subject"] = subject  # type: ignore[assignment]  # compat32 folds a Header itself
    body["From"] = formataddr((settings.mail_from_name, settings.mail_from_address), "utf-8")
    body["To"] = ", ".join(row.to_addrs)
    if row.cc_addrs:
        body["Cc"] = ", ".join(row.cc_addrs)
    body["Date"] = format_datetime(row.created_at)
    body["Message-ID"] = f"<{row.id}@{message_domain(settings)}>"
    body["X-Duban-Kind"] = row.kind
    body["Auto-Submitted"] = "auto-generated"
    return body


def _attachment_part(attachment: dict[str, Any]) -> Message:
    path = Path(str(attachment.get("path", "")))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PermanentMessageError(f"附件无法读取：{path.name}（{exc.strerror}）") from exc
    maintype, _, subtype = str(attachment.get("mime", "application/octet-stream")).partition("/")
    part = MIMEBase(maintype, subtype or "octet-stream")
    part.set_payload(data)
    encoders.encode_base64(part)
    filename = str(attachment.get("filename") or path.name)
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
    return part
