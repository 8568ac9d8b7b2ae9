"""`relay_events_forever`'s loop on its own: a database that is briefly unreachable is
logged and tried again after the relay's interval, and the loop ends on its stop event."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from models.db import make_engine, make_sessionmaker, upgrade
from tasks.events import EventRelay, relay_events_forever


class RecordingStop(threading.Event):
    """A stop event whose waits are recorded instead of slept; `then` runs at each wait and
    the event sets itself after `waits` of them."""

    def __init__(self, waits: int, then: list[object]) -> None:
        super().__init__()
        self.waited: list[float | None] = []
        self._waits = waits
        self._then = then

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(timeout)
        if self._then:
            action = self._then.pop(0)
            if callable(action):
                action()
        if len(self.waited) >= self._waits:
            self.set()
        return self.is_set()


def test_an_unreachable_database_is_logged_and_retried_after_the_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-yet"
    engine = make_engine(f"sqlite:///{folder / 'duban.db'}")  # its folder does not exist
    closed: list[bool] = []

    class Watch:
        def __call__(self) -> bool:
            raise AssertionError("nothing is waiting: no need to ask Prefect")

        def close(self) -> None:
            closed.append(True)

    relay = EventRelay(
        sessions=make_sessionmaker(engine), interval_seconds=3.0, passes_running=Watch()
    )

    def database_appears() -> None:
        folder.mkdir()
        upgrade(engine)

    stop = RecordingStop(waits=2, then=[database_appears])
    with caplog.at_level(logging.WARNING, logger="tasks.events"):
        relay_events_forever(relay=relay, stop=stop)
    assert stop.waited == [3.0, 3.0]  # the failed look, then an empty one: both wait the interval
    failures = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(failures) == 1
    assert "unable to open database file" in failures[0]
    assert closed == [True]  # the loop closes what the relay keeps open when it stops
    engine.dispose()
