"""SMTP down for a whole simulated day, then back: rows wait with backoff, then go once each.

The relay runs against a closed port on 127.0.0.1 during the outage day and against the
embedded Maildir sink the next morning. Time is simulated (`now=`), never slept on.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import LOCAL_TZ
from models.db import make_sessionmaker
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.relay import relay_once
from notifications.sink import MailSink, free_port
from tests.faults.scenario import DAY_REQUESTS, build_plan, run_pass
from tests.integration.relay_db import fresh_database

pytestmark = pytest.mark.slow

OUTAGE = DAY_REQUESTS
NEXT_MORNING = datetime.combine(OUTAGE + timedelta(days=1), time(9), tzinfo=LOCAL_TZ)


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=LOCAL_TZ)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_database_url")
    engine: Engine
    for _, engine in fresh_database(request.param, tmp_path):
        yield make_sessionmaker(engine)


def statuses(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return Counter({row[0]: row[1] for row in rows})


def down_settings() -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout_seconds=2)


async def test_outage_day_keeps_rows_pending_then_delivers_each_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    plan_id = build_plan(sessions, items=5)
    run_pass(sessions, plan_id, OUTAGE)
    total = statuses(sessions)["pending"]
    assert total == 30
    down = down_settings()
    first = await relay_once(sessions=sessions, settings=down, now=local(OUTAGE, 9))
    assert (first.claimed, first.sent, first.retried, first.dead) == (total, 0, total, 0)
    with sessions() as session:
        rows = list(session.scalars(select(OutboxMessage)))
    assert {row.attempts for row in rows} == {1}
    assert min(row.next_attempt_at for row in rows) > local(OUTAGE, 9)
    early = await relay_once(sessions=sessions, settings=down, now=local(OUTAGE, 9, 0, 10))
    assert early.claimed == 0, "backoff not respected"
    for hour in (12, 18):
        later = await relay_once(sessions=sessions, settings=down, now=local(OUTAGE, hour))
        assert (later.claimed, later.sent, later.dead) == (total, 0, 0)
    assert statuses(sessions) == Counter({"pending": total})
    with MailSink(path=tmp_path / "maildir") as sink:
        up = Settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_timeout_seconds=5)
        back = await relay_once(sessions=sessions, settings=up, now=NEXT_MORNING)
        again = await relay_once(
            sessions=sessions, settings=up, now=NEXT_MORNING + timedelta(hours=1)
        )
    assert (back.claimed, back.sent) == (total, total)
    assert again.claimed == 0
    assert statuses(sessions) == Counter({"sent": total})
    delivered = Counter(str(m["Message-ID"]) for m in mailbox.Maildir(tmp_path / "maildir"))
    with sessions() as session:
        ids = set(session.scalars(select(OutboxMessage.id)))
    assert len(delivered) == total
    assert set(delivered.values()) == {1}
    assert {mid.strip("<>").split("@")[0] for mid in delivered} == ids


async def test_relay_every_five_minutes_through_the_outage_dead_letters_nothing(
    sessions: sessionmaker[Session],
) -> None:
    plan_id = build_plan(sessions, items=2)
    run_pass(sessions, plan_id, OUTAGE)
    down = down_settings()
    moment = local(OUTAGE, 0)
    while moment < NEXT_MORNING:
        await relay_once(sessions=sessions, settings=down, now=moment)
        moment += timedelta(minutes=5)
    assert statuses(sessions)["dead"] == 0
