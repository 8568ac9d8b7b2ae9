"""`duban calendar …` and the calendar guards of `duban start`, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DUBAN = str(REPO / ".venv/bin/duban")
EXAMPLE = REPO / "examples" / "calendar-2027.example.yaml"

pytestmark = pytest.mark.slow


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [DUBAN, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )


def _edited_example(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "calendar-2027.yaml"
    path.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("placeholder:")),
        encoding="utf-8",
    )
    return path


def test_calendar_import_show_and_start_guards(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
        "COLUMNS": "200",
    }
    production = {
        **env,
        "DUBAN_ENV": "production",
        "DUBAN_SECRET_KEY": "0123456789abcdef0123456789abcdef",
        "DUBAN_SMTP_EMBEDDED": "false",
    }
    assert _run(env, "init").returncode == 0
    none_yet = _run(env, "status")
    assert none_yet.returncode == 1 and "还没有导入任何计划" in none_yet.stderr
    assert _run(env, "departments", "import", "examples/departments.yaml").returncode == 0
    plan_2027 = tmp_path / "plan-2027.txt"
    source = (REPO / "examples" / "changzhi_2021_work_points.txt").read_text(encoding="utf-8")
    plan_2027.write_text(source.replace("2021", "2027"), encoding="utf-8")
    imported = _run(env, "plan", "import", str(plan_2027), "--departments",
                    "examples/departments.yaml", "--yes")  # fmt: skip
    assert imported.returncode == 0, imported.stderr

    shown = _run(env, "calendar", "show", "2027")
    assert shown.returncode == 0 and "仅按周末" in shown.stdout

    refused = _run(production, "start", "--as-of", "2027-01-04")
    assert refused.returncode == 1
    assert "没有2027年的节假日数据" in refused.stderr and "--weekends-only" in refused.stderr
    assert "Traceback" not in refused.stderr
    started = _run(production, "start", "--as-of", "2027-01-04", "--weekends-only")
    assert started.returncode == 0, started.stderr
    assert "已按 --weekends-only" in started.stdout

    placeholder = _run(env, "calendar", "import", str(EXAMPLE))
    assert placeholder.returncode == 1 and "占位" in placeholder.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "year: 2027\nholidays:\n  - {name: 春节, dates: [2026-02-08]}\n"
        "workdays:\n  - {name: 调休, dates: [2027-02-14]}\nextra: 1\n",
        encoding="utf-8",
    )
    rejected = _run(env, "calendar", "import", str(bad))
    assert rejected.returncode == 1
    lines = [line for line in rejected.stderr.splitlines() if "bad.yaml:" in line]
    assert len(lines) == 2, rejected.stderr
    assert "bad.yaml:3:" in lines[1] or "bad.yaml:3:" in lines[0]
    assert any("未知的键“extra”" in line for line in lines)
    assert "2027年工作日历（来源：无节假日数据" in _run(env, "calendar", "show", "2027").stdout

    edited = _edited_example(tmp_path)
    unconfirmed = _run(env, "calendar", "import", str(edited))
    assert unconfirmed.returncode == 0, unconfirmed.stderr
    assert "条报送的截止日期将变化" in unconfirmed.stdout
    assert "2027-04-25（周日）" in unconfirmed.stdout
    assert "未应用变更" in unconfirmed.stdout
    before = _run(env, "checkin", "list")
    assert before.returncode == 0 and "2027-04-25" not in before.stdout

    confirmed = _run(env, "calendar", "import", str(edited), "--yes")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "已导入" in confirmed.stdout and "条报送已改期" in confirmed.stdout
    after = _run(env, "checkin", "list")
    assert "2027-04-25" in after.stdout
    show = _run(env, "calendar", "show", "2027")
    assert "来源：已导入的工作日历" in show.stdout
    assert "春节" in show.stdout and "2027-02-14（周日）" in show.stdout
    again = _run(env, "calendar", "import", str(edited), "--yes")
    assert "未改动" in again.stdout


def test_start_on_a_past_year_says_so_and_status_picks_the_only_plan(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
    }
    assert _run(env, "init").returncode == 0
    assert _run(env, "plan", "import", "examples/changzhi_2021_work_points.txt",
                "--departments", "examples/departments.yaml", "--yes").returncode == 0  # fmt: skip
    past = _run(env, "start")
    assert past.returncode == 1
    assert "该年度已经结束" in past.stderr and "--as-of" in past.stderr
    assert "duban simulate" in past.stderr
    status = _run(env, "status", "--as-of", "2021-05-24")
    assert status.returncode == 0, status.stderr
    assert "未评定" in status.stdout
    assert "尚未开始督办" in status.stdout
    nothing = _run(env, "checkin", "list")
    assert nothing.returncode == 0 and "还没有报送：运行 duban start 1" in nothing.stdout
    second = tmp_path / "plan-2022.txt"
    source = (REPO / "examples" / "changzhi_2021_work_points.txt").read_text(encoding="utf-8")
    second.write_text(source.replace("2021", "2022"), encoding="utf-8")
    assert _run(env, "plan", "import", str(second), "--yes").returncode == 0
    several = _run(env, "status")
    assert several.returncode == 1
    assert "共有 2 个计划" in several.stderr and "--plan" in several.stderr
