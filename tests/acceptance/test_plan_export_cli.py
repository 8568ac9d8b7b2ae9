"""Export a stored plan to .xlsx, edit it as a supervisor would, import it back as a new version."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from duban.cli.plan_export import HEADER
from tests.acceptance.test_plan_fixtures import ROOT, run_duban

pytestmark = pytest.mark.slow


def test_export_edit_import_round_trip(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_duban(*args, cwd=ROOT, data_dir=tmp_path)

    assert run("init").returncode == 0
    imported = run("plan", "import", "examples/changzhi_2021_work_points.txt",
                   "--departments", "examples/departments.yaml", "--yes")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "已创建计划 1：长治市科学技术协会2021年工作要点" in imported.stdout  # one script
    out = tmp_path / "plan.xlsx"
    exported = run("plan", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "18 项任务" in exported.stdout
    again = run("plan", "export", "--out", str(out))
    assert again.returncode == 1 and "--force" in again.stderr

    workbook = load_workbook(out)
    sheet = workbook.worksheets[0]
    rows = [
        [("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert rows[0][0] == "长治市科学技术协会2021年工作要点"
    assert tuple(rows[1]) == HEADER
    assert rows[2][0].startswith("一、")
    by_number = {row[0]: row for row in rows[3:] if row[1]}
    assert len(by_number) == 18
    assert by_number["4"][1].startswith("搭建高水平科技开放交流平台。")
    assert by_number["1"][2] == "机关党支部、科协系统社会组织行业党委、办公室"

    for row in sheet.iter_rows(min_row=3):
        if row[0].value == "2":
            row[2].value = "普及部"
        if row[0].value == "3":
            row[4].value = "2021年9月底前"
    workbook.save(out)

    declined = run("plan", "import", str(out))
    assert declined.returncode == 0, declined.stderr
    assert "修改 2 项" in declined.stdout and "未应用变更" in declined.stdout
    applied = run("plan", "import", str(out), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "已更新计划 1" in applied.stdout
    listed = run("plan", "list")
    assert "共 1 个计划" in listed.stdout
    shown = run("plan", "show", "1")
    assert shown.returncode == 0
    line_2 = next(line for line in shown.stdout.splitlines() if line.startswith("│ 2 "))
    assert "普及部" in line_2 and "学会部" not in line_2
    assert "长治市科学技术协会" in shown.stdout  # the organisation survived the table

    round_trip = tmp_path / "again.xlsx"
    assert run("plan", "export", "1", "--out", str(round_trip)).returncode == 0
    reread = load_workbook(round_trip).worksheets[0]
    third = next(row for row in reread.iter_rows(values_only=True) if row[0] == "3")
    assert third[4] == "2021年9月底前"
    assert "完成时限" not in str(third[1])
