"""A real Prefect server as a subprocess on 127.0.0.1, on SQLite or PostgreSQL, for tests.

`start_prefect_server()` starts `prefect server start` on a free port with its own
PREFECT_HOME (analytics off), waits for `/api/health` and returns a `PrefectServer` whose
`client_env` points a worker or CLI subprocess at it; `stop()` ends the whole process group.
`fresh_postgres_database()` creates and drops a throw-away database for the server.
`PrefectServer.api()` is a raw request to its REST API that waits out the 503 answers a
busy SQLite server gives (Prefect's own client retries them the same way).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get(
    "DUBAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

PREFECT_CLI = (sys.executable, "-m", "prefect")
QUIET_SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}
# How long `PrefectServer.api()` retries a 503: the server answers 503 "Service Unavailable"
# when its SQLite database is locked (by its own services, a worker, a deploy), and asks the
# client to retry. One CI run saw it on a PATCH right after `duban deploy`.
RETRY_503_FOR = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_problem() -> str | None:
    """None if the test PostgreSQL server answers, else the first line of the error."""
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except OperationalError as exc:
        return str(exc.orig).splitlines()[0]
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable; fail instead under CI, where
    PostgreSQL is part of the set-up."""
    import pytest

    problem = postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "prefect") -> Iterator[str]:
    """Create an empty PostgreSQL database; yield its `postgresql+asyncpg://` URL; drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class PrefectServer:
    """A running Prefect server subprocess and the environment a client needs to use it."""

    api_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    client_env: dict[str, str] = field(default_factory=dict)

    def api(
        self, method: str, path: str, *, json: Any = None, timeout: float = 60.0
    ) -> httpx.Response:
        """`method path` on the REST API (`path` after `/api`), retrying 503 answers with a
        growing pause for up to `RETRY_503_FOR` seconds; any other answer is returned as is."""
        deadline = time.monotonic() + RETRY_503_FOR
        pause = 0.2
        while True:
            response = httpx.request(method, f"{self.api_url}{path}", json=json, timeout=timeout)
            if response.status_code != 503 or time.monotonic() + pause > deadline:
                return response
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines the server wrote (for assertion messages)."""
        if not self.log_path.exists():
            return ""
        text_lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text_lines[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


def client_environment(api_url: str, home: Path) -> dict[str, str]:
    """Environment for a subprocess (worker, `prefect deploy`) that talks to `api_url`."""
    env = dict(os.environ)
    env.update(QUIET_SERVER_ENV)
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_HOME"] = str(home)
    return env


def start_prefect_server(
    workdir: Path,
    *,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
    port: int | None = None,
) -> PrefectServer:
    """Start `prefect server start` on 127.0.0.1 and `port` (None: a free one); wait until healthy.

    `database_url` is Prefect's `PREFECT_API_DATABASE_CONNECTION_URL` (None: SQLite under
    `workdir`). Pass the port of a server that was stopped to restart it at the same API URL.
    Raises RuntimeError with the server's log tail if it does not come up.
    """
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = client_environment(api_url, home)
    env.pop("PREFECT_API_URL")
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
        database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    )
    env.update(extra_env or {})
    log_path = workdir / f"prefect-server-{port}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [*PREFECT_CLI, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PrefectServer(
        api_url=api_url,
        home=home,
        process=process,
        log_path=log_path,
        client_env=client_environment(api_url, home),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prefect server exited early:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"Prefect server not healthy after {timeout:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def postgres_prefect_server(workdir: Path, prefix: str) -> Iterator[PrefectServer]:
    """A Prefect server subprocess on a fresh PostgreSQL database named `prefix_…`, stopped
    and dropped afterwards; skips (fails under CI) without PostgreSQL."""
    require_postgres()
    with fresh_postgres_database(prefix) as url:
        server = start_prefect_server(workdir, database_url=url)
        try:
            yield server
        finally:
            server.stop()
