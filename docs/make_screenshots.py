"""Make the README's screenshots with headless Chromium (Debian's `chromium` package).

Run after `make demo`: `.venv/bin/python docs/make_screenshots.py`. It starts the Prefect
server on the demo's data (`duban ui`), photographs the flow-runs page, and photographs the
demo's Q3 report; the PNGs land in `docs/images/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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


def main() -> None:
    """Photograph the Prefect UI on the demo's runs and the demo's Q3 report."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    report = ROOT / ".duban" / "reports" / "duban-plan1-2021Q3.html"
    if not report.is_file():
        raise SystemExit("run `make demo` first: no demo report found")
    shoot(report.as_uri(), IMAGES / "report-2021Q3.png", width=1000, height=1400, wait_ms=2000)
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
