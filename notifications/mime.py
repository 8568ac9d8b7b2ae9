"""The wire form of an outbox row: the envelope and MIME bytes the relay sends.

Addresses: a non-ASCII domain (`例子.中国`) is sent in its IDNA form (`xn--fsqu00a.xn--fiqs8s`),
which every server accepts; a non-ASCII local part (`学会部@…`) can only travel with
SMTPUTF8 (RFC 6531), so such a message says it needs that extension and the relay
dead-letters it, with the reason, when the server does not offer it (docs/email.md).
"""

from __future__ import annotations

import binascii
import functools
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import idna

from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import ClaimedMessage, check_header


class PermanentMessageError(Exception):
    """The row itself cannot be sent (an attachment is unreadable, an address is invalid);
    the message says why in Chinese."""


@dataclass(frozen=True)
class WireMail:
    """What goes over SMTP for one row: envelope sender and recipients (domains in IDNA
    form), the message bytes, and whether any address needs SMTPUTF8. `wire_form` says the
    bytes are already as they travel after DATA (CRLF line endings only, no line starting
    with a dot), as `build_email` always writes them (`tests/unit/test_relay_wire_form.py`)."""

    sender: str
    recipients: list[str]
    data: bytes
    smtputf8: bool
    wire_form: bool = False


_ADDRESS_FOLD = ",\r\n "
_FORBIDDEN_IN_ADDRESS = frozenset(' \t\r\n<>()[]\\,;:"\x7f')


def wire_address(address: str) -> tuple[str, bool]:
    """`address` as it travels in the envelope and headers, and whether it needs SMTPUTF8.

    The domain is converted to IDNA (UTS #46 mapping); the local part is kept as written.
    Raises `PermanentMessageError` for an address without a local part and a domain, with
    spaces, angle brackets or control characters, or with a domain IDNA cannot express.
    """
    local, at, domain = address.strip().rpartition("@")
    bad = any(char in _FORBIDDEN_IN_ADDRESS or ord(char) < 0x20 for char in address.strip())
    if not at or not local or not domain or bad:
        raise PermanentMessageError(f"收件人地址格式无效：{address!r}，请在部门名录中更正。")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise PermanentMessageError(
                f"收件人地址 {address} 的域名无法转换为国际化域名（IDNA）形式（{exc}），"
                "请在部门名录中更正。"
            ) from exc
    return f"{local}@{domain}", not local.isascii()


def message_domain(settings: Settings) -> str:
    """The domain part of Message-IDs: the sender address's domain, in IDNA form."""
    return _sender(settings.mail_from_address)[0].rpartition("@")[2] or "duban.local"


@functools.lru_cache(maxsize=8)
def _sender(address: str) -> tuple[str, bool]:
    return wire_address(address)


@functools.lru_cache(maxsize=4096)
def _recipient(address: str) -> tuple[str, bool]:
    return wire_address(address)


@functools.lru_cache(maxsize=256)
def _date(moment: datetime) -> str:
    return format_datetime(moment)


@functools.lru_cache(maxsize=8)
def _from_header(name: str, address: str) -> str:
    return f"{encoded_words(check_header(name))} <{address}>" if name else address


def encoded_words(text: str) -> str:
    """`text` as RFC 2047 UTF-8 base64 encoded-words, folded with CRLF SP so that every
    line of the header stays under 78 characters.

    Each word holds as many whole characters as fit in 39 bytes of UTF-8."""
    data = text.encode("utf-8")
    words: list[str] = []
    start, size = 0, len(data)
    while start < size or not words:
        end = min(start + 39, size)
        while end < size and data[end] & 0xC0 == 0x80:  # not inside a character
            end -= 1
        words.append(binascii.b2a_base64(data[start:end], newline=False).decode("ascii"))
        start = end
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in words)


def _base64_lines(data: bytes) -> bytes:
    """`base64.encodebytes(data)` with CRLF line ends (lines of 76 characters), in one pass."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    lines = [encoded[at : at + 76] for at in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n"


def _text_part(text: str, subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + _base64_lines(text.encode("utf-8"))


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> tuple[str, bytes]:
    delimiter = f"--{boundary}\r\n".encode("ascii")
    body = b"".join(delimiter + part for part in parts) + f"--{boundary}--\r\n".encode("ascii")
    return f'multipart/{subtype}; boundary="{boundary}"', body


def _split(part: bytes) -> tuple[str, bytes]:
    """A part's Content-Type value and everything after that header line."""
    header, _, rest = part.partition(b"\r\n")
    return header.decode("ascii").removeprefix("Content-Type: "), rest


def build_email(row: OutboxMessage | ClaimedMessage, settings: Settings) -> WireMail:
    """The envelope and MIME bytes of `row`: text + HTML alternatives, attachments, stable
    headers.

    Headers are the same on every attempt (Date is the row's creation time, boundaries
    derive from the row id), so a duplicate delivery is recognisable. Bodies are UTF-8 in
    base64; the subject and sender name are RFC 2047 encoded-words, attachment names RFC
    2231. Written directly as bytes (about ten times cheaper than the `email` package's
    generator for the same structure); boundaries contain `_`, which base64 never does.
    Raises `PermanentMessageError` for an unreadable attachment or an invalid address.
    """
    sender, sender_utf8 = _sender(settings.mail_from_address)
    to = [_recipient(address) for address in row.to_addrs]
    cc = [_recipient(address) for address in row.cc_addrs]
    body = _text_part(row.text_body, "plain")
    if row.html_body:
        content_type, alternatives = _multipart(
            "alternative",
            f"=_duban_alt_{row.id}",
            [body, _text_part(row.html_body, "html")],
        )
        body = f"Content-Type: {content_type}\r\n\r\n".encode("ascii") + alternatives
    if row.attachments:
        parts = [body, *(_attachment_part(attachment) for attachment in row.attachments)]
        content_type, mixed = _multipart("mixed", f"=_duban_mix_{row.id}", parts)
        body = f"Content-Type: {content_type}\r\n\r\n".encode("ascii") + mixed
    content_type, rest = _split(body)
    headers = [
        f"Content-Type: {content_type}",
        "MIME-Version: 1.0",
        f"Subject: {encoded_words(check_header(row.subject))}",
        f"From: {_from_header(settings.mail_from_name, sender)}",
        "To: " + _ADDRESS_FOLD.join(address for address, _ in to),
    ]
    if cc:
        headers.append("Cc: " + _ADDRESS_FOLD.join(address for address, _ in cc))
    headers += [
        f"Date: {_date(row.created_at)}",
        f"Message-ID: <{row.id}@{message_domain(settings)}>",
        f"X-Duban-Kind: {check_header(row.kind)}",
        "Auto-Submitted: auto-generated",
    ]
    head = "\r\n".join(headers).encode("utf-8")
    return WireMail(
        sender=sender,
        recipients=[address for address, _ in (*to, *cc)],
        data=head + b"\r\n" + rest,
        smtputf8=sender_utf8 or any(utf8 for _, utf8 in (*to, *cc)),
        wire_form=True,
    )


def _attachment_part(attachment: dict[str, Any]) -> bytes:
    path = Path(str(attachment.get("path", "")))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PermanentMessageError(f"附件无法读取：{path.name}（{exc.strerror}）") from exc
    mime = check_header(str(attachment.get("mime") or "application/octet-stream"))
    maintype, _, subtype = mime.partition("/")
    filename = urllib.parse.quote(str(attachment.get("filename") or path.name), safe="")
    return (
        f"Content-Type: {maintype}/{subtype or 'octet-stream'}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{filename}\r\n\r\n"
    ).encode("ascii") + _base64_lines(data)
