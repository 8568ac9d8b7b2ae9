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


@asynccontextmanager
async def shared_prefect_clients() -> AsyncIterator[None]:
    """One Prefect API client (async and sync) for every flow run started inside.

    A top-level flow run outside a client context opens its own clients, each with a new
    TLS context, an API version check and, for the result store, a sync client of its own:
    about 60 ms of CPU per run here. A simulated year starts hundreds of runs in a row.
    """
    from prefect.context import AsyncClientContext, SyncClientContext

    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
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
