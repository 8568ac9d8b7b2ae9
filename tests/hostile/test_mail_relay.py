"""One undeliverable row never stops the others, against real aiosmtpd servers on loopback.

The directory accepts `学会部@例子.中国`; the relay sends the domain in IDNA form, uses
SMTPUTF8 for the non-ASCII local part when the server offers it, and otherwise moves that
one row to the dead letters with the reason, while every other row is delivered. No
exception from one row leaves it `sending` (docs/email.md, "Addresses").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import claim_messages, enqueue_message
from notifications.relay import relay_once
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedServer

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
POISON = "学会部@例子.中国"
IDNA_DOMAIN = "xn--fsqu00a.xn--fiqs8s"


@pytest.fixture
def sessions(relay_db: tuple[str, Engine]) -> sessionmaker[Session]:
    clear_outbox(relay_db[1])
    return make_sessionmaker(relay_db[1])


def enqueue(
    sessions: sessionmaker[Session], key: str, to: list[str], **extra: list[dict[str, str]]
) -> str:
    with transaction(sessions) as session:
        return enqueue_message(
            session=session,
            key=key,
            kind="request",
            to=to,
            subject=f"【报送提醒】{key}",
            text_body="请报送。",
            html_body="<p>请报送。</p>",
            now=NOW,
            **extra,
        ).id


def enqueue_office(sessions: sessionmaker[Session], poison: list[str]) -> dict[str, str]:
    """32 ordinary rows and one row per address in `poison` (keys `poison-<n>`)."""
    keys = {
        enqueue(sessions, f"dept-{n}", [f"dept{n}@example.org"]): f"dept-{n}" for n in range(32)
    }
    for n, address in enumerate(poison):
        keys[enqueue(sessions, f"poison-{n}", [address])] = f"poison-{n}"
    return keys


def statuses(sessions: sessionmaker[Session]) -> dict[str, OutboxMessage]:
    with sessions() as session:
        return {row.key: row for row in session.scalars(select(OutboxMessage))}


def settings_for(server: ScriptedServer) -> Settings:
    return Settings(smtp_port=server.port, smtp_timeout_seconds=5)


async def test_without_smtputf8_the_poison_row_is_dead_and_the_rest_delivered(
    sessions: sessionmaker[Session],
) -> None:
    enqueue_office(sessions, [POISON])
    with ScriptedServer(smtputf8=False) as server:
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        delivered = server.handler.deliveries
    rows = statuses(sessions)
    assert (result.sent, result.dead) == (32, 1)
    assert len(delivered) == 32
    assert {row.status for key, row in rows.items() if key != "poison-0"} == {"sent"}
    assert rows["poison-0"].status == "dead"
    assert "SMTPUTF8" in rows["poison-0"].last_error
    assert "部门名录" in rows["poison-0"].last_error


async def test_with_smtputf8_every_row_is_delivered_with_the_idna_domain(
    sessions: sessionmaker[Session],
) -> None:
    enqueue_office(sessions, [POISON, "xuehui@例子.中国"])
    with ScriptedServer(smtputf8=True) as server:
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        delivered = server.handler.deliveries
    assert (result.sent, result.dead, result.retried) == (34, 0, 0)
    envelopes = {tuple(delivery.rcpt_tos) for delivery in delivered}
    assert (f"学会部@{IDNA_DOMAIN}",) in envelopes
    assert (f"xuehui@{IDNA_DOMAIN}",) in envelopes
    poison = next(d for d in delivered if d.rcpt_tos == [f"学会部@{IDNA_DOMAIN}"])
    assert str(poison.message["To"]) == f"学会部@{IDNA_DOMAIN}"
    assert {row.status for row in statuses(sessions).values()} == {"sent"}


async def test_an_idna_domain_needs_no_smtputf8(sessions: sessionmaker[Session]) -> None:
    enqueue(sessions, "idna", ["xuehui@例子.中国"])
    with ScriptedServer(smtputf8=False) as server:
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        delivered = server.handler.deliveries
    assert result.sent == 1
    assert delivered[0].rcpt_tos == [f"xuehui@{IDNA_DOMAIN}"]


async def test_every_kind_of_bad_row_is_dead_alone_and_nothing_stays_sending(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    keys = enqueue_office(sessions, ["no-at-sign", "a b@example.org", "dept@exa\u200bmple..org"])
    enqueue(sessions, "missing-file", ["ok@example.org"], attachments=[{"path": str(tmp_path)}])
    broken = enqueue(sessions, "broken-attachment", ["ok@example.org"])
    with transaction(sessions) as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == broken).values(attachments=["x"])
        )
    with ScriptedServer() as server:
        result = await relay_once(sessions=sessions, settings=settings_for(server), now=NOW)
        delivered = server.handler.deliveries
    rows = statuses(sessions)
    assert len(keys) == 35
    assert (result.sent, result.dead) == (32, 5)
    assert len(delivered) == 32
    assert "sending" not in {row.status for row in rows.values()}
    assert "收件人地址格式无效" in rows["poison-0"].last_error
    assert "收件人地址格式无效" in rows["poison-1"].last_error
    assert "IDNA" in rows["poison-2"].last_error
    assert "附件无法读取" in rows["missing-file"].last_error
    assert "邮件无法生成" in rows["broken-attachment"].last_error


async def test_a_row_left_sending_by_a_crash_is_reclaimed_and_delivered(
    sessions: sessionmaker[Session],
) -> None:
    message_id = enqueue(sessions, "crashed", ["dept@example.org"])
    with transaction(sessions) as session:
        [claimed] = claim_messages(session=session, now=NOW, limit=10, lease=timedelta(minutes=15))
    assert claimed.id == message_id
    with ScriptedServer() as server:
        settings = settings_for(server)
        early = await relay_once(sessions=sessions, settings=settings, now=NOW)
        later = await relay_once(sessions=sessions, settings=settings, now=NOW + timedelta(hours=1))
        delivered = server.handler.message_ids()
    assert early.claimed == 0
    assert later.sent == 1
    assert delivered == {f"<{message_id}@example.org>": 1}
    assert statuses(sessions)["crashed"].status == "sent"
