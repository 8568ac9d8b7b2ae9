"""The supervision commands end to end on seed 002: start, status, errors, extend, assign."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DUBAN = str(REPO / ".venv/bin/duban")

pytestmark = pytest.mark.slow


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [DUBAN, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )


def test_supervision_commands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
    }
    assert _run(env, "init").returncode == 0
    assert _run(env, "departments", "import", "examples/departments.yaml").returncode == 0
    imported = _run(
        env,
        "plan",
        "import",
        "examples/changzhi_2021_work_points.txt",
        "--departments",
        "examples/departments.yaml",
        "--yes",
    )
    assert imported.returncode == 0, imported.stderr
    started = _run(env, "start", "1", "--as-of", "2021-05-24")
    assert started.returncode == 0, started.stderr
    assert "18 项任务" in started.stdout
    again = _run(env, "start", "1")
    assert again.returncode == 1
    assert "不能重复开始" in again.stderr
    assert "Traceback" not in again.stderr
    status = _run(env, "status", "--plan", "1", "--as-of", "2021-05-24")
    assert status.returncode == 0, status.stderr
    assert "未评定" in status.stdout
    early = _run(env, "supervise", "--plan", "1", "--as-of", "2021-01-04")
    assert early.returncode == 1
    assert "早于" in early.stderr and "Traceback" not in early.stderr
    unknown = _run(env, "item", "assign", "3", "不存在的部门")
    assert unknown.returncode == 1 and "找不到部门" in unknown.stderr
    assigned = _run(env, "item", "assign", "3", "科普部", "--support")
    assert assigned.returncode == 0, assigned.stderr
    assert "普及部（配合）" in assigned.stdout
    extended = _run(env, "checkin", "extend", "1", "--to", "2021-10-01", "--reason", "国庆后报送")
    assert extended.returncode == 0, extended.stderr
    assert "2021-10-08" in extended.stdout
    bad = _run(env, "checkin", "extend", "1", "--to", "2021-13-01", "--reason", "x")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
