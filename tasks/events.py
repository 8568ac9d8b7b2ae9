"""Domain events: written in the caller's transaction, then emitted to Prefect's event feed.

Event types are `duban.<object>.<verb>` (`duban.checkin.submitted`); the resource id names
the object (`duban.checkin.12`) and related resources name the item, department and plan so
that a supervisor can filter the event feed in the Prefect UI.

Publishing is paced to what the server takes: Prefect's server hands each event to its
consumers through in-memory queues of 10,000 messages and drops what does not fit
(`Subscription queue is full`), without telling the client. So events go out in chunks of
`PUBLISH_CHUNK`, and before more than `PUBLISH_WINDOW` are out and not yet readable in the
server's event feed (`POST /api/events/filter`, by id), the publisher waits for the oldest
chunk to appear there.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.outbox import DomainEvent

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.events import Event

logger = logging.getLogger(__name__)
EMIT_TIMEOUT_SECONDS = 60.0
PUBLISH_CHUNK = 250
PUBLISH_WINDOW = 1000
CONFIRM_TIMEOUT_SECONDS = 60.0


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


def _to_prefect_event(row: DomainEvent) -> Event:
    from prefect.events import Event

    return Event(
        event=row.type,
        resource={"prefect.resource.id": row.resource_id},
        related=[dict(item) for item in row.related],
        payload=row.payload,
        occurred=row.occurred_at,
        id=UUID(int=(0xD0BA << 112) | row.id),
    )


async def _in_feed(client: PrefectClient, chunk: list[Event]) -> int:
    """How many of `chunk`'s events the server's event feed holds (one filter by ids)."""
    from prefect.events.filters import EventFilter, EventIDFilter, EventOccurredFilter

    occurred = [event.occurred for event in chunk]
    page = await client.read_events(
        filter=EventFilter(
            id=EventIDFilter(id=[event.id for event in chunk]),
            occurred=EventOccurredFilter(since=min(occurred), until=max(occurred)),
        ),
        limit=1,
    )
    return page.total


async def _confirmed(client: PrefectClient, chunk: list[Event]) -> bool:
    """Wait (polling, backing off to 0.5 s) until every event of `chunk` is in the feed;
    False after `CONFIRM_TIMEOUT_SECONDS`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONFIRM_TIMEOUT_SECONDS
    delay = 0.05
    while await _in_feed(client, chunk) < len(chunk):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    return True


async def _emit_paced(events: list[Event]) -> int:
    """Emit `events` in chunks, never more than `PUBLISH_WINDOW` of them out and not yet in
    the server's feed; returns how many were emitted (all, unless the feed stopped taking
    them within `CONFIRM_TIMEOUT_SECONDS`: the rest are left for a later call)."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import get_events_client

    outstanding: deque[list[Event]] = deque()
    emitted = 0
    async with get_events_client(reconnection_attempts=2) as sender, get_client() as api:
        for start in range(0, len(events), PUBLISH_CHUNK):
            chunk = events[start : start + PUBLISH_CHUNK]
            while outstanding and sum(map(len, outstanding)) + len(chunk) > PUBLISH_WINDOW:
                oldest = outstanding.popleft()
                if not await _confirmed(api, oldest):
                    logger.warning(
                        "Prefect's event feed did not take %d events within %.0f s; "
                        "%d left for later",
                        len(oldest),
                        CONFIRM_TIMEOUT_SECONDS,
                        len(events) - emitted,
                    )
                    return emitted
            for event in chunk:
                await sender.emit(event)
            outstanding.append(chunk)
            emitted += len(chunk)
    return emitted


def _publish_batch(
    *,
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int,
    part: tuple[int, int] | None,
) -> int | None:
    """Emit up to `limit` of the oldest unpublished events and mark them published.

    Returns how many were emitted, or None if the Prefect API could not be reached (the rows
    stay unpublished)."""
    query = select(DomainEvent).where(DomainEvent.published_at.is_(None))
    if part is not None:
        index, parts = part
        query = query.where(DomainEvent.id % parts == index)
    with sessions() as session:
        rows = list(session.scalars(query.order_by(DomainEvent.id).limit(limit)))
    if not rows:
        return 0
    events = [_to_prefect_event(row) for row in rows]
    chunks = -(-len(events) // PUBLISH_CHUNK)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="duban-events") as pool:
        try:
            context = contextvars.copy_context()
            future = pool.submit(context.run, asyncio.run, _emit_paced(events))
            emitted = future.result(timeout=EMIT_TIMEOUT_SECONDS + chunks * CONFIRM_TIMEOUT_SECONDS)
        except Exception as exc:
            logger.warning("Prefect events not emitted (%s); %d kept for later", exc, len(rows))
            return None
    with sessions() as session, session.begin():
        session.execute(
            update(DomainEvent)
            .where(DomainEvent.id.in_([row.id for row in rows[:emitted]]))
            .values(published_at=now)
        )
    return emitted


def publish_pending_events(
    *,
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int = 5000,
    max_batches: int = 40,
    part: tuple[int, int] | None = None,
) -> int:
    """Emit unpublished domain events to Prefect, oldest first, and mark them published.

    Works in batches of `limit` rows until none is left (a province-scale pass writes tens
    of thousands), at most `max_batches` batches per call so one call stays bounded; what is
    left goes with the next call. Events go through Prefect's events client on a private
    event loop in a worker thread that carries the caller's context (so sync and async
    callers alike can use it); a batch's rows are marked published only once every send of
    the batch succeeded. If the Prefect API cannot be reached the rows stay unpublished for a
    later call. `part=(k, n)` publishes only the rows whose id is `k` modulo `n`, so that
    `n` processes can share a backlog without sending the same row twice. Each event's id
    derives from its row id, so a crash between sending and marking re-sends the same event
    id (Prefect de-duplicates by id). Returns the number emitted.
    """
    total = 0
    for _ in range(max_batches):
        sent = _publish_batch(sessions=sessions, now=now, limit=limit, part=part)
        if sent is None:
            break
        total += sent
        if sent < limit:
            break
    return total
