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
