"""CLI mistakes name the real cause and the fix, never a traceback (issue 16).

`duban report --out` onto a file or into a read-only place, a read-only data directory,
and a SQLite URL in a directory that does not exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DUBAN = Path(sys.executable).with_name("duban")


def run(data_dir: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    env.pop("DUBAN_DATABASE_URL", None)
    if url is not None:
        env["DUBAN_DATABASE_URL"] = url
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable: chmod for a normal user, the immutable flag for root."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:  # noqa: S603
        pytest.skip("cannot make a directory read-only here (root without chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)  # noqa: S603


def test_report_out_onto_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "report.html"
    existing.write_text("keep me", encoding="utf-8")
    stderr = refused(run(tmp_path, "report", "--plan", "1", "--out", str(existing)), "已有的文件")
    assert "--out reports" in stderr
    assert existing.read_text(encoding="utf-8") == "keep me"


def test_report_out_into_a_read_only_directory(tmp_path: Path) -> None:
    target = tmp_path / "reports"
    target.mkdir()
    with read_only(target):
        refused(run(tmp_path, "report", "--plan", "1", "--out", str(target)), "不可写", "--out")
        refused(
            run(tmp_path, "report", "--plan", "1", "--out", str(target / "q3")),
            "无法创建报告目录",
            "只读",
            "--out",
        )
    assert not (target / "q3").exists()


def test_read_only_data_directory_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "db", "upgrade").returncode == 0
    with read_only(data):
        stderr = refused(run(data, "departments", "list"), "只读", "DUBAN_DATA_DIR")
    assert "是否已启动" not in stderr


def test_sqlite_url_in_a_missing_directory_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "duban.db"
    stderr = refused(
        run(tmp_path, "departments", "list", url=f"sqlite:///{missing}"),
        f"{missing.parent} 不存在",
        "路径是否写错",
    )
    assert "是否已启动" not in stderr
    assert not missing.parent.exists()  # nothing was created by looking
