"""`send_wire_mail` puts the same bytes on the wire as `aiosmtplib.SMTP.sendmail` and fails
the same way, checked through a recording proxy in front of a real aiosmtpd server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications import outbox
from notifications.mime import WireMail, build_email
from notifications.outbox import enqueue_message
from notifications.relay import RelayOptions, RelayResult, _GroupCommit, _Worker, relay_once
from notifications.smtp import ContentWithheld, SendDeadline, send_wire_mail
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedHandler, ScriptedServer

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
SETTINGS = Settings(mail_from_address="duban@example.org", mail_from_name="督办系统")


class MailRefusingHandler(ScriptedHandler):
    """A `ScriptedHandler` that refuses MAIL FROM the addresses in `mail_replies`."""

    mail_replies: dict[str, str]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        reply = self.mail_replies.get(address)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


class SlowRcptHandler(ScriptedHandler):
    """A `ScriptedHandler` that answers RCPT TO `slow@example.org` after a second (without
    holding up the server's other sessions)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == "slow@example.org":
            await asyncio.sleep(1.0)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@dataclass
class RecordingProxy:
    """Forwards loopback connections to `port` and records what each client sent."""

    port: int
    sent: list[bytearray] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray | None
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                if log is not None:
                    log.extend(chunk)
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log = bytearray()
        self.sent.append(log)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, log),
            self._pipe(upstream_reader, writer, None),
        )

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


@dataclass
class Outcome:
    """What one way of sending returned or raised, and the bytes the client sent."""

    returned: dict[str, tuple[int, str]] | None
    raised: tuple[str, Any] | None
    wire: bytes


def _error(exc: Exception) -> tuple[str, Any]:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return type(exc).__name__, [(e.code, e.message, e.recipient) for e in exc.recipients]
    return type(exc).__name__, exc.args


Send = Callable[[aiosmtplib.SMTP, WireMail], Awaitable[dict[str, aiosmtplib.SMTPResponse]]]


async def _with_sendmail(smtp: aiosmtplib.SMTP, mail: WireMail) -> dict[str, Any]:
    refused, _ = await smtp.sendmail(
        mail.sender,
        mail.recipients,
        mail.data,
        mail_options=["SMTPUTF8"] if mail.smtputf8 else None,
    )
    return refused


async def _send(proxy: RecordingProxy, port: int, mail: WireMail, send: Send) -> Outcome:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=5)
    smtp.local_hostname = "relay.test"
    await smtp.connect()
    await smtp.ehlo()
    returned: dict[str, tuple[int, str]] | None = None
    raised = None
    try:
        refused = await send(smtp, mail)
        returned = {address: (reply.code, reply.message) for address, reply in refused.items()}
    except (aiosmtplib.SMTPException, ValueError) as exc:
        raised = _error(exc)
    if smtp.is_connected:
        await smtp.quit()
    await asyncio.sleep(0.05)  # let the proxy forward the last bytes
    return Outcome(returned, raised, bytes(proxy.sent[-1]))


def _handler() -> MailRefusingHandler:
    handler = MailRefusingHandler()
    handler.mail_replies = {"blocked@example.org": "553 5.7.1 sender refused"}
    handler.rcpt_replies = {
        "gone@example.org": "550 5.1.1 no such user",
        "busy@example.org": "451 4.3.0 try later",
    }
    handler.data_replies = {"spam@example.org": "554 5.7.1 rejected as spam"}
    return handler


def _row(
    tmp_path: Path, *, to: list[str], cc: list[str] | None = None, attach: bool = False
) -> OutboxMessage:
    attachments = []
    if attach:
        path = tmp_path / "督办单.docx"
        path.write_bytes(b"PK\x03\x04 order\n.line\r\n" * 40)
        attachments = [{"path": str(path), "filename": path.name, "mime": "application/zip"}]
    return OutboxMessage(
        id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        key="wire-test",
        kind="reminder",
        to_addrs=to,
        cc_addrs=cc or [],
        subject="【催办】第4项 关于报送2021年第二季度工作进展的提醒（请于7月10日前完成）",
        text_body="请尽快报送。\n.\n.. 以点开头的行\r\n单独的\r回车\n",
        html_body="<p>请尽快报送。</p>\n.\n",
        attachments=attachments,
        created_at=NOW,
    )


