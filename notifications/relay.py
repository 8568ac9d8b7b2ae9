"""The outbox relay: claims pending rows and delivers them over SMTP with aiosmtplib, and
chat rows (`OutboxMessage.channel`) to their group robots (`notifications.chat`).

Batches stream to a few workers: the next batch is claimed (on the relay's database
thread, which also commits; on PostgreSQL on a thread and connection of its own) while the
current one is sent, and each worker keeps one SMTP
connection open from batch to batch, reconnecting after any failure. A row is marked sent
only after the server's 250 for DATA. Outcomes are recorded by one group committer: every
outcome reported while the previous commit ran goes into the next transaction (one
executemany UPDATE for the accepted rows), on that database thread so the connections keep
sending meanwhile. A worker takes one of `RelayOptions.window` slots before each message
can reach the server, and the slot is freed once that row's outcome is committed, so at
any moment at most `window` rows are sent or being sent without their outcome on disk: a
crash re-sends at most those, once each and with the same Message-ID (`<row id@domain>`).
An email's slot is taken after the server's 354 to DATA, just before the message itself
is written (the server cannot accept a message before its content, and MAIL, RCPT and
DATA of the next message go out while earlier outcomes are being committed). `window=1`
sends one message at a time, each committed before the next. 4xx replies, disconnects
and timeouts are retried later; 5xx replies, unreadable attachments and addresses that
cannot be sent go to the dead letters.
No exception from building or sending one row stops the others or leaves it `sending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import aiosmtplib
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.db import transaction
from models.settings import Settings, SmtpSecurity
from models.vocabulary import Channel
from notifications import chat, outbox
from notifications.mime import PermanentMessageError, WireMail, build_email
from notifications.outbox import ClaimedMessage
from notifications.smtp import ContentWithheld, SendDeadline, send_wire_mail

log = logging.getLogger("duban.mail.relay")

TRANSIENT_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    TimeoutError,
    OSError,
)
NO_SMTPUTF8 = (
    "收件人或发件人地址的用户名含有非 ASCII 字符（如中文），需要邮件服务器支持 SMTPUTF8，"
    "而当前邮件服务器不支持；请在部门名录中改用 ASCII 地址，或换用支持 SMTPUTF8 的服务器"
)

Outcome = Literal["sent", "dead", "retry", "unreachable"]


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
    channels: dict[str, int] = field(default_factory=dict)
    """Rows sent per channel (`email`, `wecom`, `dingtalk`, `feishu`)."""


@dataclass(frozen=True)
class RelayOptions:
    """Batch size, parallel connections, the duplicate window (rows sent but not yet
    committed, at most), lease, per-send deadline and retry policy.

    `window` is 32 so that the eight connections keep sending while a claim holds the
    database thread (on SQLite, ~25 ms for 200 rows): with 16 they ran out of slots during
    every claim. A crash re-sends at most `window` messages (docs/email.md)."""

    batch_size: int = 200
    window: int = 32
    commit_interval_seconds: float = 0.02
    concurrency: int = 8
    lease: timedelta = timedelta(minutes=15)
    send_deadline_seconds: float | None = None
    policy: outbox.RetryPolicy = outbox.DEFAULT_POLICY
    tls_context: ssl.SSLContext | None = None
    chat_interval_seconds: float = 3.0


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


@dataclass(frozen=True)
class _Report:
    row: ClaimedMessage
    outcome: Outcome
    error: str
    results: dict[str, str] | None
    slot: bool = True
    """Whether the row holds a slot of the window (freed once the outcome is committed):
    an email that failed before its content was written holds none."""


def _bind_of(sessions: sessionmaker[Session]) -> Engine | Connection:
    """What `sessions` are bound to (an engine, or a test's connection)."""
    with sessions() as probe:
        return probe.get_bind()


class _DatabaseThread:
    """One thread and one database connection, opened on first use and kept for the run (a
    pool checkout and return per group commit cost about as much as its UPDATE)."""

    def __init__(self, sessions: sessionmaker[Session], name: str) -> None:
        self.sessions = sessions
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.connection: Connection | None = None
        self._own_sessions: sessionmaker[Session] | None = None

    def open(self) -> sessionmaker[Session]:
        """Sessions on the thread's own connection (when `sessions` is bound to an engine;
        else `sessions` itself). On the thread only."""
        if self._own_sessions is None:
            bind = _bind_of(self.sessions)
            if isinstance(bind, Engine):
                self.connection = bind.connect()
                self._own_sessions = sessionmaker(bind=self.connection, expire_on_commit=False)
            else:
                self._own_sessions = self.sessions
        return self._own_sessions

    def transaction(self) -> AbstractContextManager[Session]:
        """A transaction on the thread's connection. On the thread only."""
        return transaction(self.open())

    def _disconnect(self) -> None:
        connection, self.connection, self._own_sessions = self.connection, None, None
        if connection is not None:
            connection.close()

    async def run(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    async def stop(self) -> None:
        """Return the connection to the pool after any work still queued, and stop the
        thread; waits at most 5 s, never raises."""
        closing = self.executor.submit(self._disconnect)
        self.executor.shutdown(wait=False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(closing), timeout=5)


class _GroupCommit:
    """Commits the outcomes the workers report, many per transaction, off the event loop.

    `reserve()` takes one of `window` slots before a message can reach the server;
    `report()` hands over the outcome, whose slot (if it holds one) is freed once it is
    committed. `run()` commits until `close()`;
    a database error ends `run()` with that error.
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        moment: Callable[[], datetime],
        options: RelayOptions,
        result: RelayResult,
    ) -> None:
        self.sessions = sessions
        self.moment = moment
        self.policy = options.policy
        self.result = result
        self.slots = asyncio.Semaphore(max(1, options.window))
        self.group = max(1, options.window // 2)
        self.interval = options.commit_interval_seconds
        self.pending: list[_Report] = []
        self.wake = asyncio.Event()
        self.closed = False
        # The relay's database thread: commits, and on SQLite the claims too, take turns on
        # it (one SQLite writer, one malloc arena for the rows), off the event loop, on one
        # connection. On PostgreSQL the claims have a thread and connection of their own,
        # so a claim (tens of milliseconds) does not hold up the commits that free the
        # window's slots: a claim skips locked rows and the marks touch only claimed ones.
        self.database = _DatabaseThread(sessions, "duban-relay-db")
        self.claims = self.database
        bind = _bind_of(sessions)
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            self.claims = _DatabaseThread(sessions, "duban-relay-claims")

    def transaction(self) -> AbstractContextManager[Session]:
        """A transaction on the database thread's connection (see `_DatabaseThread`). Call
        on the database thread only."""
        return self.database.transaction()

    async def in_database_thread(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the relay's database thread."""
        return await self.database.run(work)

    async def disconnect(self) -> None:
        """Return the connections to the pool once the work queued on their threads is
        done, and stop the threads (waiting at most 5 s for each)."""
        for thread in dict.fromkeys((self.database, self.claims)):
            await thread.stop()

    async def reserve(self) -> None:
        """Wait for a free slot in the duplicate window."""
        await self.slots.acquire()

    def release(self) -> None:
        """Give back a slot that was reserved but not used for a send."""
        self.slots.release()

    def report(self, report: _Report) -> None:
        """Queue an outcome for the next group commit (waking the committer only for the
        first outcome of a group and once the group is full)."""
        self.pending.append(report)
        if len(self.pending) == 1 or len(self.pending) >= self.group:
            self.wake.set()

    def close(self) -> None:
        """Let `run()` return once everything reported is committed."""
        self.closed = True
        self.wake.set()

    async def _gather(self) -> None:
        """Wait until half the window has reported, `interval` has passed or the batch is done."""
        if self.closed or len(self.pending) >= self.group:
            return
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self.wake.wait()

    async def run(self) -> None:
        """Commit reported outcomes in groups until `close()` and nothing is left."""
        while True:
            if not self.pending:
                if self.closed:
                    return
                self.wake.clear()
                await self.wake.wait()
                continue
            await self._gather()
            batch, self.pending = self.pending, []
            statuses: list[str | None] = await self.in_database_thread(
                functools.partial(self._commit, batch)
            )
            for report, status in zip(batch, statuses, strict=True):
                self._count(report, status)
                if report.slot:
                    self.slots.release()

    def _commit(self, batch: list[_Report]) -> list[str | None]:
        at = self.moment()
        accepted = [
            outbox.SentRow(report.row.id, report.row.attempts, report.results or {})
            for report in batch
            if report.outcome == "sent"
        ]
        self.database.open()
        connection = self.database.connection
        if connection is not None and len(accepted) == len(batch):
            # Every outcome a 250 (the usual group): one UPDATE on the bare connection, in
            # a transaction of its own, without an ORM session around it.
            with connection.begin():
                owned = outbox.mark_sent_many(session=connection, rows=accepted, now=at)
            return ["sent" if report.row.id in owned else None for report in batch]
        with self.transaction() as session:
            owned = outbox.mark_sent_many(session=session, rows=accepted, now=at)
            return [self._apply(session, report, at, owned) for report in batch]

    def _apply(
        self, session: Session, report: _Report, at: datetime, owned: set[str]
    ) -> str | None:
        row = report.row
        if report.outcome == "sent":
            return "sent" if row.id in owned else None
        if report.outcome == "dead":
            dead = outbox.mark_dead(
                session=session,
                message_id=row.id,
                attempt=row.attempts,
                now=at,
                error=report.error,
                recipient_results=report.results,
            )
            return "dead" if dead else None
        return outbox.mark_retry(
            session=session,
            message_id=row.id,
            attempt=row.attempts,
            now=at,
            error=report.error,
            recipient_results=report.results,
            policy=self.policy,
            spends_attempt=report.outcome != "unreachable",
        )

    def _count(self, report: _Report, status: str | None) -> None:
        if status == "sent":
            self.result.sent += 1
            channel = str(report.row.channel)
            self.result.channels[channel] = self.result.channels.get(channel, 0) + 1
            return
        if status == "dead":
            self.result.dead += 1
        elif status == "pending":
            self.result.retried += 1
        else:
            self.result.lost += 1
            return
        self.result.errors.append(f"{report.row.id}: {report.error}")


class _Worker:
    """One SMTP connection sending its share of a batch, one row at a time."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: RelayOptions,
        commit: _GroupCommit,
        still_leased: Callable[[ClaimedMessage], bool],
    ) -> None:
        self.settings = settings
        self.options = options
        self.commit = commit
        self.still_leased = still_leased
        self.smtp: aiosmtplib.SMTP | None = None
        self.slot = False
        """Whether the row being sent holds a slot of the window."""

    async def _connection(self) -> aiosmtplib.SMTP:
        if self.smtp is None or not self.smtp.is_connected:
            smtp = smtp_client(self.settings, self.options.tls_context)
            await smtp.connect()
            self.smtp = smtp
        if self.smtp.is_ehlo_or_helo_needed:
            await self.smtp.ehlo()
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

    async def send(self, row: ClaimedMessage) -> bool:
        """Deliver `row` and report the outcome (sent, retry or dead); never raises for it.

        Returns False, reporting nothing and holding no slot, if the row's lease would run
        out before the send could finish once a slot was free (nothing of it was written)."""
        self.slot = False

        def report(outcome: Outcome, error: str, results: dict[str, str] | None = None) -> None:
            self.commit.report(_Report(row, outcome, error, results, self.slot))

        try:
            mail = build_email(row, self.settings)
        except PermanentMessageError as exc:
            report("dead", str(exc))
            return True
        except Exception as exc:
            log.exception("outbox relay: message %s cannot be built", row.id)
            report("dead", f"邮件无法生成：{type(exc).__name__}: {exc}")
            return True
        try:
            delivery = await self._deliver(mail, row)
        except Exception as exc:
            log.exception("outbox relay: unexpected error sending %s", row.id)
            self._drop()
            delivery = ("retry", f"投递时出现意外错误：{type(exc).__name__}: {exc}", None)
        if delivery is None:
            if self.slot:
                self.commit.release()
                self.slot = False
            return False
        report(*delivery)
        return True

    async def _deliver(
        self, mail: WireMail, row: ClaimedMessage
    ) -> tuple[Outcome, str, dict[str, str] | None] | None:
        """Send `mail` (the message of `row`): its outcome, error and per-recipient replies,
        or None if its lease ran out while it waited for a slot (nothing was written)."""
        deadline = SendDeadline(
            per_reply=self.settings.smtp_timeout_seconds,
            overall=self.options.send_deadline_seconds or self.settings.smtp_timeout_seconds * 2,
        )

        async def take_slot() -> bool:
            """After the 354: wait for a slot of the window (neither limit runs meanwhile),
            then check the lease again, as before a send."""
            deadline.hold()
            await self.commit.reserve()
            self.slot = True
            deadline.resume()
            return self.still_leased(row)

        try:
            async with deadline:
                try:
                    smtp = await self._connection()
                except (aiosmtplib.SMTPException, OSError) as exc:
                    raise _ConnectFailed(str(exc) or type(exc).__name__) from exc
                if mail.smtputf8 and not smtp.supports_extension("smtputf8"):
                    return "dead", NO_SMTPUTF8, None
                _quick_ack(smtp)
                refused = await send_wire_mail(
                    smtp, mail, deadline=deadline, before_content=take_slot
                )
        except ContentWithheld:
            self._drop()
            return None
        except _ConnectFailed as exc:
            self._drop()
            return "unreachable", f"连接或登录失败：{exc}", None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            results = {error.recipient: _reply(error) for error in exc.recipients}
            transient = any(error.code < 500 for error in exc.recipients)
            self._drop()
            return ("retry" if transient else "dead"), "全部收件人被拒绝", results
        except aiosmtplib.SMTPResponseException as exc:
            self._drop()
            return ("dead" if exc.code >= 500 else "retry"), _reply(exc), None
        except TRANSIENT_ERRORS as exc:
            self._drop()
            reason = "发送超时" if isinstance(exc, TimeoutError) else f"连接失败：{exc}"
            return "retry", reason, None
        except aiosmtplib.SMTPException as exc:
            self._drop()
            return "retry", f"SMTP 错误：{exc}", None
        results = dict.fromkeys(mail.recipients, "250 accepted")
        results.update({address: _reply(reply) for address, reply in refused.items()})
        return "sent", "", results


async def _drain(
    worker: _Worker,
    queue: asyncio.Queue[ClaimedMessage | None],
    still_leased: Callable[[ClaimedMessage], bool],
    on_expired: Callable[[ClaimedMessage], None],
    on_take: Callable[[], None],
) -> None:
    """Send rows from `queue` over `worker`'s connection until a `None` (no more rows)."""
    try:
        while (row := await queue.get()) is not None:
            on_take()
            if not still_leased(row) or not await worker.send(row):
                on_expired(row)
        queue.put_nowait(None)  # for the next worker
    finally:
        await worker.close()


async def _drain_chat(
    rows: list[ClaimedMessage],
    commit: _GroupCommit,
    secrets: Mapping[str, str],
    interval: float,
    still_leased: Callable[[ClaimedMessage], bool],
    on_expired: Callable[[ClaimedMessage], None],
) -> None:
    """Post chat rows one robot at a time (each webhook's rows in order, robots in
    parallel) and report each outcome like an email's."""
    by_robot: dict[str, list[ClaimedMessage]] = {}
    for row in rows:
        by_robot.setdefault(str(row.to_addrs[0]) if row.to_addrs else "", []).append(row)
    plugins: dict[str, Any] = {}

    async def robot(queue: list[ClaimedMessage]) -> None:
        for row in queue:
            await commit.reserve()
            if not still_leased(row):
                commit.release()
                on_expired(row)
                continue
            try:
                sent = await chat.send_chat(row, plugins, secrets, interval)
            except Exception as exc:
                log.exception("outbox relay: unexpected error posting %s", row.id)
                sent = chat.ChatSendOutcome(
                    "retry", f"发送时出现意外错误：{type(exc).__name__}", {}
                )
            commit.report(_Report(row, sent.outcome, sent.error, sent.results))

    await asyncio.gather(*(robot(queue) for queue in by_robot.values()))


@dataclass
class _Feed:
    """Claims batches (on `_GroupCommit.claims`) and feeds their email rows to the
    workers' queue, claiming the next one while the current one is being sent, once the
    queue is down to a quarter of a batch (so at most 1.25 batches wait in memory); chat
    rows go to a `_drain_chat` per batch. Puts `None` when nothing is left."""

    moment: Callable[[], datetime]
    options: RelayOptions
    result: RelayResult
    queue: asyncio.Queue[ClaimedMessage | None]
    chat_rows: Callable[[list[ClaimedMessage], Mapping[str, str]], None]
    commit: _GroupCommit
    low_water: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: outbox.ClaimCursor = field(default_factory=outbox.ClaimCursor)

    def taken(self) -> None:
        """A worker took a row: wake the feed once the queue is low."""
        if self.queue.qsize() <= self._low():
            self.low_water.set()

    def _low(self) -> int:
        return max(1, self.options.batch_size // 4)

    def _claim(self) -> tuple[list[ClaimedMessage], dict[str, str]]:
        with self.commit.claims.transaction() as session:
            rows = outbox.claim_messages(
                session=session,
                now=self.moment(),
                limit=self.options.batch_size,
                lease=self.options.lease,
                cursor=self.cursor,
                plain=True,
            )
            chatting = any(row.channel != Channel.EMAIL for row in rows)
            return rows, chat.robot_secrets(session=session) if chatting else {}

    async def run(self) -> None:
        """Claim and feed batches until a claim finds nothing."""
        try:
            while True:
                rows, secrets = await self.commit.claims.run(self._claim)
                if not rows:
                    return
                self.result.claimed += len(rows)
                chats = [row for row in rows if row.channel != Channel.EMAIL]
                for row in rows:
                    if row.channel == Channel.EMAIL:
                        self.queue.put_nowait(row)
                del rows, row  # sent rows are not kept while the feed waits
                if chats:
                    self.chat_rows(chats, secrets)
                    del chats
                while self.queue.qsize() > self._low():
                    self.low_water.clear()
                    await self.low_water.wait()
        finally:
            self.queue.put_nowait(None)


async def _deliver_stream(
    *,
    settings: Settings,
    options: RelayOptions,
    commit: _GroupCommit,
    moment: Callable[[], datetime],
    result: RelayResult,
    still_leased: Callable[[ClaimedMessage], bool],
    on_expired: Callable[[ClaimedMessage], None],
) -> None:
    """Claim batch after batch and send them over up to `options.concurrency`
    connections, kept open from batch to batch (chat rows to their robots, `_drain_chat`),
    while `commit` records the outcomes; returns once every outcome is committed. A
    database error stops the sends and is raised (the rows not yet committed stay `sending`
    until their lease runs out)."""
    queue: asyncio.Queue[ClaimedMessage | None] = asyncio.Queue()
    chat_senders: list[asyncio.Future[None]] = []

    def chat_rows(rows: list[ClaimedMessage], robot_secrets: Mapping[str, str]) -> None:
        chat_senders.append(
            asyncio.ensure_future(
                _drain_chat(
                    rows,
                    commit,
                    robot_secrets,
                    options.chat_interval_seconds,
                    still_leased,
                    on_expired,
                )
            )
        )

    feed = _Feed(
        moment=moment,
        options=options,
        result=result,
        queue=queue,
        chat_rows=chat_rows,
        commit=commit,
    )
    # A worker connects on its first row, so one that gets none opens no connection.
    workers = [
        _Worker(settings=settings, options=options, commit=commit, still_leased=still_leased)
        for _ in range(max(1, options.concurrency))
    ]
    committer: asyncio.Future[None] = asyncio.create_task(commit.run())

    async def send_all() -> None:
        feeding = asyncio.ensure_future(feed.run())
        drains = [_drain(worker, queue, still_leased, on_expired, feed.taken) for worker in workers]
        try:
            await asyncio.gather(feeding, *drains)
            await asyncio.gather(*chat_senders)
        finally:
            for task in (feeding, *chat_senders):
                task.cancel()

    senders: asyncio.Future[None] = asyncio.ensure_future(send_all())
    try:
        either: set[asyncio.Future[Any]] = {committer, senders}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if committer.done():
            senders.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await senders
            committer.result()
        await senders
    finally:
        commit.close()
        if not committer.done():
            await committer
        await commit.disconnect()


async def relay_once(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime | None = None,
    options: RelayOptions | None = None,
) -> RelayResult:
    """Deliver every row that is ready at `now` (default: the clock), batch by batch.

    Batches stream: the next is claimed while the current one is sent, over connections
    kept open from batch to batch. Outcomes are committed in group commits, at most
    `options.window` rows sent ahead of their commit. A claimed row whose lease would run
    out before its send could finish is left alone (counted as lost) so that another relay
    taking it over cannot race this one. Returns the counts; never raises for SMTP problems
    or a bad row (they become retries or dead letters); raises the database's error if
    outcomes cannot be committed.
    """
    options = options or RelayOptions()
    result = RelayResult()

    def moment() -> datetime:
        return now if now is not None else clock.now()

    deadline = timedelta(seconds=options.send_deadline_seconds or settings.smtp_timeout_seconds * 2)

    def still_leased(row: ClaimedMessage) -> bool:
        return row.lease_until is None or moment() + deadline < row.lease_until

    def expired(row: ClaimedMessage) -> None:
        result.lost += 1
        result.errors.append(f"{row.id}: 租约将到期，留给下一轮投递")

    commit = _GroupCommit(sessions=sessions, moment=moment, options=options, result=result)
    await _deliver_stream(
        settings=settings,
        options=options,
        commit=commit,
        moment=moment,
        result=result,
        still_leased=still_leased,
        on_expired=expired,
    )
    return result


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
