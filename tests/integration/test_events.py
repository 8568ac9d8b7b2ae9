"""Domain events are written with the change and emitted to a real Prefect server once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from models import clock
from models.db import make_sessionmaker, transaction
from models.outbox import DomainEvent
from tasks.events import feed_total, publish_pending_events, record_event, related
from tests.integration.relay_db import fresh_database
from tests.prefect_server import start_prefect_server

NOW = datetime(2021, 6, 1, 1, 0, tzinfo=UTC)


@pytest.mark.prefect
def test_pending_events_are_published_once(migrated_engine: Engine, prefect_harness: None) -> None:
    sessions = make_sessionmaker(migrated_engine)
    with transaction(sessions) as session:
        event = record_event(
            session=session,
            event_type="duban.checkin.submitted",
            resource_id="duban.checkin.999001",
            occurred_at=NOW,
            now=NOW,
            related_resources=[related("item", 1, "第1项")],
            payload={"version": 1},
        )
    assert publish_pending_events(sessions=sessions, now=NOW) >= 1
    assert publish_pending_events(sessions=sessions, now=NOW) == 0
    with sessions() as session:
        stored = session.scalars(select(DomainEvent).where(DomainEvent.id == event.id)).one()
        assert stored.published_at == NOW
        assert stored.related[0]["prefect.resource.role"] == "item"


def test_events_stay_pending_when_prefect_is_unreachable(migrated_engine: Engine) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from notifications.sink import free_port

    sessions = make_sessionmaker(migrated_engine)
    with transaction(sessions) as session:
        event = record_event(
            session=session,
            event_type="duban.checkin.overdue",
            resource_id="duban.checkin.999002",
            occurred_at=NOW,
            now=NOW,
        )
    dead = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: dead}):
        assert publish_pending_events(sessions=sessions, now=NOW) == 0
    with sessions() as session:
        stored = session.scalars(select(DomainEvent).where(DomainEvent.id == event.id)).one()
        assert stored.published_at is None
        session.delete(stored)
        session.commit()


@pytest.mark.prefect
def test_a_backlog_larger_than_a_batch_is_drained_in_batches(
    migrated_engine: Engine, prefect_harness: None
) -> None:
    sessions = make_sessionmaker(migrated_engine)
    with transaction(sessions) as session:
        for number in range(7):
            record_event(
                session=session,
                event_type="duban.checkin.requested",
                resource_id=f"duban.checkin.99{number:04d}",
                occurred_at=NOW,
                now=NOW,
            )

    def unpublished() -> int:
        with sessions() as session:
            rows = session.scalars(select(DomainEvent).where(DomainEvent.published_at.is_(None)))
            return len(list(rows))

    before = unpublished()
    assert before >= 7
    # Bounded: two batches of 2 leave the rest for the next call.
    assert publish_pending_events(sessions=sessions, now=NOW, limit=2, max_batches=2) == 4
    assert unpublished() == before - 4
    # Unbounded enough: batches of 2 until the backlog is empty, in one call.
    assert publish_pending_events(sessions=sessions, now=NOW, limit=2) == before - 4
    assert unpublished() == 0


@pytest.mark.prefect
def test_parts_share_a_backlog_without_sending_a_row_twice(
    migrated_engine: Engine, prefect_harness: None
) -> None:
    sessions = make_sessionmaker(migrated_engine)
    publish_pending_events(sessions=sessions, now=NOW)
    with transaction(sessions) as session:
        rows = [
            record_event(
                session=session,
                event_type="duban.checkin.requested",
                resource_id=f"duban.checkin.98{number:04d}",
                occurred_at=NOW,
                now=NOW,
            )
            for number in range(5)
        ]
    ids = [row.id for row in rows]
    even = [row_id for row_id in ids if row_id % 2 == 0]
    assert publish_pending_events(sessions=sessions, now=NOW, part=(0, 2)) == len(even)
    with sessions() as session:
        published = set(
            session.scalars(
                select(DomainEvent.id).where(
                    DomainEvent.id.in_(ids), DomainEvent.published_at.is_not(None)
                )
            )
        )
    assert published == set(even)
    assert publish_pending_events(sessions=sessions, now=NOW, part=(0, 2)) == 0
    assert publish_pending_events(sessions=sessions, now=NOW, part=(1, 2)) == len(ids) - len(even)
    assert publish_pending_events(sessions=sessions, now=NOW) == 0


FEED_EVENTS = 15_000
FEED_TYPES = ("duban.checkin.requested", "duban.checkin.overdue", "duban.item.escalated")


def feed_count(api_url: str, tag: str, since: datetime, until: datetime) -> int:
    """How many events of `FEED_TYPES` on resources `duban.checkin.<tag>…` the server's
    event feed holds."""
    prefix = f"duban.checkin.{tag}"
    return feed_total(api_url, since=since, until=until, names=FEED_TYPES, resource_prefix=prefix)


@pytest.mark.prefect
@pytest.mark.slow
def test_a_burst_of_events_all_reaches_the_server_feed(tmp_path: Path) -> None:
    """15,000 domain events written at once (a 5,000-item pass writes about that many) are
    all in a real Prefect server's event feed after one publish: none dropped by the
    server's in-memory queues (10,000 messages each)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tag = uuid.uuid4().hex[:8]
    occurred = clock.now().replace(microsecond=0)
    for _, engine in fresh_database("sqlite", tmp_path):
        with engine.begin() as connection:
            connection.execute(
                insert(DomainEvent),
                [
                    {
                        "type": FEED_TYPES[n % len(FEED_TYPES)],
                        "resource_id": f"duban.checkin.{tag}-{n}",
                        "related": [related("item", n % 500, f"第{n % 500 + 1}项")],
                        "payload": {"n": n},
                        "occurred_at": occurred,
                        "created_at": occurred,
                    }
                    for n in range(FEED_EVENTS)
                ],
            )
        server = start_prefect_server(tmp_path / "prefect")
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                published = publish_pending_events(sessions=make_sessionmaker(engine), now=occurred)
            assert published == FEED_EVENTS
            deadline = time.monotonic() + 60
            count = feed_count(server.api_url, tag, occurred, occurred)
            while count < FEED_EVENTS and time.monotonic() < deadline:
                time.sleep(0.5)
                count = feed_count(server.api_url, tag, occurred, occurred)
            log = server.log_tail(2000)
        finally:
            server.stop()
        assert count == FEED_EVENTS, log[-3000:]
        assert "Subscription queue is full" not in log