def _cases(tmp_path: Path) -> dict[str, WireMail]:
    built = {
        "plain": _row(tmp_path, to=["dept@example.org"]),
        "cc and attachment": _row(
            tmp_path, to=["a@example.org", "b@例子.中国"], cc=["leader@example.org"], attach=True
        ),
        "smtputf8": _row(tmp_path, to=["学会部@example.org"]),
        "one recipient refused": _row(tmp_path, to=["gone@example.org", "dept@example.org"]),
        "every recipient refused": _row(tmp_path, to=["gone@example.org", "busy@example.org"]),
        "data refused": _row(tmp_path, to=["spam@example.org"]),
    }
    cases = {name: build_email(row, SETTINGS) for name, row in built.items()}
    plain = cases["plain"]
    cases["sender refused"] = WireMail("blocked@example.org", plain.recipients, plain.data, False)
    cases["bytes not in wire form"] = WireMail(
        plain.sender,
        plain.recipients,
        b"Subject: x\n\n.leading dot\nlone LF\rlone CR\r\n..two dots\nno final newline",
        False,
    )
    return cases


async def test_same_wire_bytes_and_outcome_as_sendmail(tmp_path: Path) -> None:
    with ScriptedServer(_handler(), smtputf8=True) as server:
        proxy = RecordingProxy(server.port)
        port = await proxy.start()
        try:
            for name, mail in _cases(tmp_path).items():
                expected = await _send(proxy, port, mail, _with_sendmail)
                got = await _send(proxy, port, mail, send_wire_mail)
                assert got == expected, name
        finally:
            assert proxy.server is not None
            proxy.server.close()
    assert len(server.handler.deliveries) == 2 * 5  # each accepted case, once per way


async def test_a_reply_slower_than_the_smtp_timeout_times_out() -> None:
    """Inside a `SendDeadline` each reply has the SMTP timeout, not only the whole send."""
    mail = WireMail("duban@example.org", ["slow@example.org"], b"Subject: x\r\n\r\nhi\r\n", False)
    for deadline in (SendDeadline(per_reply=0.3, overall=30), None):
        handler = ScriptedHandler()
        handler.hooks["slow@example.org"] = lambda: time.sleep(1.0)
        with ScriptedServer(handler) as server:
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, timeout=0.3)
            await smtp.connect()
            await smtp.ehlo()
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                if deadline is None:
                    await send_wire_mail(smtp, mail)  # aiosmtplib's SMTPReadTimeoutError
                else:
                    async with deadline:
                        await send_wire_mail(smtp, mail, deadline=deadline)
            assert time.monotonic() - started < 0.9
            smtp.close()


async def test_before_content_runs_after_the_354_and_can_withhold_the_message() -> None:
    """The relay takes its window slot in `before_content`: after MAIL, RCPT and DATA have
    been answered, before any byte of the message; declining leaves nothing delivered."""
    mail = WireMail("duban@example.org", ["dept@example.org"], b"Subject: x\r\n\r\nhi\r\n", False)
    handler = ScriptedHandler()
    rcpts: list[str] = []
    handler.hooks["dept@example.org"] = lambda: rcpts.append("dept@example.org")
    seen: list[tuple[int, int]] = []  # (recipients the server had, deliveries) at the call
    with ScriptedServer(handler) as server:
        for send in (False, True):
            smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, timeout=5)
            await smtp.connect()
            await smtp.ehlo()

            async def before_content(decision: bool = send) -> bool:
                seen.append((len(rcpts), len(handler.deliveries)))
                return decision

            if send:
                assert await send_wire_mail(smtp, mail, before_content=before_content) == {}
                await smtp.quit()
            else:
                with pytest.raises(ContentWithheld):
                    await send_wire_mail(smtp, mail, before_content=before_content)
                smtp.close()
    assert seen == [(1, 0), (2, 0)]
    assert len(handler.deliveries) == 1


async def test_a_row_whose_lease_ran_out_while_waiting_for_a_slot_is_not_sent(
    tmp_path: Path,
) -> None:
    """The lease is checked again once a slot is free: if the send could no longer finish
    in time, the message is withheld after the 354 (the connection is closed), nothing is
    reported and the slot is given back."""
    options = RelayOptions(window=1)
    commit = _GroupCommit(
        sessions=make_sessionmaker(make_engine("sqlite://")),
        moment=lambda: NOW,
        options=options,
        result=RelayResult(),
    )
    with ScriptedServer() as server:
        worker = _Worker(
            settings=Settings(smtp_port=server.port, smtp_timeout_seconds=5),
            options=options,
            commit=commit,
            still_leased=lambda _row: False,
        )
        sent = await worker.send(_row(tmp_path, to=["dept@example.org"]))
        await worker.close()
        await commit.disconnect()
    assert sent is False
    assert server.handler.deliveries == [] and commit.pending == []
    assert worker.smtp is None and not worker.slot
    assert not commit.slots.locked()


