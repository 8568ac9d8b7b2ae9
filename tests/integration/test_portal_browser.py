"""A real headless Chromium fills and submits the check-in form served by a real uvicorn.

Chromium is driven through Debian's chromedriver over its W3C WebDriver HTTP API (httpx);
the portal runs in uvicorn on a free loopback port over a fresh SQLite database.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.settings import Settings
from models.supervision import Checkin, Submission
from notifications.links import form_url
from portal.app import create_app
from portal.server import RedactedAccessLog
from tests.portal_rows import DUE, CheckinRows, make_checkin

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian chromium and chromium-driver (/usr/bin/chromium, chromedriver)",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Any, *, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for a condition")


class WebDriver:
    """The few W3C WebDriver commands this test needs."""

    def __init__(self, base: str, profile: Path) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        options = {
            "binary": str(CHROMIUM),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
            ],
        }
        reply = self.call(
            "POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        )
        self.session = reply["sessionId"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = self.http.request(method, path, json=body)
        value = reply.json()["value"]
        assert reply.status_code == 200, value
        return value

    def go(self, url: str) -> None:
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def find(self, css: str) -> str:
        found = self.call(
            "POST", f"/session/{self.session}/element", {"using": "css selector", "value": css}
        )
        assert isinstance(found, dict) and len(found) == 1, found
        return str(next(iter(found.values())))

    def count(self, css: str) -> int:
        found = self.call(
            "POST", f"/session/{self.session}/elements", {"using": "css selector", "value": css}
        )
        return len(found)

    def type(self, css: str, text: str) -> None:
        self.call("POST", f"/session/{self.session}/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self.call("POST", f"/session/{self.session}/element/{self.find(css)}/click", {})

    def source(self) -> str:
        return str(self.call("GET", f"/session/{self.session}/source"))

    def quit(self) -> None:
        self.http.delete(f"/session/{self.session}")
        self.http.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [str(CHROMEDRIVER), f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return bool(httpx.get(f"{base}/status").json()["value"]["ready"])
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready)
        web = WebDriver(base, tmp_path / "chromium-profile")
        try:
            yield web
        finally:
            web.quit()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Settings, sessionmaker[Session], CheckinRows]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        rows = make_checkin(session)
    port = free_port()
    settings = Settings(secret_key="b" * 40, public_url=f"http://127.0.0.1:{port}", _env_file=None)
    app = RedactedAccessLog(
        create_app(settings, sessions, now=lambda: NOW, publish=lambda _s, _n: 0)
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            access_log=False,
            log_level="warning",
            lifespan="off",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    try:
        yield settings, sessions, rows
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def test_chromium_fills_and_submits_the_form(
    driver: WebDriver, served: tuple[Settings, sessionmaker[Session], CheckinRows]
) -> None:
    settings, sessions, rows = served
    url = form_url(
        settings=settings,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=DUE,
    )
    driver.go(url)
    assert "不少于200场次" in driver.source()
    driver.click('input[name="status"][value="at_risk"]')
    driver.type("#narrative", "已举办<b>学术活动</b>150场次")
    driver.type(f"#value_{rows.targets[0].id}", "150")
    driver.type("#problems", "场地紧张")
    driver.click("#submit")
    wait_until(lambda: "提交成功" in driver.source())
    assert "第1版" in driver.source()

    with sessions() as session:
        submission = session.scalars(
            select(Submission).where(Submission.checkin_id == rows.checkin.id)
        ).one()
        checkin = session.get_one(Checkin, rows.checkin.id)
    assert (submission.version, submission.status) == (1, "at_risk")
    assert submission.narrative == "已举办<b>学术活动</b>150场次"
    assert submission.values == {str(rows.targets[0].id): 150}
    assert checkin.status == "submitted"

    driver.go(url)
    wait_until(lambda: "以往报送" in driver.source())
    assert driver.count("#history b") == 0
    assert "&lt;b&gt;学术活动&lt;/b&gt;" in driver.source()
