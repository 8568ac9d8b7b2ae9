"""The outbox relay against real SMTP servers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import RetryPolicy, claim_messages, enqueue_message, requeue_messages
from notifications.relay import RelayOptions, RelayResult, relay_forever, relay_once
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedHandler, ScriptedServer

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


@pytest.fixture
def sessions(relay_db: tuple[str, Engine]) -> sessionmaker[Session]:
    clear_outbox(relay_db[1])
    return make_sessionmaker(relay_db[1])


def settings_for(server: ScriptedServer) -> Settings:
    return Settings(
        smtp_port=server.port, smtp_timeout_seconds=5, mail_from_address="duban@example.org"
    )


def enqueue(
    sessions: sessionmaker[Session],
    to: list[str],
    *,
    key: str,
    cc: list[str] | None = None,
    attachments: list[dict[str, str]] | None = None,
) -> str:
    with transaction(sessions) as session:
        row = enqueue_message(
            session=session,
            key=key,
            kind="reminder",
            to=to,
            cc=cc or [],
            subject=f"【催办】第4项 {key}",
            text_body="请尽快报送。\n",
            html_body="<p>请尽快报送。</p>",
            now=NOW,
            attachments=attachments or [],
        )
        return row.id


def rows(sessions: sessionmaker[Session]) -> dict[str, OutboxMessage]:
    with sessions() as session:
        return {row.key: row for row in session.scalars(select(OutboxMessage))}


async def test_delivers_multipart_with_message_id_and_attachment(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    report = tmp_path / "2021Q2-督办通报.docx"
    report.write_bytes(b"PK\x03\x04 report")
    with ScriptedServer() as server:
        first = enqueue(
            sessions,
            ["a@example.org"],
            key="one",
            cc=["leader@example.org"],
            attachments=[{"path": str(report), "filename": report.name, "mime": "application/zip"}],
        )
        enqueue(sessions, ["b@example.org"], key="two")
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        handler = server.handler
    assert (result.claimed, result.sent, result.retried, result.dead) == (2, 2, 0, 0)
    assert handler.connections <= 2
    delivered = {str(d.message["Message-ID"]): d for d in handler.deliveries}
    one = delivered[f"<{first}@example.org>"]
    assert one.rcpt_tos == ["a@example.org", "leader@example.org"]
    assert str(one.message["Subject"]) == "【催办】第4项 one"
    assert one.message["X-Duban-Kind"] == "reminder"
    assert one.message.get_body(("plain",)).get_content().strip() == "请尽快报送。"  # type: ignore[union-attr]
    assert "请尽快报送" in one.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    [attachment] = list(one.message.iter_attachments())
    assert attachment.get_filename() == report.name
    assert attachment.get_content() == b"PK\x03\x04 report"
    stored = rows(sessions)
    assert stored["one"].status == "sent" and stored["one"].sent_at == NOW
    assert stored["one"].recipient_results["leader@example.org"].startswith("250")


async def test_scripted_replies_retry_or_dead_letter(sessions: sessionmaker[Session]) -> None:
    handler = ScriptedHandler(
        rcpt_replies={
            "nouser@example.org": "550 5.1.1 No such user",
            "busy@example.org": "450 4.2.1 Mailbox busy",
        },
        data_replies={
            "r421@example.org": "421 4.3.2 Service shutting down",
            "r450@example.org": "450 4.2.0 Try again later",
            "r550@example.org": "550 5.7.1 Rejected by policy",
            "drop@example.org": "drop",
        },
    )
    for address in ("ok", "r421", "r450", "r550", "drop"):
        enqueue(sessions, [f"{address}@example.org"], key=address)
    enqueue(sessions, ["ok2@example.org", "nouser@example.org"], key="partial")
    enqueue(sessions, ["nouser@example.org"], key="all-refused")
    enqueue(sessions, ["busy@example.org"], key="all-busy")
    with ScriptedServer(handler) as server:
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
    stored = rows(sessions)
    assert {key: row.status for key, row in stored.items()} == {
        "ok": "sent",
        "partial": "sent",
        "r421": "pending",
        "r450": "pending",
        "drop": "pending",
        "all-busy": "pending",
        "r550": "dead",
        "all-refused": "dead",
    }
    assert (result.sent, result.retried, result.dead) == (2, 4, 2)
    assert stored["r550"].last_error == "550 5.7.1 Rejected by policy"
    assert stored["partial"].recipient_results == {
        "ok2@example.org": "250 accepted",
        "nouser@example.org": "550 5.1.1 No such user",
    }
    assert stored["all-refused"].recipient_results["nouser@example.org"].startswith("550")
    assert "450" in stored["r450"].last_error
    for key in ("r421", "r450", "drop", "all-busy"):
        wait = stored[key].next_attempt_at - NOW
        assert timedelta(seconds=30) <= wait <= timedelta(seconds=60), key
        assert stored[key].attempts == 1
    assert sorted(d.rcpt_tos[0] for d in handler.deliveries) == [
        "ok2@example.org",
        "ok@example.org",
    ]

    handler.data_replies.clear()
    handler.rcpt_replies.clear()
    with ScriptedServer(handler) as server:
        early = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        later = await relay_once(
            sessions=sessions, settings=settings_for(server), now=NOW + timedelta(hours=1)
        )
    assert early.claimed == 0
    assert (later.claimed, later.sent) == (4, 4)
    with transaction(sessions) as session:
        assert requeue_messages(session=session, now=NOW, dead=True) == 2
    assert rows(sessions)["r550"].status == "pending"


async def test_unreachable_server_retries_later(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, ["a@example.org"], key="a")
    with ScriptedServer() as server:
        settings = settings_for(server)
    result = await relay_once(sessions=sessions, settings=settings, now=NOW)
    assert (result.claimed, result.retried) == (1, 1)
    assert "连接或登录失败" in rows(sessions)["a"].last_error


async def test_wrong_password_is_retried_not_dead(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, ["a@example.org"], key="a")
    enqueue(sessions, ["b@example.org"], key="b")
    with ScriptedServer(auth=True) as server:
        settings = settings_for(server).model_copy(
            update={"smtp_user": "duban", "smtp_password": SecretStr("wrong")}
        )
        result = await relay_once(sessions=sessions, settings=settings, now=NOW)
        assert server.handler.deliveries == []
    assert (result.claimed, result.retried, result.dead) == (2, 2, 0)
    assert "535" in rows(sessions)["a"].last_error


async def test_expired_lease_is_picked_up_again(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, ["a@example.org"], key="a")
    with transaction(sessions) as session:
        [claimed] = claim_messages(session=session, now=NOW, limit=10, lease=timedelta(minutes=15))
    assert claimed.status == "sending" and claimed.attempts == 1
    with ScriptedServer() as server:
        settings = settings_for(server)
        during = await relay_once(
            sessions=sessions, settings=settings, now=NOW + timedelta(minutes=14)
        )
        after = await relay_once(
            sessions=sessions, settings=settings, now=NOW + timedelta(minutes=16)
        )
        delivered = server.handler.message_ids()
    assert during.claimed == 0
    assert (after.claimed, after.sent) == (1, 1)
    assert delivered == {f"<{claimed.id}@example.org>": 1}
    assert rows(sessions)["a"].attempts == 2


def test_two_relays_on_100_rows_send_each_message_once(sessions: sessionmaker[Session]) -> None:
    ids = {enqueue(sessions, [f"u{n}@example.org"], key=f"k{n}") for n in range(100)}
    with ScriptedServer() as server:
        settings = settings_for(server)
        options = RelayOptions(batch_size=7, concurrency=2)
        results = []

        def run() -> None:
            results.append(
                asyncio.run(
                    relay_once(sessions=sessions, settings=settings, now=NOW, options=options)
                )
            )

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        delivered = server.handler.message_ids()
    assert len(results) == 2
    assert sum(r.sent for r in results) == 100 and all(r.sent > 0 for r in results)
    assert delivered == {f"<{message_id}@example.org>": 1 for message_id in ids}
    assert {row.status for row in rows(sessions).values()} == {"sent"}


async def test_relay_forever_delivers_until_stopped(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, ["a@example.org"], key="loop")
    results: list[RelayResult] = []
    stop = asyncio.Event()

    def seen(result: RelayResult) -> None:
        results.append(result)
        stop.set()

    with ScriptedServer() as server:
        await asyncio.wait_for(
            relay_forever(
                sessions=sessions,
                settings=settings_for(server),
                stop=stop,
                interval_seconds=0.05,
                on_result=seen,
            ),
            timeout=30,
        )
    assert [r.sent for r in results] == [1]
    assert rows(sessions)["loop"].status == "sent"


async def test_row_whose_lease_would_expire_mid_send_is_left_for_later(
    sessions: sessionmaker[Session],
) -> None:
    enqueue(sessions, ["a@example.org"], key="short")
    short = RelayOptions(lease=timedelta(seconds=5), send_deadline_seconds=10)
    with ScriptedServer() as server:
        settings = settings_for(server)
        first = await relay_once(sessions=sessions, settings=settings, now=NOW, options=short)
        assert rows(sessions)["short"].status == "sending"
        second = await relay_once(
            sessions=sessions, settings=settings, now=NOW + timedelta(seconds=6)
        )
        delivered = server.handler.message_ids()
    assert (first.claimed, first.lost, first.sent) == (1, 1, 0)
    assert (second.claimed, second.sent) == (1, 1)
    assert sum(delivered.values()) == 1


async def test_long_outage_never_dead_letters(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, ["a@example.org"], key="outage")
    with ScriptedServer() as server:
        settings = settings_for(server)
    options = RelayOptions(policy=RetryPolicy(max_attempts=2))
    moment = NOW
    for _ in range(5):
        await relay_once(sessions=sessions, settings=settings, now=moment, options=options)
        moment += timedelta(hours=2)
    row = rows(sessions)["outage"]
    assert (row.status, row.attempts) == ("pending", 5)
    assert row.next_attempt_at - (moment - timedelta(hours=2)) <= timedelta(hours=1)


async def test_batches_stream_over_connections_kept_open(sessions: sessionmaker[Session]) -> None:
    """Batches of 5 over 2 connections: the next batch is claimed while one is being sent,
    the connections stay open from batch to batch, and each message goes once."""
    ids = {enqueue(sessions, [f"s{n}@example.org"], key=f"s{n}") for n in range(23)}
    with ScriptedServer() as server:
        result = await relay_once(
            sessions=sessions,
            settings=settings_for(server),
            now=NOW,
            options=RelayOptions(batch_size=5, concurrency=2, window=4),
        )
        handler = server.handler
    assert (result.claimed, result.sent, result.lost) == (23, 23, 0)
    assert handler.connections == 2
    assert handler.message_ids() == {f"<{message_id}@example.org>": 1 for message_id in ids}
    assert {row.status for row in rows(sessions).values()} == {"sent"}
