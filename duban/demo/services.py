"""The demo's local services: the embedded SMTP sink and the check-in form on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from models.settings import Settings
from notifications.sink import MailSink, free_port
from portal.app import create_app
from portal.security import RateLimits
from portal.server import RedactedAccessLog
from tasks.events import publish_pending_events


@dataclass
class SimClock:
    """The simulated clock shared with the form app's thread (the one clock seam it reads)."""

    moment: datetime

    def now(self) -> datetime:
        """The simulated now."""
        return self.moment


@dataclass(frozen=True)
class Services:
    """Where the running services listen."""

    smtp_port: int
    portal_url: str
    mail_store: Path


def _publish(sessions: sessionmaker[Session], now: datetime) -> object:
    return publish_pending_events(sessions=sessions, now=now)


@contextmanager
def local_services(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    now: Callable[[], datetime],
    smtp_port: int,
    portal_port: int,
) -> Iterator[Services]:
    """Run the SMTP sink and the form app (uvicorn in a thread) for the block's duration."""
    sink = MailSink(path=settings.mail_store, port=smtp_port)
    # Every simulated department answers from 127.0.0.1: only the per-link limits apply.
    limits = RateLimits(per_address=1_000_000)
    app = RedactedAccessLog(
        create_app(settings, sessions, now=now, publish=_publish, limits=limits)
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=portal_port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="duban-portal", daemon=True)
    with sink:
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the check-in form did not start")
            time.sleep(0.05)
        try:
            yield Services(
                smtp_port=sink.port,
                portal_url=f"http://127.0.0.1:{portal_port}",
                mail_store=settings.mail_store,
            )
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def start_prefect_server() -> Callable[[], None]:
    """Start Prefect's temporary server (the one the first flow run would start) on a thread
    now, and return the function that waits for it to answer.

    The server takes 10-20 s to import, migrate a fresh database and start its services; the
    demo prepares its own database, the mail sink and the form meanwhile. Does nothing (the
    returned function returns at once) when PREFECT_API_URL names a server."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return lambda: None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as error:  # re-raised by wait()
            failure.append(error)

    thread = threading.Thread(target=start, name="duban-prefect-server", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return wait


def pick_ports() -> tuple[int, int]:
    """Two free loopback ports: SMTP sink and form app."""
    return free_port(), free_port()


def serve_form(settings: Settings, moment: datetime) -> None:
    """Serve the check-in form on the configured address with the clock frozen at `moment`
    (the demo's end), until interrupted. Events stay pending: no Prefect server is running."""
    from duban.runtime import open_store

    store = open_store(settings)
    app = RedactedAccessLog(
        create_app(settings, store.sessions, now=lambda: moment, publish=_leave_pending)
    )
    uvicorn.run(
        app,
        host=settings.portal_host,
        port=settings.portal_port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


def _leave_pending(sessions: sessionmaker[Session], now: datetime) -> int:  # noqa: ARG001
    return 0
