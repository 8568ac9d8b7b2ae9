"""PDFs that would exhaust the reader: a stream bomb is refused at its memory cap, and a PDF
that reads too long is stopped, each as one Chinese line (models/plan_reader/pdf.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.errors import InputError
from models.plan_reader import pdf
from tests.hostile.pdf_bomb import write_pdf_bomb

REPO = Path(__file__).resolve().parents[2]


def test_a_stream_bomb_is_refused_at_the_memory_cap(tmp_path: Path) -> None:
    bomb = write_pdf_bomb(tmp_path / "bomb.pdf", size=1 << 30)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(InputError, match="PDF 解压后超出内存上限"):
        pdf.read_pdf(bomb)


def test_the_cli_refuses_the_bomb_in_one_line(tmp_path: Path) -> None:
    bomb = write_pdf_bomb(tmp_path / "bomb.pdf", size=1 << 30)
    result = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / "duban"), "plan", "parse", str(bomb)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DUBAN_DATA_DIR": str(tmp_path)},
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PDF 解压后超出内存上限" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pdf_that_reads_too_long_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = write_pdf_bomb(tmp_path / "slow.pdf", size=64 << 20)
    monkeypatch.setattr(pdf, "PDF_SECONDS", 0.001)
    with pytest.raises(InputError, match="PDF 读取超过"):
        pdf.read_pdf(bomb)
