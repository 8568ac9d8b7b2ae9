"""A Prefect worker SIGKILLed in the middle of a deployed `supervise_plan`, for real.

App database and Prefect server on PostgreSQL, `duban deploy --zombie-after 45`, one
`duban worker` (flow heartbeat every 30 s, Prefect's minimum). A batch-mode `supervise-plan`
run on an escalation day (chunks of 5 items) is killed with its worker (SIGSTOP, then SIGKILL
to the worker and its flow-run child) as soon as its first chunk has committed notices. Nobody
is left to report the crash: the zombie-run automation must mark the silent runs Crashed within
the window; a new worker and a re-run at the same `as_of` then complete the day with exactly
the owed notices, outbox rows and events. The server, a worker and `duban deploy` come up
while the plan is built (the runs pass `plan_id` themselves), to keep the test short.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker
from models.supervision import Notice
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
)

pytestmark = [pytest.mark.slow, pytest.mark.prefect, pytest.mark.postgres]

ZOMBIE_AFTER = 45
ITEMS = 120
CHUNK = "5"
RUN_STARTS = 90
CRASH_SLACK = 30
RERUN = 120


def notices(sessions: sessionmaker[Session]) -> int:
    """Number of notice rows."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Notice)) or 0)


def problems(sessions: sessionmaker[Session], plan_id: int) -> list[str]:
    """The invariant's breaches after passes on the request day and the escalation day."""
    with sessions() as session:
        return notice_problems(
            session=session,
            plan_id=plan_id,
            pass_days=[DAY_REQUESTS, DAY_ESCALATION],
            policy=POLICY,
            calendar=CALENDAR,
        )


def test_killed_worker_run_is_crashed_by_the_zombie_automation_and_the_rerun_completes(
    tmp_path: Path,
) -> None:
    require_postgres()
    started = time.monotonic()
    with (
        fresh_postgres_database("prefect_kill") as prefect_url,
        ThreadPoolExecutor(1) as background,
    ):
        for url, engine in fresh_database("postgresql", tmp_path):
            sessions = make_sessionmaker(engine)
            coming_up = background.submit(
                workers.bring_up, tmp_path, prefect_url, url, chunk=CHUNK, zombie_after=ZOMBIE_AFTER
            )
            plan_id = build_plan(sessions, items=ITEMS)
            run_pass(sessions, plan_id, DAY_REQUESTS)
            server, env, first = coming_up.result(timeout=150)
            try:
                crashed_after = _kill_and_recover(server, env, first, sessions, plan_id, tmp_path)
                assert problems(sessions, plan_id) == []
                final = workers.flow_runs(server)
                assert all(run["state_type"] in workers.TERMINAL for run in final), final
            finally:
                workers.stop_worker(first)
                server.stop()
    print(f"crashed {crashed_after:.1f} s after the kill; total {time.monotonic() - started:.1f} s")


def _kill_and_recover(
    server: PrefectServer,
    env: dict[str, str],
    first: subprocess.Popen[bytes],
    sessions: sessionmaker[Session],
    plan_id: int,
    tmp_path: Path,
) -> float:
    """Run, kill the worker mid-pass, wait for the zombie crash, re-run on a new worker;
    returns the seconds from the kill to both runs Crashed."""
    before = notices(sessions)
    second = None
    try:
        deadline = time.monotonic() + RUN_STARTS
        workers.wait_for(lambda: workers.online_workers(server), deadline, "an online worker")
        run_id = workers.start_pass(server, plan_id, at(DAY_ESCALATION))
        workers.wait_for(
            lambda: notices(sessions) > before, deadline, "the first committed chunk", server
        )
        killed = workers.kill_tree(first)
        killed_at = time.monotonic()
        second = workers.start_worker(env, tmp_path / "worker2.log")
        assert len(killed) >= 2, "the worker had no flow-run child"
        at_kill = workers.flow_run(server, run_id)
        assert at_kill["state_type"] == "RUNNING", at_kill["state"]
        assert problems(sessions, plan_id), "the kill should have left the day unfinished"

        def all_crashed() -> list[dict[str, Any]] | None:
            runs = workers.flow_runs(server)
            return runs if all(run["state_type"] in workers.TERMINAL for run in runs) else None

        deadline = killed_at + ZOMBIE_AFTER + CRASH_SLACK
        runs = workers.wait_for(all_crashed, deadline, "the zombie automation to crash the runs")
        crashed_after = time.monotonic() - killed_at
        assert {run["state_type"] for run in runs} == {"CRASHED"}, runs
        assert len(runs) == 2  # the calendar gate and its supervise-plan subflow
        assert all("心跳" in (run["state"]["message"] or "") for run in runs)
        print(f"task runs after the zombie crash: {workers.task_run_states(server)}")

        rerun_id = workers.start_pass(server, plan_id, at(DAY_ESCALATION))

        def rerun_done() -> dict[str, Any] | None:
            run = workers.flow_run(server, rerun_id)
            return run if run["state_type"] in workers.TERMINAL else None

        rerun = workers.wait_for(rerun_done, time.monotonic() + RERUN, "the re-run", server)
        assert rerun["state_type"] == "COMPLETED", workers.logs(tmp_path)
        assert rerun["state_name"] == "Supervised"
    finally:
        if second is not None:
            workers.stop_worker(second)
    return crashed_after
