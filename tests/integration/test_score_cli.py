"""`duban score` end to end in a subprocess: the ranking, one department's breakdown, the Excel
file, and each user mistake as one Chinese line with no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from models.db import make_engine, make_sessionmaker, transaction, upgrade
from tests.report_builders import seed_plan

DUBAN = Path(sys.executable).with_name("duban")


@pytest.fixture
def cli_env(tmp_path: Path) -> tuple[dict[str, str], int, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        seeded = seed_plan(session)
    engine.dispose()
    env = {
        **os.environ,
        "DUBAN_DATABASE_URL": url,
        "DUBAN_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "240",
    }
    tag = next(iter(seeded.departments))  # names carry a random tag: find it back
    return env, seeded.plan_id, tag


def score(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(DUBAN), "score", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_table_json_detail_and_excel(
    cli_env: tuple[dict[str, str], int, str], tmp_path: Path
) -> None:
    env, plan_id, _ = cli_env
    common = ["--plan", str(plan_id), "--quarter", "2021Q3", "--as-of", "2021-09-30"]
    table = score(env, *common)
    assert table.returncode == 0, table.stderr
    assert "部门考核得分" in table.stdout and "91.33" in table.stdout and "良好" in table.stdout
    data = json.loads(score(env, *common, "--format", "json").stdout)
    assert data["period"] == "2021Q3"
    assert [(row[0], row[2]) for row in data["rows"]] == [
        (1, 95.0),
        (2, 94.05),
        (3, 92.15),
        (4, 91.33),
    ]
    xuehui = next(row[1] for row in data["rows"] if row[1].startswith("学会部"))
    detail = score(env, *common, "--detail", xuehui)
    assert detail.returncode == 0, detail.stderr
    assert "逾期4个工作日" in detail.stdout and "96.13 × 负荷系数 0.95 = 91.33" in detail.stdout
    out = tmp_path / "考核.xlsx"
    written = score(env, "--plan", str(plan_id), "--year", "2021", "--as-of", "2021-09-30",
                    "--format", "xlsx", "--out", str(out))  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert str(out) in written.stdout.replace("\n", "")
    assert openpyxl.load_workbook(out).sheetnames == ["考核得分", "扣分明细"]
    default = score(env, *common, "--format", "xlsx", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "reports" / f"考核-计划{plan_id}-2021Q3.xlsx").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--year", "2020"], "不是该计划的年度"),
        (["--year", "twenty"], "四位年份"),
        (["--year", "2021", "--quarter", "2021Q3"], "只能选一个"),
        (["--quarter", "2021Q9"], "无法识别的报告期"),
        (["--format", "pdf"], "不支持的输出格式"),
        (["--detail", "没有这个部门"], "没有部门“没有这个部门”"),
        (["--as-of", "昨天"], "无法识别的截止时间"),
    ],
)
def test_mistakes_are_one_line(
    cli_env: tuple[dict[str, str], int, str], args: list[str], message: str
) -> None:
    env, plan_id, _ = cli_env
    done = score(env, "--plan", str(plan_id), "--as-of", "2021-09-30", *args)
    assert done.returncode == 1
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_an_excel_path_that_is_a_directory(
    cli_env: tuple[dict[str, str], int, str], tmp_path: Path
) -> None:
    env, plan_id, _ = cli_env
    done = score(
        env,
        "--plan",
        str(plan_id),
        "--as-of",
        "2021-09-30",
        "--format",
        "xlsx",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 1 and "是一个目录" in done.stderr + done.stdout
