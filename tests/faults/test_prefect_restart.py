"""A real Prefect server killed and restarted: between a pass and the publishing of its
events, and under a deployed pass running on a worker.

Domain events are rows written with the change; while the server is down they stay
unpublished, and after the restart (same server database, new process) the next publish
emits every one of them once. A deployed pass whose server is SIGKILLed mid-run and
restarted on the same PostgreSQL database and port, at once or after longer than the
zombie window, ends with every flow run terminal and exactly the owed notices. Time-bounded
by the server start timeout, the events client's own deadline and a deadline on every wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker
from models.outbox import DomainEvent
from models.supervision import Notice
from tasks.events import publish_pending_events
from tests.faults import workers
from tests.faults.invariants import notice_problems
from tests.faults.scenario import (
    CALENDAR,
    DAY_ESCALATION,
    DAY_REQUESTS,
    POLICY,
    at,
    build_plan,
    run_pass,
)
from tests.integration.relay_db import fresh_database
from tests.prefect_server import (
    PrefectServer,
    fresh_postgres_database,
    require_postgres,
    start_prefect_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
ZOMBIE_AFTER = 45


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


def notices(sessions: sessionmaker[Session]) -> int:
    """Number of notice rows."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Notice)) or 0)


@pytest.mark.postgres
@pytest.mark.parametrize("outage", [0, ZOMBIE_AFTER], ids=["restart-at-once", "outage"])
def test_prefect_server_killed_and_restarted_under_a_running_deployed_pass(
    tmp_path: Path, outage: int
) -> None:
    """Deployed pass on a worker; the Prefect server (PostgreSQL) SIGKILLed after the first
    chunk committed and a new server process started on the same database and port, at
    once or after `outage` seconds (longer than the zombie window).

    Whatever Prefect makes of the run (completed once the server is back, or Crashed by the
    zombie automation or by its own engine), every flow run ends terminal within the window,
    a re-run completes if the first did not, and the day has exactly the owed notices.
    """
    require_postgres()
    with (
        fresh_postgres_database("prefect_restart") as prefect_url,
        ThreadPoolExecutor(1) as background,
        contextlib.contextmanager(fresh_database)("postgresql", tmp_path) as (url, engine),
    ):
        sessions = make_sessionmaker(engine)
        coming_up = background.submit(
            workers.bring_up, tmp_path, prefect_url, url, chunk="5", zombie_after=ZOMBIE_AFTER
        )
        plan_id = build_plan(sessions, items=120)
        run_pass(sessions, plan_id, DAY_REQUESTS)
        first, env, worker = coming_up.result(timeout=150)
        second: PrefectServer | None = None
        spare = None
        try:
            before = notices(sessions)
            deadline = time.monotonic() + 90
            workers.wait_for(lambda: workers.online_workers(first), deadline, "a worker")
            run_id = workers.start_pass(first, plan_id, at(DAY_ESCALATION))
            workers.wait_for(lambda: notices(sessions) > before, deadline, "a chunk", first)
            kill(first)
            killed_at = time.monotonic()
            time.sleep(outage)
            port = urlsplit(first.api_url).port
            assert port is not None
            second = start_prefect_server(tmp_path / "prefect", database_url=prefect_url, port=port)
            assert second.api_url == first.api_url
            back_at = time.monotonic()
            assert back_at - killed_at > outage
            server = second

            def all_terminal() -> list[dict[str, Any]] | None:
                runs = workers.flow_runs(server)
                done = all(run["state_type"] in workers.TERMINAL for run in runs)
                return runs if runs and done else None

            runs = workers.wait_for(
                all_terminal, back_at + ZOMBIE_AFTER + 60, "every run terminal", server
            )
            settled_at = time.monotonic()
            outcome = workers.flow_run(server, run_id)
            observed = {run["name"]: f"{run['state_type']}/{run['state_name']}" for run in runs}
            if outcome["state_type"] != "COMPLETED":
                if worker.poll() is not None:
                    spare = workers.start_worker(env, tmp_path / "worker2.log")
                rerun_id = workers.start_pass(server, plan_id, at(DAY_ESCALATION))

                def rerun_done() -> dict[str, Any] | None:
                    run = workers.flow_run(server, rerun_id)
                    return run if run["state_type"] in workers.TERMINAL else None

                rerun = workers.wait_for(rerun_done, time.monotonic() + 120, "the re-run", server)
                assert rerun["state_type"] == "COMPLETED", workers.logs(tmp_path)
            worker_survived = worker.poll() is None
            final = workers.flow_runs(server)
            assert all(run["state_type"] in workers.TERMINAL for run in final), final
        finally:
            workers.stop_worker(worker)
            if spare is not None:
                workers.stop_worker(spare)
            if second is not None:
                second.stop()
            first.stop()
        with sessions() as session:
            problems = notice_problems(
                session=session,
                plan_id=plan_id,
                pass_days=[DAY_REQUESTS, DAY_ESCALATION],
                policy=POLICY,
                calendar=CALENDAR,
            )
        assert problems == []
    print(
        f"server down {back_at - killed_at:.1f} s; runs terminal {settled_at - back_at:.1f} s "
        f"after the restart: {observed}; worker survived: {worker_survived}"
    )
