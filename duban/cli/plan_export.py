"""`duban plan export PLAN --out plan.xlsx`: a stored plan as a 任务分工表 a supervisor fills in.

The sheet uses the layout `models.plan_reader.xlsx` reads (title row; header 序号 / 工作任务 /
牵头单位 / 配合单位 / 完成时限; a row holding only `一、…` opens a section), so the edited file
imports back with `duban plan import plan.xlsx` as a new version of the same plan (the diff is
shown and applied on confirmation). Empty 牵头单位 cells are highlighted.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from duban.cli.output import console
from models.errors import InputError
from models.plan import Item, Plan

HEADER = ("序号", "工作任务", "牵头单位", "配合单位", "完成时限", "时序进度", "考核要点")
_DEADLINE = re.compile(r"\n?完成时限：(?P<deadline>[^\n]*)$")
_WIDTHS = (8, 90, 28, 28, 16, 40, 30)
_NOTES = (
    "填写说明",
    "1. 在“牵头单位”“配合单位”列填写部门名称，多个部门用顿号（、）分隔；"
    "黄色格子是尚无牵头部门的任务。",
    "2. 可修改任务文字、“完成时限”“时序进度”（如 3月：召开会议；4月—12月：推进落实）"
    "和“考核要点”；不要改动第一行标题和表头，章节行（如“一、……”）只占一行。",
    "3. 改好后运行：duban plan import 本文件 —— 会列出与已导入版本的差异，确认后才应用。",
    "4. 表格不含实施阶段：重新导入时保留计划原有的阶段。",
)


def _task_and_deadline(item: Item) -> tuple[str, str]:
    """The 工作任务 cell (title and body, as the reader splits them) and the 完成时限 cell."""
    body = item.body
    match = _DEADLINE.search(body)
    deadline = str(item.deadline.get("text", "")) if item.deadline else ""
    if match is not None:
        deadline = deadline or match["deadline"].strip()
        body = body[: match.start()].rstrip()
    return (f"{item.title}。{body}" if body else item.title), deadline


def _milestones(item: Item) -> str:
    """The 时序进度 cell: `period：output` per milestone, as the reader reads them back."""
    parts = []
    for milestone in item.milestones:
        if isinstance(milestone, dict) and milestone.get("text"):
            output = str(milestone.get("output", ""))
            parts.append(f"{milestone['text']}：{output}" if output else f"{milestone['text']}：")
    return "；".join(parts)


def plan_rows(plan: Plan, departments: dict[int, dict[str, list[str]]]) -> list[list[str]]:
    """The sheet's rows: title, header, then each section row followed by its items.

    `plan` must have its sections and items loaded; `departments[item_id][role]` lists the
    names assigned to an item as `lead` / `support`.
    """
    rows: list[list[str]] = [[plan.title], list(HEADER)]
    sections = {section.id: section for section in plan.sections}
    current: int | None = None
    for item in plan.items:
        if item.section_id != current and item.section_id in sections:
            section = sections[item.section_id]
            rows.append([f"{section.number}、{section.title}"])
        current = item.section_id
        task, deadline = _task_and_deadline(item)
        roles = departments.get(item.id, {})
        rows.append(
            [
                item.number,
                task,
                "、".join(roles.get("lead", [])),
                "、".join(roles.get("support", [])),
                deadline,
                _milestones(item),
                item.criteria,
            ]
        )
    return rows


def write_workbook(rows: list[list[str]], out: Path) -> None:
    """Write `rows` to a new .xlsx at `out` (first sheet the table, second the notes)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    for default in list(workbook.worksheets):
        workbook.remove(default)
    sheet = workbook.create_sheet("任务分工表")
    missing = PatternFill("solid", fgColor="FFF3B0")
    for row in rows:
        sheet.append(row)
    sheet["A1"].font = Font(bold=True, size=14)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for index, width in enumerate(_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for number, row in enumerate(rows[2:], start=3):
        if len(row) == 1:
            sheet.cell(number, 1).font = Font(bold=True)
            continue
        sheet.cell(number, 2).alignment = Alignment(wrap_text=True, vertical="top")
        if not row[2]:
            sheet.cell(number, 3).fill = missing
    sheet.freeze_panes = "A3"
    notes = workbook.create_sheet("填写说明")
    for line in _NOTES:
        notes.append([line])
    notes.column_dimensions["A"].width = 110
    workbook.save(out)


def export_command(
    plan_ref: str | None = typer.Argument(None, help="计划编号或标题（只有一个计划时可省略）"),
    out: Path = typer.Option(Path("plan.xlsx"), "--out", "-o", help="输出的 Excel 文件"),
    force: bool = typer.Option(False, "--force", help="覆盖已存在的文件"),
) -> None:
    """把已导入的计划导出为 Excel 任务分工表（可填写牵头/配合部门、完成时限后重新导入）。"""
    from duban.runtime import open_store
    from tasks.plan_diff import assigned_departments
    from tasks.plan_import import get_plan

    if out.suffix.lower() != ".xlsx":
        raise InputError("输出文件应以 .xlsx 结尾", path=out)
    if out.exists() and not force:
        raise InputError("文件已存在；换一个文件名，或加 --force 覆盖", path=out)
    store = open_store()
    with store.sessions() as session:
        plan = get_plan(session=session, plan_ref=plan_ref, option="duban plan export 编号")
        rows = plan_rows(plan, assigned_departments(session=session, plan_id=plan.id))
        title, items = plan.title, len(plan.items)
    write_workbook(rows, out)
    empty = sum(1 for row in rows[2:] if len(row) > 1 and not row[2])
    console.print(f"已导出「{title}」{items} 项任务到 {out}。", markup=False)
    if empty:
        console.print(
            f"其中 {empty} 项尚无牵头部门（表中黄色格子），填好后运行：duban plan import {out}"
        )
