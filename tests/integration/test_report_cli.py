"""`duban report` end to end in a subprocess: files written, summary printed, errors in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.db import make_engine, make_sessionmaker, transaction, upgrade
from tests.report_builders import seed_plan

DUBAN = Path(sys.executable).with_name("duban")


@pytest.fixture
def cli_env(tmp_path: Path) -> tuple[dict[str, str], int]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        plan_id = seed_plan(session).plan_id
    engine.dispose()
    env = {**os.environ, "DUBAN_DATABASE_URL": url, "DUBAN_DATA_DIR": str(tmp_path / "data")}
    return env, plan_id


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(DUBAN), "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_command_writes_the_formats(
    cli_env: tuple[dict[str, str], int], tmp_path: Path
) -> None:
    env, plan_id = cli_env
    out = tmp_path / "out"
    done = run(
        env,
        "--plan",
        str(plan_id),
        "--quarter",
        "2021Q3",
        "--format",
        "docx",
        "--format",
        "md",
        "--out",
        str(out),
        "--as-of",
        "2021-09-30",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"duban-plan{plan_id}-2021Q3.docx",
        f"duban-plan{plan_id}-2021Q3.md",
    ]
    assert "本期应报送8次" in done.stdout.replace("\n", "")
    assert "按时报送率为57.1%" in done.stdout.replace("\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quarter", "2022Q1"], "不在计划年度 2021 年内"),
        (["--quarter", "2021Q3", "--year"], "只能选一个"),
        (["--format", "pdf"], "不支持的报告格式"),
        (["--as-of", "30/09/2021"], "无法识别的截止时间"),
    ],
)
def test_report_command_bad_input_is_one_chinese_line(
    cli_env: tuple[dict[str, str], int], tmp_path: Path, args: list[str], message: str
) -> None:
    env, plan_id = cli_env
    done = run(env, "--plan", str(plan_id), "--out", str(tmp_path / "x"), *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
