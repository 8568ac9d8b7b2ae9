"""Task-division tables (任务分工表) -> `ParsedPlan`, from .xlsx or from a .docx table.

The header row is found by its names (序号 / 工作任务 / 牵头单位 / 配合单位 / 完成时限);
merged cells carry their value into every cell they cover; a row holding only `一、…` opens
a section.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from pydantic import ValidationError

from models.errors import InputError
from models.plan_reader.archive import MAX_CELLS, MAX_ROWS, check_counts, open_office_archive
from models.plan_reader.deadlines import item_schedule
from models.plan_reader.normalise import normalise_line
from models.plan_reader.phases import default_phases
from models.plan_reader.structure import split_title
from models.plan_reader.targets import find_targets
from models.plan_reader.units import split_units
from models.plan_schema import ParsedItem, ParsedPlan, ParsedSection, ParseWarning

_COLUMNS: dict[str, re.Pattern[str]] = {
    "number": re.compile(r"^(?:序号|序號|编号|編號|No\.?)$", re.I),
    "task": re.compile(
        r"工作任务|工作任務|重点任务|重點任務|主要任务|任务内容|工作内容|工作事项|任务$|任務$"
    ),
    "lead": re.compile(r"[牵牽][头頭]|主[责責]"),
    "resp": re.compile(r"[责責]任[单單部]|[责責]任[处處]室"),
    "support": re.compile(r"配合|[协協][办辦]|参与|參與"),
    "milestones": re.compile(
        r"时序进度|時序進度|任务分解|任務分解|进度安排|進度安排|工作步骤|工作步驟|推进计划|推進計劃"
        r"|节点安排|節點安排|阶段目标|階段目標"
    ),
    "criteria": re.compile(r"考核|验收标准|驗收標準|评价标准|評價標準|预期成果|預期成果"),
    "deadline": re.compile(r"时限|時限|时间|時間|节点|節點|期限"),
}
_SECTION_ROW = re.compile(r"^([一二三四五六七八九十]{1,3})、\s*(.+)$")
_YEAR = re.compile(r"((?:19|20)\d\d)\s*年")

Row = list[str]


def _header(rows: list[Row]) -> tuple[int, dict[str, int]] | None:
    for index, row in enumerate(rows[:30]):
        columns: dict[str, int] = {}
        for col, cell in enumerate(row):
            name = cell.replace(" ", "").replace("\n", "")
            for key, pattern in _COLUMNS.items():
                if key not in columns and name and pattern.search(name):
                    columns[key] = col
                    break
        if "task" in columns and ({"lead", "resp", "number"} & columns.keys()):
            return index, columns
    return None


def looks_like_task_table(rows: list[Row]) -> bool:
    """True when one of the first rows is a 任务分工表 header."""
    return _header(rows) is not None


def table_to_plan(
    rows: list[Row],
    *,
    source_name: str,
    title: str,
    default_year: int | None,
) -> ParsedPlan:
    """Build a plan from table rows (merged cells already filled); raise `InputError` if none.

    With only a 责任单位 column, every unit listed leads (`document.first_unit_leads` applies
    the convention that the first listed leads, when the user says so).
    """
    found = _header(rows)
    if found is None:
        raise InputError("表格中找不到“工作任务/牵头单位”等表头", path=source_name)
    start, columns = found
    lead_col = columns.get("lead", columns.get("resp"))
    support_col = columns.get("support", columns.get("resp") if "lead" in columns else None)
    year_match = _YEAR.search(title) or _YEAR.search(source_name)
    year = int(year_match.group(1)) if year_match else default_year
    sections: list[ParsedSection] = []
    items: list[ParsedItem] = []
    warnings: list[ParseWarning] = []
    seen_tasks: set[tuple[str, str]] = set()

    def cell(row: Row, key: int | None) -> str:
        return row[key].strip() if key is not None and key < len(row) else ""

    for offset, row in enumerate(rows[start + 1 :], start=start + 2):
        filled = [value for value in row if value.strip()]
        if not filled:
            continue
        section_match = _SECTION_ROW.match(filled[0])
        if section_match and len(set(filled)) == 1:
            sections.append(ParsedSection(number=section_match[1], title=section_match[2][:2000]))
            continue
        task = cell(row, columns["task"])
        if not task:
            continue
        number = cell(row, columns.get("number")).removesuffix(".0") or str(len(items) + 1)
        if (number, task) in seen_tasks:
            continue
        seen_tasks.add((number, task))
        item_title, body = split_title(task)
        deadline_text = cell(row, columns.get("deadline"))
        if deadline_text:
            body = f"{body}\n完成时限：{deadline_text}".strip()
        deadline, milestones, schedule_warnings = item_schedule(
            deadline_text=deadline_text,
            milestone_text=cell(row, columns.get("milestones")),
            year=year,
            number=number,
            line=offset,
        )
        warnings.extend(schedule_warnings)
        lead = split_units(cell(row, lead_col))
        support = split_units(cell(row, support_col)) if support_col != lead_col else []
        if not lead:
            warnings.append(
                ParseWarning(line=offset, reason=f"任务 {number} 未写明牵头单位，需指定")
            )
        if not item_title:
            continue
        items.append(
            ParsedItem(
                number=number[:20],
                section=sections[-1].number if sections else None,
                title=item_title[:2000],
                body=body,
                lead=lead,
                support=support,
                targets=find_targets(task),
                line=offset,
                deadline=deadline,
                milestones=milestones,
                criteria=cell(row, columns.get("criteria"))[:2000],
            )
        )
    if not items:
        raise InputError("表格中没有任务行", path=source_name)
    if year is None:
        raise InputError("找不到计划年度（标题或文件名中没有“20XX年”）", path=source_name)
    if year_match is None:
        warnings.insert(0, ParseWarning(line=0, reason=f"文档中找不到年度，按 {year} 年处理"))
    warnings.append(ParseWarning(line=0, reason="文档未写明实施阶段，已使用默认阶段"))
    try:
        return ParsedPlan(
            title=" ".join(title.split())[:300] or Path(source_name).stem,
            year=year,
            sections=sections,
            items=items,
            phases=default_phases(year),
            warnings=warnings,
        )
    except ValidationError as exc:
        from models.plan_reader.document import chinese_error

        reason = chinese_error(exc.errors()[0])
        raise InputError(f"计划内容无效：{reason}", path=source_name) from exc


def read_xlsx(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """Read the first sheet that holds a task table; raise `InputError` for a bad workbook.

    Declared sizes, row and cell counts are checked before openpyxl loads it (see
    `models.plan_reader.archive`).
    """
    with open_office_archive(path, kind=".xlsx", required="xl/workbook.xml") as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        check_counts(archive, path, sheets, {b"row": MAX_ROWS, b"c": MAX_CELLS})
    try:
        return _read_workbook(path, default_year=default_year)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"无法读取 Excel 文件（文件已损坏：{type(exc).__name__}）", path=path
        ) from exc


def _read_workbook(path: Path, *, default_year: int | None) -> ParsedPlan:
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:
        raise InputError(
            f"无法打开 Excel 文件（文件已损坏：{type(exc).__name__}）", path=path
        ) from exc
    for sheet in workbook.worksheets:
        grid: list[Row] = [
            [normalise_line("" if value is None else str(value)) for value in row]
            for row in sheet.iter_rows(values_only=True)
        ]
        for merged in sheet.merged_cells.ranges:
            top = grid[merged.min_row - 1][merged.min_col - 1]
            for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
                for c in range(merged.min_col - 1, min(merged.max_col, len(grid[r]))):
                    grid[r][c] = top
        if looks_like_task_table(grid):
            title = next(
                (row[0] for row in grid[:5] if row and row[0] and len(set(filter(None, row))) == 1),
                sheet.title,
            )
            return table_to_plan(
                grid, source_name=path.name, title=title, default_year=default_year
            )
    raise InputError("工作簿中找不到任务分工表（需要“工作任务”“牵头单位”等表头）", path=path)
