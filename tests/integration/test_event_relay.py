"""The event relay (`DUBAN_EVENT_PUBLISHER=relay`, `duban events relay`) on a real Prefect
server: a pass leaves its events to it, it waits while a pass runs and the backlog grows,
and then every event reaches the server's feed once."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from prefect import State, flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Completed, Running
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from duban.cli import app
from flows.supervise import supervise_plan
from models.calendar import default_calendar
from models.clock import resolve
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.outbox import DomainEvent
from models.policy import default_policy
from models.settings import get_settings
from tasks.assignment import start_supervision
from tasks.events import (
    EventRelay,
    PassWatch,
    feed_total,
    pass_running,
    pending_event_count,
    related,
    relay_events_forever,
)
from tests.builders import make_department, make_plan
from tests.prefect_server import PrefectServer, start_prefect_server

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

OCCURRED = resolve(date(2021, 5, 24))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server of this module's own: its feed holds only this module's events."""
    running = start_prefect_server(tmp_path_factory.mktemp("prefect"))
    try:
        with temporary_settings(updates={PREFECT_API_URL: running.api_url}):
            yield running
            drain_prefect_workers()
    finally:
        running.stop()


def drain_prefect_workers() -> None:
    """Flush the process-wide log and event workers the module's flow run started, as
    Prefect's own test harness does before it stops its server: left running against a
    stopped server they retry with random jitter, which later property tests' data
    generation sees as their own use of `random` (hypothesis: FlakyStrategyDefinition)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        with contextlib.suppress(RuntimeError):  # a worker that never started
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database of the module's own, one for the module's server: an event's id derives
    from its row id, so two databases on one server would share ids (and Prefect keeps the
    first event of an id)."""
    database = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'duban.db'}")
    upgrade(database)
    yield database
    database.dispose()


def in_feed(api_url: str, resource_prefix: str = "duban.") -> int:
    """How many duban events of the tests' years on resources `resource_prefix…` the
    server's feed holds."""
    since, until = resolve(date(2020, 1, 1)), resolve(date(2022, 12, 31))
    return feed_total(api_url, since=since, until=until, resource_prefix=resource_prefix)


def write_events(engine: Engine, tag: str, count: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(DomainEvent),
            [
                {
                    "type": "duban.checkin.requested",
                    "resource_id": f"duban.checkin.{tag}-{n}",
                    "related": [related("item", n, f"第{n + 1}项")],
                    "payload": {"n": n},
                    "occurred_at": OCCURRED,
                    "created_at": OCCURRED,
                }
                for n in range(count)
            ],
        )


