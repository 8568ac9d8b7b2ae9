"""A relay process killed mid-send: at most one duplicate, never a lost message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import enqueue_message
from notifications.relay import relay_once
from tests.integration.relay_db import clear_outbox, fresh_database
from tests.integration.smtp_servers import ScriptedHandler, ScriptedServer

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relay_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Engine]]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_database_url")
    yield from fresh_database(request.param, tmp_path_factory.mktemp("relay-kill"))


def start_child(url: str, port: int, mode: str, marker: Path) -> subprocess.Popen[bytes]:
    with (marker.parent / "child.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "tests.integration.relay_child",
                url,
                str(port),
                NOW.isoformat(),
                mode,
                str(marker),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def enqueue_one(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as session:
        return enqueue_message(
            session=session,
            key="kill-test",
            kind="request",
            to=["dept@example.org"],
            subject="【报送提醒】第4项",
            text_body="请报送。",
            now=NOW,
        ).id


async def finish_with_second_relay(
    sessions: sessionmaker[Session], server: ScriptedServer
) -> OutboxMessage:
    later = NOW + timedelta(minutes=2)
    settings = Settings(smtp_port=server.port, smtp_timeout_seconds=5)
    result = await relay_once(sessions=sessions, settings=settings, now=later)
    assert result.claimed == 1
    with sessions() as session:
        return session.scalars(select(OutboxMessage)).one()


async def test_killed_after_250_before_commit_duplicates_at_most_once(
    relay_db: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = relay_db
    clear_outbox(engine)
    sessions = make_sessionmaker(engine)
    message_id = enqueue_one(sessions)
    marker = tmp_path / "marker"
    with ScriptedServer() as server:
        child = start_child(url, server.port, "hang_before_commit", marker)
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, (tmp_path / "child.log").read_text()
                assert time.monotonic() < deadline, "child never reached the 250"
                time.sleep(0.05)
        finally:
            child.kill()
            child.wait(timeout=30)
        with sessions() as session:
            assert session.scalars(select(OutboxMessage)).one().status == "sending"
        row = await finish_with_second_relay(sessions, server)
        delivered = server.handler.message_ids()
    assert row.status == "sent"
    assert delivered == {f"<{message_id}@example.org>": 2}


async def test_killed_before_data_delivers_exactly_once(
    relay_db: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = relay_db
    clear_outbox(engine)
    sessions = make_sessionmaker(engine)
    message_id = enqueue_one(sessions)
    handler = ScriptedHandler()
    children: list[subprocess.Popen[bytes]] = []

    def kill_child() -> None:
        handler.hooks.clear()
        children[0].kill()
        children[0].wait(timeout=30)

    handler.hooks["dept@example.org"] = kill_child
    with ScriptedServer(handler) as server:
        children.append(start_child(url, server.port, "plain", tmp_path / "unused"))
        try:
            assert children[0].wait(timeout=60) != 0
        finally:
            children[0].kill()
        assert server.handler.message_ids() == {}
        row = await finish_with_second_relay(sessions, server)
        delivered = server.handler.message_ids()
    assert row.status == "sent" and row.attempts == 2
    assert delivered == {f"<{message_id}@example.org>": 1}
