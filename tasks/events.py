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

Who publishes (`DUBAN_EVENT_PUBLISHER`): the flow run that wrote the rows, before it ends
(`flow`, the default), or `duban events relay` (`relay`, what `duban serve` runs), so that a
province-scale pass ends once its rows are committed instead of waiting the half minute the
server takes to ingest 20,000 events (`publish_after_pass`, `relay_events_forever`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.outbox import DomainEvent
from models.settings import EventPublisher, get_settings

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
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


def pending_event_count(sessions: sessionmaker[Session]) -> int:
    """How many domain events are written and not yet published."""
    with sessions() as session:
        query = select(func.count()).where(DomainEvent.published_at.is_(None))
        return int(session.scalar(query) or 0)


def publish_after_pass(
    *, sessions: sessionmaker[Session], now: datetime, part: tuple[int, int] | None = None
) -> int:
    """What a supervision pass does with the events it wrote: publish them now (the
    `flow` publisher, `publish_pending_events`), or leave them to `duban events relay`
    (the `relay` publisher: returns 0 at once; the rows are committed, the relay finds them).
    """
    if get_settings().event_publisher is EventPublisher.relay:
        return 0
    return publish_pending_events(sessions=sessions, now=now, part=part)


def oldest_pending_event_at(sessions: sessionmaker[Session]) -> datetime | None:
    """When the oldest unpublished domain event was written, None when none is waiting."""
    with sessions() as session:
        query = select(func.min(DomainEvent.created_at)).where(DomainEvent.published_at.is_(None))
        return session.scalar(query)


def newest_pending_event(sessions: sessionmaker[Session]) -> int | None:
    """The id of the newest unpublished domain event, None when none is waiting."""
    with sessions() as session:
        query = select(func.max(DomainEvent.id)).where(DomainEvent.published_at.is_(None))
        return session.scalar(query)


PASS_FLOWS = ("supervise-plan", "supervise-shard")


class PassWatch:
    """Whether a supervision pass (`supervise-plan` or `supervise-shard` run) is RUNNING on
    the Prefect server, asked over one API client kept open between looks (a client costs
    a TLS context and a connection; the relay looks about once a second).

    False when the server cannot be asked (publishing will tell); the client is then
    dropped and the next look opens a new one. `close` releases it.
    """

    def __init__(self) -> None:
        self._client: SyncPrefectClient | None = None

    def __call__(self) -> bool:
        from prefect.client.schemas.filters import (
            FlowFilter,
            FlowFilterName,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        try:
            if self._client is None:
                self._client = _open_sync_client()
            running = self._client.count_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(PASS_FLOWS))),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
                ),
            )
        except Exception as exc:  # an unreachable server is the publisher's to report
            logger.debug("event relay: could not ask Prefect for running passes: %s", exc)
            self.close()
            return False
        return running > 0

    @property
    def client(self) -> SyncPrefectClient | None:
        """The client kept for the next look, None when none is open."""
        return self._client

    def close(self) -> None:
        """Close the kept client, if one is open."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.__exit__(None, None, None)


def _open_sync_client() -> SyncPrefectClient:
    from prefect.client.orchestration import get_client

    client = get_client(sync_client=True)
    client.__enter__()
    return client


def pass_running() -> bool:
    """Whether a supervision pass is RUNNING on the Prefect server, asked once (a
    `PassWatch` of its own, closed after the look)."""
    watch = PassWatch()
    try:
        return watch()
    finally:
        watch.close()


def feed_total(
    api_url: str,
    *,
    since: datetime,
    until: datetime,
    names: Sequence[str] = (),
    prefix: str = "duban.",
    resource_prefix: str | None = None,
) -> int:
    """How many events the Prefect server at `api_url` holds in its feed that occurred in
    `[since, until]`, are named one of `names` (when given) or start with `prefix`, and
    (when given) are about a resource whose id starts with `resource_prefix`.

    One `POST /events/filter` read, its `total`: how the benchmarks and tests prove that
    every domain event reached the feed.
    """
    import httpx

    event = {"name": list(names)} if names else {"prefix": [prefix]}
    query: dict[str, Any] = {
        "event": event,
        "occurred": {"since": since.isoformat(), "until": until.isoformat()},
    }
    if resource_prefix is not None:
        query["resource"] = {"id_prefix": [resource_prefix]}
    response = httpx.post(
        f"{api_url}/events/filter", json={"filter": query, "limit": 1}, timeout=30
    )
    response.raise_for_status()
    return int(response.json()["total"])


@dataclass
class EventRelay:
    """The event relay's decisions, one look at a time (`step`); `relay_events_forever` loops.

    Publishes a backlog once it has settled: no row added for `settle_seconds` and no
    supervision pass running on the Prefect server (`passes_running`), or its first row has
    waited `max_delay_seconds`. Ingesting events costs the Prefect server about a CPU second
    per 800 (docs/performance.md); on a small machine publishing during a pass would take
    that CPU from the pass and its emails, so the feed follows the pass instead of slowing
    it. A lone event (an office decision in a flow) waits one `settle_seconds`. With nothing
    waiting, or Prefect unreachable, the next look is `interval_seconds` away.
    """

    sessions: sessionmaker[Session]
    interval_seconds: float = 1.0
    settle_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    passes_running: Callable[[], bool] = field(default_factory=PassWatch)
    monotonic: Callable[[], float] = time.monotonic
    _seen: int | None = field(default=None, init=False)
    _waiting_since: float = field(default=0.0, init=False)

    def step(self) -> tuple[int, float]:
        """Look once: `(events published now, seconds until the next look)`."""
        newest = newest_pending_event(self.sessions)
        if newest is None:
            self._seen = None
            return 0, self.interval_seconds
        now = self.monotonic()
        if self._seen is None:
            self._waiting_since = now
        overdue = now - self._waiting_since >= self.max_delay_seconds
        if not overdue and (newest != self._seen or self.passes_running()):
            self._seen = newest
            return 0, self.settle_seconds
        self._seen = None
        sent = publish_pending_events(sessions=self.sessions, now=clock.now())
        return sent, 0.0 if sent else self.interval_seconds

    def close(self) -> None:
        """Release what the relay keeps open (its `PassWatch` client)."""
        close = getattr(self.passes_running, "close", None)
        if callable(close):
            close()


def relay_events_forever(
    *,
    relay: EventRelay,
    stop: threading.Event,
    on_published: Callable[[int], None] | None = None,
) -> None:
    """Run `relay.step()` until `stop` is set: `duban events relay`.

    A database that is briefly unreachable is logged and tried again after the relay's
    interval. Several relays may run: each event's id derives from its row id and Prefect
    drops an id it has seen, so a row two relays both send reaches the feed (and any
    trigger) once.
    """
    try:
        while not stop.is_set():
            try:
                sent, wait = relay.step()
            except OperationalError as exc:
                reason = str(exc.orig).splitlines()[0]
                logger.warning("event relay: database unavailable: %s", reason)
                sent, wait = 0, relay.interval_seconds
            if sent and on_published is not None:
                on_published(sent)
            if wait:
                stop.wait(wait)
    finally:
        relay.close()
