"""Two supervision passes for the same plan and day in two processes at once (PostgreSQL).

Both children start at the same instant, one from the first chunk and one from the last, so
they meet in the middle and each writes part of the day; afterwards no notice, outbox row or
domain event is doubled and none is lost.
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
    DAY_LEVEL_TWO,
    DAY_REQUESTS,
    POLICY,
    build_plan,
)
from tests.integration.relay_db import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_db(pg_database_url: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    del pg_database_url
    yield from fresh_database("postgresql", tmp_path)


def test_two_concurrent_passes_write_each_notice_once(
    pg_db: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = pg_db
    sessions = make_sessionmaker(engine)
    plan_id = build_plan(sessions, items=40)
    days = [DAY_REQUESTS, DAY_ESCALATION, DAY_LEVEL_TWO]
    written: list[list[int]] = []
    for day in days:
        start_at = time.time() + 3
        pair = [
            start_pass(url, plan_id, day, mode, tmp_path, start_at=start_at)
            for mode in ("plain", "reverse")
        ]
        counts = []
        for process, log in pair:
            try:
                assert process.wait(timeout=120) == 0, log.read_text()
            finally:
                process.kill()
            counts.append(int(log.read_text().split()[-1]))
        assert sum(counts) > 0, f"no notice written on {day}"
        written.append(counts)
    assert all(any(counts[n] for counts in written) for n in (0, 1)), written
    with sessions() as session:
        problems = notice_problems(
            session=session, plan_id=plan_id, pass_days=days, policy=POLICY, calendar=CALENDAR
        )
    assert problems == []