@dataclass
class Clock:
    """A monotonic clock the test moves by hand."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_relay_waits_for_a_settled_backlog_and_no_running_pass(
    server: PrefectServer, engine: Engine
) -> None:
    sessions = make_sessionmaker(engine)
    tag = uuid.uuid4().hex[:8]
    ticks = Clock()
    running = [True]
    relay = EventRelay(
        sessions=sessions,
        interval_seconds=2.0,
        settle_seconds=0.5,
        max_delay_seconds=30.0,
        passes_running=lambda: running[0],
        monotonic=ticks,
    )
    assert relay.step() == (0, 2.0)  # nothing waiting: look again after the interval
    write_events(engine, tag, 3)
    assert relay.step() == (0, 0.5)  # first sight of the backlog: let it settle
    ticks.now = 0.5
    assert relay.step() == (0, 0.5)  # settled, but a pass is running
    write_events(engine, tag, 2)
    running[0] = False
    ticks.now = 1.0
    assert relay.step() == (0, 0.5)  # no pass, but the backlog grew since the last look
    assert pending_event_count(sessions) == 5
    assert in_feed(server.api_url, f"duban.checkin.{tag}") == 0
    ticks.now = 1.5
    assert relay.step() == (5, 0.0)  # settled and no pass: all of it goes
    assert pending_event_count(sessions) == 0
    deadline = time.monotonic() + 30
    while in_feed(server.api_url, f"duban.checkin.{tag}") < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert in_feed(server.api_url, f"duban.checkin.{tag}") == 5
    assert relay.step() == (0, 2.0)


def test_a_backlog_waits_no_longer_than_the_maximum_delay(
    server: PrefectServer, engine: Engine
) -> None:
    sessions = make_sessionmaker(engine)
    ticks = Clock(now=100.0)
    relay = EventRelay(
        sessions=sessions,
        settle_seconds=1.0,
        max_delay_seconds=10.0,
        passes_running=lambda: True,  # a pass that never ends (a stuck run)
        monotonic=ticks,
    )
    write_events(engine, uuid.uuid4().hex[:8], 4)
    assert relay.step() == (0, 1.0)
    ticks.now = 109.9
    assert relay.step() == (0, 1.0)
    ticks.now = 110.0
    assert relay.step() == (4, 0.0)
    assert pending_event_count(sessions) == 0


def test_pass_running_asks_the_server_for_running_supervision_passes(
    server: PrefectServer,
) -> None:
    @flow(name="supervise-plan")
    def stand_in() -> None:
        """Only its name matters: a run of it stands for a pass in progress."""

    async def scenario() -> list[bool]:
        seen = [await asyncio.to_thread(pass_running)]
        async with get_client() as client:
            run = await client.create_flow_run(stand_in, state=Running())
            seen.append(await asyncio.to_thread(pass_running))
            await client.set_flow_run_state(run.id, Completed(), force=True)
        seen.append(await asyncio.to_thread(pass_running))
        return seen

    assert asyncio.run(scenario()) == [False, True, False]


def test_a_pass_watch_keeps_one_client_and_drops_it_when_the_server_is_gone(
    server: PrefectServer,
) -> None:
    watch = PassWatch()
    assert watch.client is None
    assert watch() is False  # no pass running on this module's server
    assert watch.client is not None
    kept = watch.client
    assert watch() is False
    assert watch.client is kept  # the second look reuses the first look's client
    watch.close()
    assert watch.client is None
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert watch() is False  # unreachable: not running, as far as the relay can tell
        assert watch.client is None  # and no broken client kept for the next look


def test_the_relay_loop_publishes_a_settled_backlog_then_stops_and_closes_its_client(
    server: PrefectServer, engine: Engine
) -> None:
    sessions = make_sessionmaker(engine)
    tag = uuid.uuid4().hex[:8]
    write_events(engine, tag, 7)
    watch = PassWatch()
    stop = threading.Event()
    published: list[int] = []

    def on_published(sent: int) -> None:
        published.append(sent)
        stop.set()

    relay = EventRelay(sessions=sessions, settle_seconds=0.0, passes_running=watch)
    relay_events_forever(relay=relay, stop=stop, on_published=on_published)
    assert published == [7]
    assert pending_event_count(sessions) == 0
    assert watch.client is None  # the loop released the relay's client when it stopped
    deadline = time.monotonic() + 30
    while in_feed(server.api_url, f"duban.checkin.{tag}") < 7 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert in_feed(server.api_url, f"duban.checkin.{tag}") == 7


def test_a_pass_leaves_its_events_to_the_relay_which_publishes_all_of_them(
    server: PrefectServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = engine.url.render_as_string(False)
    sessions = make_sessionmaker(engine)
    assert pending_event_count(sessions) == 0  # the other tests drain what they write
    with sessions() as session:
        before = int(session.scalar(select(func.max(DomainEvent.id))) or 0)
    with transaction(sessions) as session:
        make_department(session, office=True)
        lead = make_department(session, "学会部")
        built = make_plan(
            session, items=[("搭建科技交流平台", [lead], []), ("推动科技助力企业", [lead], [])]
        )
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=OCCURRED,
            policy=default_policy(),
            calendar=default_calendar(),
        )
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    monkeypatch.setenv("DUBAN_EVENT_PUBLISHER", "relay")
    get_settings.cache_clear()
    try:

        async def one_pass() -> State[Any]:
            return await supervise_plan(
                built.plan.id, as_of=resolve(date(2021, 6, 1)), batch=True, return_state=True
            )

        state = asyncio.run(one_pass())
        assert state.is_completed()
        with sessions() as session:
            total = int(session.scalar(select(func.count()).select_from(DomainEvent)) or 0)
            written = int(session.scalar(select(func.count()).where(DomainEvent.id > before)) or 0)
        assert written > 2  # the plan's start, its assignments and the pass's changes
        assert pending_event_count(sessions) == written  # the pass published none of them
        env = {"DUBAN_DATABASE_URL": url, "PREFECT_API_URL": server.api_url}
        result = CliRunner().invoke(app, ["events", "relay", "--once"], env=env)
        assert result.exit_code == 0, result.output
        assert f"已发布事件 {written} 条，待发布 0 条。" in result.output
        assert pending_event_count(sessions) == 0
        deadline = time.monotonic() + 30
        while in_feed(server.api_url) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        assert in_feed(server.api_url) == total  # every row this database ever wrote
    finally:
        get_settings.cache_clear()
