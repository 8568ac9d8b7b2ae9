"""The fault tests' invariant itself: it owes the right keys and reports loss and doubling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import DomainEvent, OutboxMessage
from models.supervision import Notice
from tests.faults.invariants import expected_keys, notice_problems
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

DUE = date(2021, 6, 30)


def owed(days: list[date], submitted_on: date | None = None) -> set[str]:
    return expected_keys(
        checkin_id=7,
        due_date=DUE,
        submitted_on=submitted_on,
        pass_days=days,
        policy=POLICY,
        calendar=CALENDAR,
    )


def test_expected_keys_follow_the_pass_days() -> None:
    assert owed([date(2021, 6, 22)]) == set()
    assert owed([date(2021, 6, 23), date(2021, 7, 1)]) == {
        "checkin:7:request:e0",
        "checkin:7:escalation:1:e0",
    }
    assert owed([date(2021, 6, 30)]) == {"checkin:7:reminder:e0"}
    assert owed([date(2021, 7, 5)]) == {"checkin:7:escalation:1:e0", "checkin:7:escalation:2:e0"}
    assert owed([date(2021, 6, 23), date(2021, 7, 5)], date(2021, 6, 24)) == {
        "checkin:7:request:e0"
    }


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    for _, engine in fresh_database("sqlite", tmp_path):
        yield make_sessionmaker(engine)


def problems(sessions: sessionmaker[Session], plan_id: int, days: list[date]) -> list[str]:
    with sessions() as session:
        return notice_problems(
            session=session, plan_id=plan_id, pass_days=days, policy=POLICY, calendar=CALENDAR
        )


def test_invariant_reports_lost_and_doubled(sessions: sessionmaker[Session]) -> None:
    plan_id = build_plan(sessions, items=3)
    run_pass(sessions, plan_id, DAY_REQUESTS)
    assert problems(sessions, plan_id, [DAY_REQUESTS]) == []
    assert any("lost" in p for p in problems(sessions, plan_id, [DAY_REQUESTS, DAY_ESCALATION]))
    with transaction(sessions) as session:
        notice = session.scalars(select(Notice).where(Notice.kind == "request")).first()
        assert notice is not None
        session.execute(delete(OutboxMessage).where(OutboxMessage.notice_id == notice.id))
        event = session.scalars(
            select(DomainEvent).where(DomainEvent.type == "duban.checkin.requested")
        ).first()
        assert event is not None
        session.add(
            DomainEvent(
                type=event.type,
                resource_id=event.resource_id,
                related=event.related,
                payload=event.payload,
                occurred_at=event.occurred_at,
                created_at=event.created_at,
            )
        )
    found = problems(sessions, plan_id, [DAY_REQUESTS])
    assert any("0 outbox rows" in p for p in found)
    assert any("expected 1, found 2" in p for p in found)
