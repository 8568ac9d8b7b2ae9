"""The outbox relay: claims pending rows and delivers them over SMTP with aiosmtplib.

A batch is split over a few workers; each keeps one SMTP connection open for its share and
reconnects after any failure. A row is marked sent only after the server's 250 for DATA;
accepted rows are marked together, `mark_every` per transaction and at the end of each
batch, while retries and dead letters are committed right after their send. A crash
therefore re-sends, once each and with the same Message-ID (`<row id@domain>`), at most the
rows accepted since the last commit. The default, `mark_every=1`, keeps that window to the
one message in flight per connection; a larger value trades a wider window for about a
third less CPU per message (docs/performance.md). 4xx replies,
disconnects and timeouts are retried later; 5xx replies and unreadable attachments go to
the dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.db import transaction
from models.outbox import OutboxMessage
from models.settings import Settings, SmtpSecurity
from notifications import outbox
from notifications.mime import PermanentMessageError, build_email

log = logging.getLogger("duban.mail.relay")

TRANSIENT_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    TimeoutError,
    OSError,
)


class _ConnectFailed(Exception):
    """Connecting, STARTTLS or login failed: never the message's fault, always retried."""


@dataclass
class RelayResult:
    """What one `relay_once` did: rows claimed, sent, retried later, dead, and claims lost."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RelayOptions:
    """Batch size, parallel connections, accepted rows per commit, lease, per-send deadline
    and retry policy."""

    batch_size: int = 200
    mark_every: int = 1
    concurrency: int = 4
    lease: timedelta = timedelta(minutes=15)
    send_deadline_seconds: float | None = None
    policy: outbox.RetryPolicy = outbox.DEFAULT_POLICY
    tls_context: ssl.SSLContext | None = None


def smtp_client(settings: Settings, tls_context: ssl.SSLContext | None = None) -> aiosmtplib.SMTP:
    """An unconnected aiosmtplib client configured from the SMTP settings.

    `tls_context` replaces the default (system CAs, hostname checked) for TLS and STARTTLS,
    for example to trust an internal CA.
    """
    password = settings.smtp_password.get_secret_value()
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        timeout=settings.smtp_timeout_seconds,
        use_tls=settings.smtp_security is SmtpSecurity.tls,
        start_tls=True if settings.smtp_security is SmtpSecurity.starttls else False,
        username=settings.smtp_user or None,
        password=password if settings.smtp_user else None,
        tls_context=tls_context,
    )


def _quick_ack(smtp: aiosmtplib.SMTP) -> None:
    """Ask Linux to ACK at once on a reused connection (TCP_QUICKACK is not sticky).

    Without it, delayed ACKs on a long-lived connection add tens of milliseconds per
    message on a busy host; a fresh connection starts in quick-ACK mode anyway.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    transport = smtp.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if option is None or sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def _reply(response: aiosmtplib.SMTPResponse | aiosmtplib.SMTPResponseException) -> str:
    return f"{response.code} {response.message}".strip()


