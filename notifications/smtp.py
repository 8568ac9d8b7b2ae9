"""One SMTP mail transaction for a message already in its wire form (`WireMail`).

`aiosmtplib.SMTP.sendmail` re-parses every address with `email.utils.parseaddr` and scans
the message three times with regular expressions (line endings for SIZE, line endings again
and leading dots for DATA): about 0.1 ms of CPU per message, a sixth of the relay's. A
`WireMail` needs none of that, since `notifications.mime` writes its addresses already
checked and in IDNA form and its bytes with CRLF line endings and no line that starts with
a dot (`WireMail.wire_form`). `send_wire_mail` sends the same commands and bytes as
`sendmail` would (MAIL FROM with `size=` when the server offers SIZE, one RCPT TO per
recipient, DATA), raises the same exceptions, and escapes other bytes as aiosmtplib does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from types import TracebackType

import aiosmtplib
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    PERIOD_REGEX,
    normalize_message_line_endings,
)
from aiosmtplib.typing import SMTPStatus

from notifications.mime import WireMail

_ACCEPTED = frozenset({250, 251})
_END_OF_DATA = b".\r\n"
_EARLY = 0.001  # a timer firing this close to a limit counts as reaching it


class SendDeadline:
    """`asyncio.timeout` for one send with two limits and one timer: the block may take
    `overall` seconds, and each reply, from `waiting()` on, `per_reply` seconds.

    The timer is armed once, for the earliest moment a limit could be reached, and re-armed
    only when it fires before one is: a send that takes milliseconds costs one timer instead
    of one per reply (aiosmtplib's `wait_for` per command). On expiry the block's task is
    cancelled and the block raises `TimeoutError`, exactly as `asyncio.timeout` does.
    """

    def __init__(self, *, per_reply: float, overall: float) -> None:
        self.per_reply = per_reply
        self.overall = overall
        self.expired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._timer: asyncio.TimerHandle | None = None
        self._end = math.inf
        self._reply_end = math.inf
        self._left = math.inf

    def waiting(self) -> None:
        """A command has been sent: its reply is due within `per_reply` seconds."""
        if self._loop is not None:
            self._reply_end = self._loop.time() + self.per_reply

    def hold(self) -> None:
        """Stop both limits until `resume()`: the send waits for something of the caller's
        (a slot of the relay's duplicate window), not for the server."""
        if self._loop is None:
            return
        self._left = self._end - self._loop.time()
        self._end = self._reply_end = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def resume(self) -> None:
        """Run the overall limit again with what was left of it at `hold()` (no reply is
        awaited until the next `waiting()`)."""
        if self._loop is None or self._task is None or self._end != math.inf:
            return
        self._end = self._loop.time() + max(self._left, 0.0)
        self._timer = self._loop.call_at(self._end, self._check, self._loop, self._task)

    def _check(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object]) -> None:
        due = min(self._end, self._reply_end)
        if loop.time() + _EARLY >= due:
            self._timer = None
            self.expired = True
            task.cancel()
        else:
            self._timer = loop.call_at(due, self._check, loop, task)

    async def __aenter__(self) -> SendDeadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("SendDeadline must be used inside a task")
        self._loop, self._task, self._cancelling = loop, task, task.cancelling()
        start = loop.time()
        self._end = start + self.overall
        self._reply_end = math.inf
        self._timer = loop.call_at(min(self._end, start + self.per_reply), self._check, loop, task)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.expired and self._task is not None:
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class ContentWithheld(Exception):
    """`send_wire_mail`'s `before_content` declined to send the message: the server has
    answered DATA with 354 and waits for the content, so the caller closes the connection."""


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
    smtp: aiosmtplib.SMTP,
    mail: WireMail,
    *,
    deadline: SendDeadline | None = None,
    before_content: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, aiosmtplib.SMTPResponse]:
    """Deliver `mail` over the connected, greeted `smtp`; returns the refused recipients.

    Same contract as `smtp.sendmail(mail.sender, mail.recipients, mail.data,
    mail_options=["SMTPUTF8"] if mail.smtputf8 else None)`: raises `SMTPSenderRefused`,
    `SMTPRecipientsRefused` (every recipient refused) or `SMTPDataError` after trying RSET,
    `SMTPServerDisconnected`/`SMTPTimeoutError` after closing the connection. Each reply
    waits at most `smtp.timeout`, or, inside `deadline`'s block, `deadline.per_reply`
    (then `TimeoutError` leaves the connection for the caller to close). The caller checks
    SMTPUTF8 support beforehand.

    `before_content`, if given, is awaited after the server's 354, just before the message
    itself is written (the first moment the server could accept it): the relay waits there
    for a slot of its duplicate window. If it returns False, `ContentWithheld` is raised and
    nothing of the message has been written.
    """
    timeout = smtp.timeout if deadline is None else None

    async def command(*args: bytes) -> aiosmtplib.SMTPResponse:
        if deadline is not None:
            deadline.waiting()
        return await _command(smtp, b" ".join(args), timeout)

    encoding = "utf-8" if mail.smtputf8 else "ascii"
    data, size = (mail.data, len(mail.data)) if mail.wire_form else transmission_form(mail.data)
    options: list[bytes] = []
    if smtp.supports_extension("size"):
        options.append(f"size={size}".encode("ascii"))
    if mail.smtputf8:
        options.append(b"SMTPUTF8")
    try:
        reply = await command(b"MAIL", b"FROM:<" + mail.sender.encode(encoding) + b">", *options)
        if reply.code != 250:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, mail.sender)
        refused: list[aiosmtplib.SMTPRecipientRefused] = []
        for recipient in mail.recipients:
            reply = await command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">")
            if reply.code not in _ACCEPTED:
                refused.append(
                    aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
                )
        if len(refused) == len(mail.recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        reply = await command(b"DATA")
        if reply.code != 354:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        if before_content is not None and not await before_content():
            raise ContentWithheld
        if deadline is not None:
            deadline.waiting()
        reply = await _content(smtp, data + _END_OF_DATA, timeout)
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


async def _command(
    smtp: aiosmtplib.SMTP, line: bytes, timeout: float | None
) -> aiosmtplib.SMTPResponse:
    """`smtp.execute_command` for one command line, with the same checks, replies and
    exceptions, written and read on the protocol directly: the connection's command lock
    and two coroutine layers per command are left out, since a relay worker is the only
    user of its connection and sends one command at a time."""
    if COMMAND_INJECTION_REGEX.search(line):
        raise ValueError("Command arg contains a prohibited control character")
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    try:
        protocol.write(line + b"\r\n")
        reply = await protocol.read_response(timeout=timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    if reply.code == SMTPStatus.domain_unavailable:
        smtp.close()
    return reply


async def _content(
    smtp: aiosmtplib.SMTP, content: bytes, timeout: float | None
) -> aiosmtplib.SMTPResponse:
    """Write the message and its final `.` line after the 354 and read the reply, closing the
    connection on a disconnect or a timeout (as `SMTP.data` does)."""
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(content)
        reply = await protocol.read_response(timeout=timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    return reply