async def test_relay_retries_a_row_whose_reply_outlasts_the_smtp_timeout(
    relay_db: tuple[str, Engine],
) -> None:
    clear_outbox(relay_db[1])
    sessions = make_sessionmaker(relay_db[1])
    with transaction(sessions) as session:
        for key, address in (("slow", "slow@example.org"), ("fine", "fine@example.org")):
            enqueue_message(
                session=session,
                key=key,
                kind="request",
                to=[address],
                subject="【报送提醒】第4项",
                text_body="请报送。",
                now=NOW,
            )
    with ScriptedServer(SlowRcptHandler()) as server:
        settings = Settings(smtp_port=server.port, smtp_timeout_seconds=0.4)
        options = RelayOptions(concurrency=1, send_deadline_seconds=30)
        started = time.monotonic()
        result = await relay_once(sessions=sessions, settings=settings, now=NOW, options=options)
        elapsed = time.monotonic() - started
    with sessions() as session:
        rows = {row.key: row for row in session.scalars(select(OutboxMessage))}
    assert (result.sent, result.retried) == (1, 1)
    assert (rows["slow"].status, rows["slow"].last_error) == ("pending", "发送超时")
    assert rows["fine"].status == "sent"
    assert elapsed < 10


def _enqueue_requests(sessions: sessionmaker[Session], prefix: str, count: int) -> None:
    """`count` pending requests keyed `prefix-n`, one department each."""
    with transaction(sessions) as session:
        for n in range(count):
            enqueue_message(
                session=session,
                key=f"{prefix}-{n}",
                kind="request",
                to=[f"dept{n}@example.org"],
                subject="【报送提醒】第4项",
                text_body="请报送。",
                now=NOW,
            )


async def test_relay_gives_its_database_connection_back(relay_db: tuple[str, Engine]) -> None:
    """Claims and group commits keep their connection (on PostgreSQL one each) for the run
    and return it at the end."""
    clear_outbox(relay_db[1])
    sessions = make_sessionmaker(relay_db[1])
    _enqueue_requests(sessions, "pool", 12)
    with ScriptedServer() as server:
        settings = Settings(smtp_port=server.port, smtp_timeout_seconds=5)
        options = RelayOptions(batch_size=5, concurrency=2, window=4)
        result = await relay_once(sessions=sessions, settings=settings, now=NOW, options=options)
    pool = relay_db[1].pool
    assert (result.claimed, result.sent) == (12, 12)
    assert getattr(pool, "checkedout", lambda: 0)() == 0


async def test_on_postgresql_claims_go_on_while_a_commit_is_held_up(
    relay_db: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the claims have their own thread and connection: the next batch is
    claimed while the group commit of the first one is still running (on SQLite, one
    writer, claims and commits take turns on one thread)."""
    engine = relay_db[1]
    clear_outbox(engine)
    sessions = make_sessionmaker(engine)
    probe = _GroupCommit(
        sessions=sessions, moment=lambda: NOW, options=RelayOptions(), result=RelayResult()
    )
    await probe.disconnect()
    if engine.dialect.name != "postgresql":
        assert probe.claims is probe.database
        return
    assert probe.claims is not probe.database
    _enqueue_requests(sessions, "held", 6)
    claims: list[int] = []
    second_claim = threading.Event()
    held_until_second_claim: list[bool] = []
    claim, mark = outbox.claim_messages, outbox.mark_sent_many

    def counting_claim(**kwargs: Any) -> list[OutboxMessage]:
        rows = claim(**kwargs)
        claims.append(len(rows))
        if len(claims) == 2:
            second_claim.set()
        return rows

    def held_mark(**kwargs: Any) -> set[str]:
        if not held_until_second_claim:
            held_until_second_claim.append(second_claim.wait(timeout=10))
        return mark(**kwargs)

    monkeypatch.setattr(outbox, "claim_messages", counting_claim)
    monkeypatch.setattr(outbox, "mark_sent_many", held_mark)
    with ScriptedServer() as server:
        settings = Settings(smtp_port=server.port, smtp_timeout_seconds=5)
        options = RelayOptions(batch_size=3, concurrency=1, window=2)
        result = await relay_once(sessions=sessions, settings=settings, now=NOW, options=options)
    assert held_until_second_claim == [True]
    assert (result.claimed, result.sent) == (6, 6)
    assert claims[:2] == [3, 3]
