"""A real Prefect server killed and restarted between a pass and the publishing of its events.

Domain events are rows written with the change; while the server is down they stay
unpublished, and after the restart (same server database, new process) the next publish
emits every one of them once. Time-bounded by the server start timeout and the events
client's own deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker
from models.outbox import DomainEvent
from tasks.events import publish_pending_events
from tests.faults.scenario import DAY_ESCALATION, DAY_REQUESTS, at, build_plan, run_pass
from tests.integration.relay_db import fresh_database
from tests.prefect_server import PrefectServer, start_prefect_server

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    for _, engine in fresh_database("sqlite", tmp_path):
        yield make_sessionmaker(engine)


def unpublished(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        count = session.scalar(select(func.count()).where(DomainEvent.published_at.is_(None)))
    return int(count or 0)


def publish(sessions: sessionmaker[Session], server: PrefectServer, now: datetime) -> int:
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        return publish_pending_events(sessions=sessions, now=now)


def kill(server: PrefectServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def test_events_survive_a_killed_prefect_server_and_go_out_after_restart(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    plan_id = build_plan(sessions, items=3)
    run_pass(sessions, plan_id, DAY_REQUESTS)
    workdir = tmp_path / "prefect"
    workdir.mkdir()
    first = start_prefect_server(workdir)
    try:
        written = unpublished(sessions)
        assert written > 0
        assert publish(sessions, first, at(DAY_REQUESTS)) == written
        assert unpublished(sessions) == 0
        run_pass(sessions, plan_id, DAY_ESCALATION)
        pending = unpublished(sessions)
        assert pending > 0
        kill(first)
        assert publish(sessions, first, at(DAY_ESCALATION)) == 0
        assert unpublished(sessions) == pending
    finally:
        first.stop()
    second = start_prefect_server(workdir)
    try:
        assert publish(sessions, second, at(DAY_ESCALATION)) == pending
        assert unpublished(sessions) == 0
        assert publish(sessions, second, at(DAY_ESCALATION)) == 0
    finally:
        second.stop()
    with sessions() as session:
        late = session.scalar(
            select(func.count()).where(DomainEvent.published_at == at(DAY_ESCALATION))
        )
    assert late == pending
