"""Headless Chromium photographs the HTML report and a department's own page (issue 14).

On seed 002's story of `test_department_page` (SQLite; rendering does not depend on the
backend): the 2021 Q2 report is written as HTML and 学会部's page is served by the portal
under uvicorn on loopback. Chromium (Debian's, `make browser`) dumps each page's DOM — the
rows the page should show must be in it — and screenshots it to a PNG of the window's size
that is not blank. Without Chromium the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from models.settings import Settings
from notifications.links import make_department_token
from notifications.sink import free_port
from portal.app import create_app
from tasks.reporting.store import generate_report
from tests.integration.test_department_page import DATE3, World, at, world
from tests.integration.test_report_browser import png_pixels

__all__ = ["world"]  # the fixture of test_department_page, used here

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1000, 1600

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium(own_migrated_engine: Engine) -> str:
    if own_migrated_engine.dialect.name != "sqlite":
        pytest.skip("rendering is backend-independent; run once, on SQLite")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        message = "Debian chromium is not installed at /usr/bin/chromium (make browser)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: required in CI")
        pytest.skip(message)
    return CHROMIUM


def browse(chromium: str, url: str, profile: Path, shot: Path) -> str:
    """Chromium's DOM of `url` after it loaded, and its screenshot written to `shot`."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]
    dom = subprocess.run(  # noqa: S603
        [chromium, *flags, "--dump-dom", url], capture_output=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    done = subprocess.run(  # noqa: S603
        [chromium, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120
    )
    assert shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
    return dom.stdout.decode()


def assert_photographed(shot: Path) -> None:
    width, height, raw = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(set(raw)) > 20
    assert raw.count(b"\xff") < len(raw) * 0.98


def text_of(dom: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", dom, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", body))


@pytest.fixture
def served(world: World) -> Iterator[tuple[Settings, int]]:
    port = free_port()
    settings = Settings(secret_key="d" * 40, public_url=f"http://127.0.0.1:{port}", _env_file=None)
    app = create_app(settings, world.sessions, now=lambda: at(DATE3), publish=lambda _s, _n: 0)
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
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield settings, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_chromium_photographs_the_department_page(
    chromium: str, served: tuple[Settings, int], world: World, tmp_path: Path
) -> None:
    settings, port = served
    token = make_department_token(
        settings=settings, department_id=world.departments["学会部"], expires_on=DATE3
    )
    shot = tmp_path / "department-page.png"
    dom = browse(chromium, f"http://127.0.0.1:{port}/d/{token}", tmp_path / "profile", shot)
    text = text_of(dom)
    assert "本部门督办事项 · 学会部" in text
    assert "待报送（63项，其中逾期15项）" in text
    assert "主要负责人、督查室督办" in text and "红灯" in text
    assert "按时报送率" in text and "6.2%" in text  # 1 of 16 on time
    assert dom.count('class="row ') == 63
    # each row links through the page's token to its check-in (a redirect to its form)
    row_links = rf'href="http://127\.0\.0\.1:{port}/d/{re.escape(token)}/c/[0-9]+"'
    assert len(re.findall(row_links, dom)) == 63
    assert_photographed(shot)


def test_chromium_photographs_the_html_report(chromium: str, world: World, tmp_path: Path) -> None:
    with world.sessions() as session:
        result = generate_report(
            session=session,
            plan_id=world.plan_id,
            as_of=at(DATE3),
            generated_at=datetime(2021, 6, 30, 10, tzinfo=UTC),
            out_dir=tmp_path,
            quarter="2021Q2",
            formats=["html"],
            email=False,
        )  # not committed: the session closes without it
    shot = tmp_path / "report.png"
    dom = browse(chromium, Path(result.files["html"]).as_uri(), tmp_path / "profile", shot)
    text = text_of(dom)
    assert "长治市科学技术协会2021年工作要点" in text
    assert "学会部" in text and "普及部" in text
    assert_photographed(shot)
