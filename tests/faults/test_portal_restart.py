"""The form app killed during a POST, then restarted; the browser retries the same form.

The portal runs under uvicorn in a child process. The child is SIGKILLed while the POST's
transaction is about to commit, or right after it committed but before any response; a new
child serves the retry, which carries the same `submit_id`. The answer is stored once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.outbox import DomainEvent
from models.supervision import Checkin, Submission
from notifications.links import make_token
from notifications.sink import free_port
from tests.faults.children import REPO
from tests.faults.portal_child import SETTINGS
from tests.integration.relay_db import fresh_database
from tests.portal_rows import DUE, CheckinRows, make_checkin

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_database_url")
    yield from fresh_database(request.param, tmp_path)


class PortalProcess:
    """One portal child on a free port; `kill()` sends SIGKILL."""

    def __init__(self, url: str, mode: str, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"portal-{mode}-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "tests.faults.portal_child",
                    url,
                    str(self.port),
                    mode,
                    str(workdir / "marker"),
                ],
                cwd=REPO,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "portal never became healthy"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def counts(sessions: sessionmaker[Session], checkin_id: int) -> tuple[int, int, str]:
    with sessions() as session:
        subs = session.scalar(select(func.count()).where(Submission.checkin_id == checkin_id))
        events = session.scalar(
            select(func.count()).where(
                DomainEvent.type == "duban.checkin.submitted",
                DomainEvent.resource_id == f"duban.checkin.{checkin_id}",
            )
        )
        status = session.get_one(Checkin, checkin_id).status
    return int(subs or 0), int(events or 0), status


@pytest.mark.parametrize("mode", ["hang_before_commit", "hang_after_commit"])
def test_post_killed_then_retried_stores_the_answer_once(
    db: tuple[str, Engine], tmp_path: Path, mode: str
) -> None:
    url, engine = db
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        rows: CheckinRows = make_checkin(session)
    token = make_token(
        settings=SETTINGS,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=DUE,
    )
    first = PortalProcess(url, mode, tmp_path)
    try:
        with httpx.Client(base_url=first.base, timeout=30) as browser:
            page = browser.get(f"/c/{token}")
            assert page.status_code == 200
            cookies = dict(browser.cookies)
        one, two = (str(target.id) for target in rows.targets)
        form = {
            "csrf_token": hidden(page.text, "csrf_token"),
            "submit_id": hidden(page.text, "submit_id"),
            "status": "on_track",
            "narrative": "已举办学术活动120场次。",
            f"value_{one}": "120",
            f"value_{two}": "3",
        }
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(
                httpx.post, f"{first.base}/c/{token}", data=form, cookies=cookies, timeout=60
            )
            deadline = time.monotonic() + 60
            while not (tmp_path / "marker").exists():
                assert not pending.done(), "the POST finished before the child could be killed"
                assert time.monotonic() < deadline, first.log.read_text()
                time.sleep(0.02)
            first.kill()
            with pytest.raises(httpx.HTTPError):
                pending.result(timeout=30)
    finally:
        first.kill()
    stored_before_retry = counts(sessions, rows.checkin.id)
    assert stored_before_retry[0] == (1 if mode == "hang_after_commit" else 0)
    second = PortalProcess(url, "plain", tmp_path)
    try:
        retry = httpx.post(f"{second.base}/c/{token}", data=form, cookies=cookies, timeout=30)
        again = httpx.post(f"{second.base}/c/{token}", data=form, cookies=cookies, timeout=30)
    finally:
        second.kill()
    assert retry.status_code == 200, retry.text[:500]
    assert again.status_code == 200
    assert counts(sessions, rows.checkin.id) == (1, 1, "submitted")
