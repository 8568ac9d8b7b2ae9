"""A relay process killed mid-send: at most the duplicate window re-sent, never a message lost.

One row at a time (window 1) the window is one message; at the default settings it is
`RelayOptions.window` rows, and a relay blocked on its commit stops sending once the window
is full (docs/email.md, "The duplicate window")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.outbox import enqueue_message
from notifications.relay import RelayOptions, relay_once
from tests.integration.relay_child import WINDOW
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedHandler, ScriptedServer

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


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
    sessions: sessionmaker[Session], server: ScriptedServer, rows: int = 1
) -> list[OutboxMessage]:
    later = NOW + timedelta(minutes=2)
    settings = Settings(smtp_port=server.port, smtp_timeout_seconds=5)
    result = await relay_once(sessions=sessions, settings=settings, now=later)
    assert result.claimed == rows
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage)))


def wait_for_marker(child: subprocess.Popen[bytes], marker: Path) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, (marker.parent / "child.log").read_text()
        assert time.monotonic() < deadline, "child never reached the 250"
        time.sleep(0.05)


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
            wait_for_marker(child, marker)
        finally:
            child.kill()
            child.wait(timeout=30)
        with sessions() as session:
            assert session.scalars(select(OutboxMessage)).one().status == "sending"
        [row] = await finish_with_second_relay(sessions, server)
        delivered = server.handler.message_ids()
    assert row.status == "sent"
    assert delivered == {f"<{message_id}@example.org>": 2}


@pytest.mark.parametrize(
    ("mode", "window", "count"),
    [("hang_window", WINDOW, 20), ("hang_default_window", RelayOptions().window, 300)],
    ids=["window-5", "default-window"],
)
async def test_killed_with_a_full_window_resends_only_the_window(
    relay_db: tuple[str, Engine], tmp_path: Path, mode: str, window: int, count: int
) -> None:
    """The server receives exactly `window` messages while the commits hang (with 4
    connections and batches of 4, and at the defaults: 8 connections, batches of 200, more
    rows than one batch), and after the kill exactly those are sent twice."""
    url, engine = relay_db
    clear_outbox(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ids = [
            enqueue_message(
                session=session,
                key=f"window-{n}",
                kind="request",
                to=[f"dept{n}@example.org"],
                subject=f"【报送提醒】第{n}项",
                text_body="请报送。",
                now=NOW,
            ).id
            for n in range(count)
        ]
    marker = tmp_path / "marker"
    with ScriptedServer() as server:
        child = start_child(url, server.port, mode, marker)
        try:
            wait_for_marker(child, marker)
            deadline = time.monotonic() + 30
            while len(server.handler.deliveries) < window and time.monotonic() < deadline:
                time.sleep(0.05)
            settle = time.monotonic() + 1.0
            while time.monotonic() < settle:
                assert len(server.handler.deliveries) <= window, "sent beyond the window"
                time.sleep(0.05)
            before_kill = server.handler.message_ids()
        finally:
            child.kill()
            child.wait(timeout=30)
        rows = await finish_with_second_relay(sessions, server, rows=count)
        delivered = server.handler.message_ids()
    assert sum(before_kill.values()) == window
    assert {row.status for row in rows} == {"sent"}
    assert set(delivered) == {f"<{message_id}@example.org>" for message_id in ids}
    duplicated = {key for key, times in delivered.items() if times == 2}
    assert duplicated == set(before_kill)
    assert max(delivered.values()) == 2


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
        [row] = await finish_with_second_relay(sessions, server)
        delivered = server.handler.message_ids()
    assert row.status == "sent" and row.attempts == 2
    assert delivered == {f"<{message_id}@example.org>": 1}
