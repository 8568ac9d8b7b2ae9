"""The database connection dropped in the middle of a reconcile pass (PostgreSQL).

A listener counts the pass's SQL statements and, before the Nth, terminates its own backend
with `pg_terminate_backend` from another connection. The pass fails; a re-run completes the
day, and every check-in has exactly the notices the ladder owes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from models.db import make_sessionmaker
from tests.conftest import PG_ADMIN_URL
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

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_db(pg_database_url: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    del pg_database_url
    yield from fresh_database("postgresql", tmp_path)


class BackendKiller:
    """Terminates the backend of the connection about to run statement number `at`."""

    def __init__(self, engine: Engine, at: int) -> None:
        self.at = at
        self.count = 0
        self.killed = 0
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        event.listen(engine, "before_cursor_execute", self.before)

    def before(self, conn: Any, *_: Any) -> None:
        self.count += 1
        if self.count != self.at:
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.admin.connect() as admin:
            admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        self.killed += 1

    def remove(self, engine: Engine) -> None:
        event.remove(engine, "before_cursor_execute", self.before)
        self.admin.dispose()


@pytest.mark.parametrize("statement", [4, 40, 250])
def test_pass_after_dropped_connection_owes_exactly_its_notices(
    pg_db: tuple[str, Engine], statement: int
) -> None:
    _, engine = pg_db
    sessions = make_sessionmaker(engine)
    plan_id = build_plan(sessions)
    assert run_pass(sessions, plan_id, DAY_REQUESTS) > 0
    killer = BackendKiller(engine, statement)
    try:
        with pytest.raises(DBAPIError):
            run_pass(sessions, plan_id, DAY_ESCALATION)
    finally:
        killer.remove(engine)
    assert killer.killed == 1
    with sessions() as session:
        partial = notice_problems(
            session=session,
            plan_id=plan_id,
            pass_days=[DAY_REQUESTS, DAY_ESCALATION],
            policy=POLICY,
            calendar=CALENDAR,
        )
    assert partial, "the dropped pass should have left the day unfinished"
    assert run_pass(sessions, plan_id, DAY_ESCALATION) > 0
    assert run_pass(sessions, plan_id, DAY_ESCALATION) == 0
    with sessions() as session:
        problems = notice_problems(
            session=session,
            plan_id=plan_id,
            pass_days=[DAY_REQUESTS, DAY_ESCALATION],
            policy=POLICY,
            calendar=CALENDAR,
        )
    assert problems == []
