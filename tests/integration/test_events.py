"""Domain events are written with the change and emitted to a real Prefect server once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from models.db import make_sessionmaker, transaction
from models.outbox import DomainEvent
from tasks.events import publish_pending_events, record_event, related

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
