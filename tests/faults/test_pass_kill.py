"""A supervision pass SIGKILLed mid-way in a child process, on SQLite and PostgreSQL.

The child commits its first chunk, is killed inside a later one, and the re-run in this
process completes the day: every check-in has exactly the notices the ladder owes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.db import make_sessionmaker
from tests.faults.children import start_pass
from tests.faults.invariants import notice_problems
from tests.faults.scenario import (
    CALENDAR,
    DAY_ESCALATION,
    DAY_REQUESTS,
    POLICY,
    build_plan,
    run_pass,
)
from tests.integration.relay_db import fresh_database

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_database_url")
    yield from fresh_database(request.param, tmp_path)


def test_killed_pass_rerun_owes_exactly_its_notices(db: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = db
    sessions = make_sessionmaker(engine)
    plan_id = build_plan(sessions)
    run_pass(sessions, plan_id, DAY_REQUESTS)
    child, log = start_pass(url, plan_id, DAY_ESCALATION, "slow", tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "marker").exists():
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "child never committed a chunk"
            time.sleep(0.02)
        time.sleep(0.3)
        assert child.poll() is None, "child finished before it could be killed"
    finally:
        child.kill()
        child.wait(timeout=30)
    days = [DAY_REQUESTS, DAY_ESCALATION]
    with sessions() as session:
        partial = notice_problems(
            session=session, plan_id=plan_id, pass_days=days, policy=POLICY, calendar=CALENDAR
        )
    assert partial, "the killed pass should have left the day unfinished"
    assert run_pass(sessions, plan_id, DAY_ESCALATION) > 0
    with sessions() as session:
        problems = notice_problems(
            session=session, plan_id=plan_id, pass_days=days, policy=POLICY, calendar=CALENDAR
        )
    assert problems == []
