"""One SMTP mail transaction for a message already in its wire form (`WireMail`).

`aiosmtplib.SMTP.sendmail` re-parses every address with `email.utils.parseaddr` and scans
the message three times with regular expressions (line endings for SIZE, line endings again
and leading dots for DATA): together about a third of the relay's CPU per message. A
`WireMail` needs none of that, since `notifications.mime` writes its addresses already
checked and in IDNA form and its bytes with CRLF line endings and no line that starts with
a dot. `send_wire_mail` sends the same commands and bytes as `sendmail` would (MAIL FROM
with `size=` when the server offers SIZE, one RCPT TO per recipient, DATA), raises the same
exceptions, and falls back to aiosmtplib's own escaping for bytes not in that form.
"""

from __future__ import annotations

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from notifications.mime import WireMail

_ACCEPTED = frozenset({250, 251})
_END_OF_DATA = b".\r\n"


def in_transmission_form(data: bytes) -> bool:
    """Whether `data` can follow DATA as it is: CRLF line endings only, ending in CRLF, and no
    line that starts with a dot (RFC 5321 4.5.2)."""
    crlf = data.count(b"\r\n")
    return (
        data.endswith(b"\r\n")
        and data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and not data.startswith(b".")
        and b"\n." not in data
    )


def transmission_form(data: bytes) -> tuple[bytes, int]:
    """`data` as it travels after DATA, without the final `.` line, and its size as
    aiosmtplib declares it (CRLF line endings, before dot-stuffing)."""
    if in_transmission_form(data):
        return data, len(data)
    normalized = normalize_message_line_endings(data)
    return PERIOD_REGEX.sub(b"..", normalized), len(normalized)


async def send_wire_mail(
    smtp: aiosmtplib.SMTP, mail: WireMail
) -> dict[str, aiosmtplib.SMTPResponse]:
    """Deliver `mail` over the connected, greeted `smtp`; returns the refused recipients.

    Same contract as `smtp.sendmail(mail.sender, mail.recipients, mail.data,
    mail_options=["SMTPUTF8"] if mail.smtputf8 else None)`: raises `SMTPSenderRefused`,
    `SMTPRecipientsRefused` (every recipient refused) or `SMTPDataError` after trying RSET,
    `SMTPServerDisconnected`/`SMTPTimeoutError` after closing the connection. Each reply
    waits at most `smtp.timeout`. The caller checks SMTPUTF8 support beforehand.
    """
    encoding = "utf-8" if mail.smtputf8 else "ascii"
    data, size = transmission_form(mail.data)
    options: list[bytes] = []
    if smtp.supports_extension("size"):
        options.append(f"size={size}".encode("ascii"))
    if mail.smtputf8:
        options.append(b"SMTPUTF8")
    try:
        reply = await smtp.execute_command(
            b"MAIL", b"FROM:<" + mail.sender.encode(encoding) + b">", *options
        )
        if reply.code != 250:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, mail.sender)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for recipient in mail.recipients:
            reply = await smtp.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">")
            if reply.code not in _ACCEPTED:
                refused.append(
                    aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                )
        if len(refused) == len(mail.recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        reply = await smtp.execute_command(b"DATA")
        if reply.code != 354:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        reply = await _content(smtp, data + _END_OF_DATA)
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        try:
            await smtp.rset()
        except (ConnectionError, aiosmtplib.SMTPResponseException):
            pass
        raise
    return {
        error.recipient: aiosmtplib.SMTPResponse(error.code, error.message) for error in refused
    }


async def _content(smtp: aiosmtplib.SMTP, content: bytes) -> aiosmtplib.SMTPResponse:
    """Write the message and its final `.` line after the 354 and read the reply, closing the
    connection on a disconnect or a timeout (as `SMTP.data` does)."""
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(content)
        reply = await protocol.read_response(timeout=smtp.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    return reply
