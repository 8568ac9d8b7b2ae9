"""The database connection dropped in the middle of a reconcile pass (PostgreSQL).

A listener counts the pass's SQL statements and, before the Nth (early, in the middle and
three quarters in, of the count measured on a reference database), terminates its own backend
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


@pytest.fixture(scope="module")
def pass_statements(
    pg_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """How many statements the escalation day's pass runs, counted on a reference database:
    the kill points are placed inside it (the set-based pass runs far fewer than before)."""
    del pg_database_url
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    for _, engine in fresh_database("postgresql", tmp_path_factory.mktemp("reference")):
        sessions = make_sessionmaker(engine)
        plan_id = build_plan(sessions)
        run_pass(sessions, plan_id, DAY_REQUESTS)
        event.listen(engine, "before_cursor_execute", count)
        run_pass(sessions, plan_id, DAY_ESCALATION)
        event.remove(engine, "before_cursor_execute", count)
        yield counted[0]


@pytest.mark.parametrize("where", ["early", "middle", "late"])
def test_pass_after_dropped_connection_owes_exactly_its_notices(
    pg_db: tuple[str, Engine], pass_statements: int, where: str
) -> None:
    statement = {"early": 4, "middle": pass_statements // 2, "late": pass_statements * 3 // 4}
    assert pass_statements >= 12, pass_statements
    _, engine = pg_db
    sessions = make_sessionmaker(engine)
    plan_id = build_plan(sessions)
    assert run_pass(sessions, plan_id, DAY_REQUESTS) > 0
    killer = BackendKiller(engine, statement[where])
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
