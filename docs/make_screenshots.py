"""Make the README's screenshots with headless Chromium (Debian's `chromium` package).

Run after `make demo`: `.venv/bin/python docs/make_screenshots.py`. It starts the Prefect
server on the demo's data (`duban ui`), photographs the flow-runs page, photographs the
demo's Q3 report, and serves the portal on the demo's database (at the demo's last day,
2021-12-31) to photograph 素质中心's own page (本部门督办事项) through a department link
signed with the demo's settings; the PNGs land in `docs/images/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PORT = 4242
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def shoot(
    url: str, out: Path, *, width: int = 1400, height: int = 900, wait_ms: int = 15000
) -> None:
    """Save a screenshot of `url` to `out`, letting the page run for `wait_ms` first."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={wait_ms}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def wait_for(url: str, seconds: float = 90) -> None:
    """Poll `url` until it answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s")


DEMO_LAST_DAY = (2021, 12, 31)
DEPARTMENT = "素质中心"  # the demo's late reporter: rows still owed at the year's end


def department_page(out: Path) -> None:
    """Photograph `DEPARTMENT`'s own page as the portal serves it on the demo's database."""
    from datetime import datetime, timedelta

    import uvicorn
    from sqlalchemy import select

    from duban.runtime import open_store
    from models.clock import LOCAL_TZ, local_date
    from models.directory import Department
    from models.settings import Settings
    from notifications.links import make_department_token
    from notifications.sink import free_port
    from portal.app import create_app

    os.chdir(ROOT)  # the demo's settings (`duban.toml`, `.duban/`) are the checkout's
    port = free_port()
    settings = Settings(public_url=f"http://127.0.0.1:{port}")
    sessions = open_store(settings).sessions
    moment = datetime(*DEMO_LAST_DAY, 17, tzinfo=LOCAL_TZ)
    with sessions() as session:
        found = session.scalars(select(Department.id).where(Department.name == DEPARTMENT))
        department_id = found.first()
    if department_id is None:
        raise SystemExit(f"run `make demo` first: no department {DEPARTMENT} in the demo data")
    token = make_department_token(
        settings=settings,
        department_id=department_id,
        expires_on=local_date(moment) + timedelta(days=settings.link_valid_days_after_due),
    )
    app = create_app(settings, sessions, now=lambda: moment, publish=lambda _s, _n: 0)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        shoot(f"http://127.0.0.1:{port}/d/{token}", out, width=1000, height=1150, wait_ms=2000)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    """Photograph the Prefect UI on the demo's runs, the demo's Q3 report and a
    department's own page."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    report = ROOT / ".duban" / "reports" / "duban-plan1-2021Q3.html"
    if not report.is_file():
        raise SystemExit("run `make demo` first: no demo report found")
    shoot(report.as_uri(), IMAGES / "report-2021Q3.png", width=1000, height=1400, wait_ms=2000)
    department_page(IMAGES / "department-page.png")
    duban = Path(sys.executable).parent / "duban"
    server = subprocess.Popen(  # noqa: S603
        [str(duban), "ui", "--port", str(PORT)],
        cwd=ROOT,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{PORT}/api/health")
        shoot(f"http://127.0.0.1:{PORT}/runs", IMAGES / "prefect-runs.png")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshots written to {IMAGES}")


if __name__ == "__main__":
    main()
