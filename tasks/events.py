"""Domain events: written in the caller's transaction, then emitted to Prefect's event feed.

Event types are `duban.<object>.<verb>` (`duban.checkin.submitted`); the resource id names
the object (`duban.checkin.12`) and related resources name the item, department and plan so
that a supervisor can filter the event feed in the Prefect UI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.outbox import DomainEvent

logger = logging.getLogger(__name__)


def resource(kind: str, object_id: int | str, name: str = "") -> dict[str, str]:
    """A Prefect resource dict for a duban object, e.g. `resource("item", 4, "第4项 …")`."""
    value = {"prefect.resource.id": f"duban.{kind}.{object_id}"}
    if name:
        value["prefect.resource.name"] = name
    return value


def related(kind: str, object_id: int | str, name: str = "") -> dict[str, str]:
    """A related-resource dict with `prefect.resource.role` set to `kind`."""
    return {**resource(kind, object_id, name), "prefect.resource.role": kind}


def record_event(
    *,
    session: Session,
    event_type: str,
    resource_id: str,
    occurred_at: datetime,
    now: datetime,
    related_resources: Iterable[Mapping[str, str]] = (),
    payload: Mapping[str, Any] | None = None,
) -> DomainEvent:
    """Add a domain event row to `session` (not committed: the caller's change commits it)."""
    event = DomainEvent(
        type=event_type,
        resource_id=resource_id,
        related=[dict(item) for item in related_resources],
        payload=dict(payload or {}),
        occurred_at=occurred_at,
        created_at=now,
    )
    session.add(event)
    return event


def publish_pending_events(
    *, sessions: sessionmaker[Session], now: datetime, limit: int = 5000
) -> int:
    """Emit unpublished domain events to Prefect, oldest first, and mark them published.

    Each event is emitted with its row id as a stable UUID-derived id, so a crash between
    emitting and marking re-emits the same event id (Prefect de-duplicates by id). Returns
    the number of events emitted.
    """
    from uuid import UUID

    from prefect.events import emit_event

    with sessions() as session:
        rows = list(
            session.scalars(
                select(DomainEvent)
                .where(DomainEvent.published_at.is_(None))
                .order_by(DomainEvent.id)
                .limit(limit)
            )
        )
    emitted: list[int] = []
    for row in rows:
        resource_dict = {"prefect.resource.id": row.resource_id}
        emit_event(
            event=row.type,
            resource=resource_dict,
            occurred=row.occurred_at,
            related=[dict(item) for item in row.related],
            payload=row.payload,
            id=UUID(int=(0xD0BA << 112) | row.id),
        )
        emitted.append(row.id)
    if emitted:
        with sessions() as session, session.begin():
            session.execute(
                update(DomainEvent).where(DomainEvent.id.in_(emitted)).values(published_at=now)
            )
    return len(emitted)
