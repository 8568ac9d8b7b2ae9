"""Smoke test: the report's HTML renders in headless Chromium (Debian's) to a non-blank PNG."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tasks.reporting.store import generate_report
from tests.report_builders import AS_OF, seed_plan

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.browser


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    return width, height, zlib.decompress(idat)


def test_report_html_renders_to_a_non_blank_png(session: Session, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (make browser)")
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("rendering is backend-independent; run once, on SQLite")
    seeded = seed_plan(session)
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=datetime(2021, 9, 30, 10, tzinfo=UTC),
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["html"],
    )
    shot = tmp_path / "report.png"
    completed = subprocess.run(  # noqa: S603
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,1800",
            Path(result.files["html"]).as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file(), completed.stderr.decode(errors="replace")[-2000:]
    width, height, raw = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1800)
    assert len(set(raw)) > 20
    assert raw.count(b"\xff") < len(raw) * 0.98
