"""`duban score`: each department's 考核 score for a quarter or the year, with its breakdown."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.table import Table

from duban.cli.output import console, line, plain_json
from duban.cli.report import parse_as_of
from duban.runtime import open_store
from models.errors import InputError
from tasks.plan_import import get_plan
from tasks.scoring import (
    SCORE_COLUMNS,
    ScoreSheet,
    department_scores,
    detail_rows,
    score_rows,
    write_xlsx,
)

FORMATS = ("table", "xlsx", "json")


def _period_options(
    year: str | None, quarter: str | None, plan_year: int
) -> tuple[str | None, bool]:
    """(`quarter`, whole year?) from `--year 2021` / `--quarter 2021Q3`, checked."""
    if year is not None and quarter is not None:
        raise InputError(
            "--year 与 --quarter 只能选一个：--year 2021 为全年，--quarter 2021Q3 为一个季度。"
        )
    if year is None:
        return quarter, False
    if not re.fullmatch(r"\s*\d{4}\s*", year):
        raise InputError(f"--year 应为四位年份，如 --year {plan_year}，收到：{year}")
    if int(year) != plan_year:
        raise InputError(f"--year {year.strip()} 不是该计划的年度（{plan_year}年）。")
    return None, True


def _default_out(sheet: ScoreSheet, plan_id: int) -> Path:
    return Path("reports") / f"考核-计划{plan_id}-{sheet.period.label}.xlsx"


def _print_table(sheet: ScoreSheet) -> None:
    table = Table(*SCORE_COLUMNS[:10], title=f"{sheet.plan_title} {sheet.period.title}部门考核得分")
    for row in score_rows(sheet):
        table.add_row(
            *(f"{value:g}" if isinstance(value, float) else str(value) for value in row[:10])
        )
    console.print(table)


def _print_detail(sheet: ScoreSheet, department: str) -> None:
    rows = [row for row in detail_rows(sheet) if row[0] == department]
    if not rows:
        names = "、".join(line.name for line in sheet.scores) or "无"
        raise InputError(f"本期没有部门“{department}”的考核记录（有：{names}）。")
    score = next(s for s in sheet.scores if s.name == department)
    table = Table(
        "任务序号",
        "任务",
        "角色",
        "扣分项",
        "情况",
        "扣分",
        "任务得分",
        title=f"{department} 扣分明细",
    )
    for row in rows:
        table.add_row(
            *(f"{value:g}" if isinstance(value, float) else str(value) for value in row[1:])
        )
    console.print(table)
    console.print(
        f"任务平均分 {score.mean:g} × 负荷系数 {score.load_factor:g} = {score.score:g}"
        f"（{score.grade}，第{score.rank}名）",
        markup=False,
    )


def score_command(
    plan: str | None = typer.Option(
        None, "--plan", help="计划编号或标题（只有一个计划时可省略）。"
    ),
    year: str | None = typer.Option(None, "--year", help="全年考核，如 --year 2021。"),
    quarter: str | None = typer.Option(
        None, "--quarter", help="季度考核，如 2021Q3；缺省为当前季度。"
    ),
    fmt: str = typer.Option(
        "table", "--format", help="输出：table（终端表格）、xlsx（Excel）、json。"
    ),
    out: Path | None = typer.Option(None, "--out", help="Excel 文件路径（--format xlsx）。"),
    as_of: str | None = typer.Option(None, "--as-of", help="数据截止日期，如 2021-09-30。"),
    detail: str | None = typer.Option(None, "--detail", help="列出某个部门的逐项扣分明细。"),
) -> None:
    """部门考核：按考核规则计算各部门季度或年度得分、等次和排名，可导出 Excel。"""
    if fmt not in FORMATS:
        raise InputError(f"不支持的输出格式“{fmt}”，可选：{'、'.join(FORMATS)}。")
    moment = parse_as_of(as_of)
    store = open_store()
    with store.sessions() as session:
        stored = get_plan(session=session, plan_ref=plan)
        period_quarter, whole_year = _period_options(year, quarter, stored.year)
        sheet = department_scores(
            session=session,
            plan_id=stored.id,
            as_of=moment,
            quarter=period_quarter,
            year=whole_year,
        )
    if not sheet.scores:
        console.print(line(("本期还没有可考核的部门：计划尚无交办的任务。", "yellow")))
        return
    if fmt == "json":
        console.print(
            plain_json(
                {
                    "plan": stored.id,
                    "period": sheet.period.label,
                    "columns": list(SCORE_COLUMNS),
                    "rows": score_rows(sheet),
                }
            ),
            markup=False,
        )
        return
    if fmt == "xlsx":
        target = out or _default_out(sheet, stored.id)
        if target.exists() and target.is_dir():
            raise InputError(f"--out {target} 是一个目录，请给出 .xlsx 文件的路径。")
        try:
            write_xlsx(sheet, target)
        except OSError as exc:
            raise InputError(
                f"无法写入 {target}：{exc.strerror or exc}。请换一个可写的位置（--out）。"
            ) from exc
        console.print(f"已导出{sheet.period.title}考核表：{target}", markup=False)
        return
    _print_table(sheet)
    if detail is not None:
        _print_detail(sheet, detail)
    else:
        console.print("逐项扣分明细：duban score --detail 部门名称；导出 Excel：--format xlsx。")


def register(app: typer.Typer) -> None:
    """Add `score` to the CLI."""
    app.command("score")(score_command)
