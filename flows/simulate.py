"""Drive the real supervision flows over a span of days with a simulated clock.

Used by `duban simulate`, the demo and the acceptance tests: each working day the plan's
`supervise_plan` flow runs at 09:00 local time of that day (`as_of`), then `on_day` lets
simulated departments act (submit, ask for extensions) before the next day.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.calendar import WorkCalendar
from models.clock import resolve
from models.errors import InputError
from tasks.calendar_store import stored_calendar

DayCallback = Callable[[date], Awaitable[None] | None]


@dataclass(frozen=True)
class SimulatedDay:
    """One simulated day: the date, the pass's final state name and its message."""

    day: date
    state: str
    message: str


# Prefect's client waits 2 s (then 4, 8, ...) before retrying a 503 unless the answer carries
# a Retry-After header. The embedded SQLite server answers 503 "database is locked" when one of
# its own writers (event persister, log inserts) commits between a request's read and write;
# the conflict is over within milliseconds, so the shared clients retry the first
# SHORT_RETRIES times after RETRY_AFTER_SECONDS, doubling (0.1, 0.2, 0.4, 0.8 s), the last
# one with Prefect's own back-off (the number of attempts is Prefect's, unchanged).
RETRY_AFTER_SECONDS = 0.1
SHORT_RETRIES = 4
_RETRIES = "duban_503_retries"


def short_retry_after(response: Any) -> None:
    """Give a 503 answer a short `Retry-After`, doubling with each retry of the same request."""
    if response.status_code != 503 or "Retry-After" in response.headers:
        return
    attempt = int(response.request.extensions.get(_RETRIES, 0))
    response.request.extensions[_RETRIES] = attempt + 1
    if attempt < SHORT_RETRIES:
        response.headers["Retry-After"] = f"{RETRY_AFTER_SECONDS * 2**attempt:.1f}"


async def _aretry_after(response: Any) -> None:
    short_retry_after(response)


def _retry_503_soon(client: Any, hook: Callable[[Any], Any]) -> None:
    """Add `hook` to the response hooks of a Prefect client's httpx client, once."""
    http = getattr(client, "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if http is None or hooks is None or hook in hooks.get("response", []):
        return
    http.event_hooks = {**hooks, "response": [*hooks.get("response", []), hook]}


@asynccontextmanager
async def shared_prefect_clients() -> AsyncIterator[None]:
    """One Prefect API client (async and sync) for every flow run started inside.

    A top-level flow run outside a client context opens its own clients, each with a new
    TLS context, an API version check and, for the result store, a sync client of its own:
    about 60 ms of CPU per run here. A simulated year starts hundreds of runs in a row.
    Both clients retry a 503 after a short `Retry-After` (see `RETRY_AFTER_SECONDS`).
    """
    from prefect.context import AsyncClientContext, SyncClientContext

    with SyncClientContext.get_or_create() as sync_context:
        _retry_503_soon(sync_context.client, short_retry_after)
        async with AsyncClientContext.get_or_create() as async_context:
            _retry_503_soon(async_context.client, _aretry_after)
            yield


async def simulate(
    plan_id: int,
    start: date,
    until: date,
    on_day: DayCallback | None = None,
    *,
    batch: bool | None = None,
    workdays_only: bool = True,
    calendar: WorkCalendar | None = None,
) -> list[SimulatedDay]:
    """Run `supervise_plan` for each (working) day from `start` to `until` inclusive.

    After each pass `on_day(day)` is called (sync or async). Returns one entry per pass.
    Raises `InputError` when `until` is before `start`.
    """
    from flows.supervise import supervise_plan

    if until < start:
        raise InputError(f"模拟结束日期 {until} 早于开始日期 {start}。")
    calendar = calendar or stored_calendar()
    days: list[SimulatedDay] = []
    day = start
    async with shared_prefect_clients():
        while day <= until:
            if not workdays_only or calendar.is_workday(day):
                state = await supervise_plan(
                    plan_id=plan_id, as_of=resolve(day), batch=batch, return_state=True
                )
                days.append(
                    SimulatedDay(day=day, state=state.name or "", message=state.message or "")
                )
                if on_day is not None:
                    outcome = on_day(day)
                    if inspect.isawaitable(outcome):
                        await outcome
            day += timedelta(days=1)
    return days