class _Worker:
    """One SMTP connection sending its share of a batch, one row at a time."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: RelayOptions,
        record: Callable[[OutboxMessage, str, str, dict[str, str] | None], None],
    ) -> None:
        self.settings = settings
        self.options = options
        self.record = record
        self.smtp: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self.smtp is None or not self.smtp.is_connected:
            smtp = smtp_client(self.settings, self.options.tls_context)
            await smtp.connect()
            self.smtp = smtp
        return self.smtp

    async def close(self) -> None:
        """Say QUIT if the connection is open; never raises."""
        smtp, self.smtp = self.smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await asyncio.wait_for(smtp.quit(), timeout=5)
            except (aiosmtplib.SMTPException, TimeoutError, OSError):
                smtp.close()

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None

    async def send(self, row: OutboxMessage) -> None:
        """Deliver `row` and record the outcome (sent, retry or dead)."""
        try:
            payload = build_email(row, self.settings).as_bytes()
        except PermanentMessageError as exc:
            self.record(row, "dead", str(exc), None)
            return
        recipients = [*row.to_addrs, *row.cc_addrs]
        deadline = self.options.send_deadline_seconds or self.settings.smtp_timeout_seconds * 2
        try:
            async with asyncio.timeout(deadline):
                try:
                    smtp = await self._connection()
                except (aiosmtplib.SMTPException, OSError) as exc:
                    raise _ConnectFailed(str(exc) or type(exc).__name__) from exc
                _quick_ack(smtp)
                refused, _ = await smtp.sendmail(
                    self.settings.mail_from_address, recipients, payload
                )
        except _ConnectFailed as exc:
            self._drop()
            self.record(row, "unreachable", f"连接或登录失败：{exc}", None)
            return
        except aiosmtplib.SMTPRecipientsRefused as exc:
            results = {error.recipient: _reply(error) for error in exc.recipients}
            transient = any(error.code < 500 for error in exc.recipients)
            self._drop()
            self.record(row, "retry" if transient else "dead", "全部收件人被拒绝", results)
            return
        except aiosmtplib.SMTPResponseException as exc:
            self._drop()
            self.record(row, "dead" if exc.code >= 500 else "retry", _reply(exc), None)
            return
        except TRANSIENT_ERRORS as exc:
            self._drop()
            reason = "发送超时" if isinstance(exc, TimeoutError) else f"连接失败：{exc}"
            self.record(row, "retry", reason, None)
            return
        except aiosmtplib.SMTPException as exc:
            self._drop()
            self.record(row, "retry", f"SMTP 错误：{exc}", None)
            return
        results = dict.fromkeys(recipients, "250 accepted")
        results.update({address: _reply(reply) for address, reply in refused.items()})
        self.record(row, "sent", "", results)


async def _drain(
    worker: _Worker,
    queue: asyncio.Queue[OutboxMessage],
    still_leased: Callable[[OutboxMessage], bool],
    on_expired: Callable[[OutboxMessage], None],
) -> None:
    try:
        while not queue.empty():
            row = queue.get_nowait()
            if still_leased(row):
                await worker.send(row)
            else:
                on_expired(row)
    finally:
        await worker.close()


async def relay_once(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime | None = None,
    options: RelayOptions | None = None,
) -> RelayResult:
    """Deliver every row that is ready at `now` (default: the clock), batch by batch.

    Accepted rows are committed `options.mark_every` at a time (and at the end of each
    batch); other outcomes right after their send. A claimed row whose lease would run
    out before its send could finish is left alone (counted as lost) so that another relay
    taking it over cannot race this one. Returns the counts; never raises for SMTP problems
    (they become retries or dead letters).
    """
    options = options or RelayOptions()
    result = RelayResult()

    def moment() -> datetime:
        return now if now is not None else clock.now()

    accepted: list[outbox.SentRow] = []

    def mark_accepted() -> None:
        batch = accepted[:]
        accepted.clear()
        if not batch:
            return
        with transaction(sessions) as session:
            owned = outbox.mark_sent_many(session=session, rows=batch, now=moment())
        result.sent += len(owned)
        result.lost += len(batch) - len(owned)

    def record(
        row: OutboxMessage, outcome: str, error: str, results: dict[str, str] | None
    ) -> None:
        if outcome == "sent":
            accepted.append(outbox.SentRow(row.id, row.attempts, results or {}))
            if len(accepted) >= options.mark_every:
                mark_accepted()
            return
        at = moment()
        with transaction(sessions) as session:
            if outcome == "dead":
                owned = outbox.mark_dead(
                    session=session,
                    message_id=row.id,
                    attempt=row.attempts,
                    now=at,
                    error=error,
                    recipient_results=results,
                )
                status: str | None = "dead" if owned else None
            else:
                status = outbox.mark_retry(
                    session=session,
                    message_id=row.id,
                    attempt=row.attempts,
                    now=at,
                    error=error,
                    recipient_results=results,
                    policy=options.policy,
                    spends_attempt=outcome != "unreachable",
                )
        if status == "dead":
            result.dead += 1
            result.errors.append(f"{row.id}: {error}")
        elif status == "pending":
            result.retried += 1
            result.errors.append(f"{row.id}: {error}")
        else:
            result.lost += 1

    deadline = timedelta(seconds=options.send_deadline_seconds or settings.smtp_timeout_seconds * 2)

    def still_leased(row: OutboxMessage) -> bool:
        return row.lease_until is None or moment() + deadline < row.lease_until

    def expired(row: OutboxMessage) -> None:
        result.lost += 1
        result.errors.append(f"{row.id}: 租约将到期，留给下一轮投递")

    while True:
        with transaction(sessions) as session:
            rows = outbox.claim_messages(
                session=session, now=moment(), limit=options.batch_size, lease=options.lease
            )
        if not rows:
            return result
        result.claimed += len(rows)
        queue: asyncio.Queue[OutboxMessage] = asyncio.Queue()
        for row in rows:
            queue.put_nowait(row)
        workers = [
            _Worker(settings=settings, options=options, record=record)
            for _ in range(max(1, min(options.concurrency, len(rows))))
        ]
        try:
            await asyncio.gather(
                *(_drain(worker, queue, still_leased, expired) for worker in workers)
            )
        finally:
            mark_accepted()


async def relay_forever(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    stop: asyncio.Event,
    interval_seconds: float = 5.0,
    options: RelayOptions | None = None,
    on_result: Callable[[RelayResult], None] | None = None,
) -> None:
    """Run `relay_once` every `interval_seconds` until `stop` is set.

    A database that is briefly unreachable is logged and tried again next round.
    """
    while not stop.is_set():
        try:
            result = await relay_once(sessions=sessions, settings=settings, options=options)
        except OperationalError as exc:
            log.warning("outbox relay: database unavailable: %s", str(exc.orig).splitlines()[0])
        else:
            if on_result is not None and result.claimed:
                on_result(result)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
        except TimeoutError:
            continue
