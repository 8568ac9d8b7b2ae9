"""`duban calendar …`: import a year's holidays and 调休 workdays, show a year's calendar."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from duban.cli.output import console
from duban.runtime import open_store
from models import clock
from models.calendar import CalendarSource, DayKind, SpecialDay
from models.calendar_change import CheckinMove
from models.calendar_file import read_calendar_file
from models.errors import InputError
from tasks.calendar_store import import_calendar, work_calendar

app = typer.Typer(help="工作日历：导入节假日与调休安排、查看某年的日历。", no_args_is_help=True)

_WEEKDAYS = "一二三四五六日"


def _day(day: date) -> str:
    return f"{day.isoformat()}（周{_WEEKDAYS[day.weekday()]}）"


def _runs(days: list[SpecialDay]) -> list[tuple[SpecialDay, SpecialDay, int]]:
    """Consecutive days of the same kind and name, as (first, last, count)."""
    runs: list[tuple[SpecialDay, SpecialDay, int]] = []
    for day in days:
        if runs:
            first, last, count = runs[-1]
            if (day.kind, day.name) == (last.kind, last.name) and day.day - last.day == timedelta(
                days=1
            ):
                runs[-1] = (first, day, count + 1)
                continue
        runs.append((day, day, 1))
    return runs


def _print_days(title: str, days: list[SpecialDay]) -> None:
    table = Table("日期", "名称", "天数", title=title)
    for first, last, count in _runs(days):
        when = _day(first.day) if count == 1 else f"{_day(first.day)} 至 {_day(last.day)}"
        table.add_row(when, escape(first.name), str(count))
    console.print(table)


def _print_moves(moves: list[CheckinMove]) -> None:
    groups: dict[tuple[int, date, date, bool], list[int]] = {}
    for move in moves:
        groups.setdefault((move.plan_id, move.old, move.new, move.extended), []).append(
            move.checkin_id
        )
    console.print(f"导入后，{len(moves)} 条报送的截止日期将变化：")
    table = Table("计划", "原截止日期", "新截止日期", "条数", "报送编号", "说明")
    for (plan_id, old, new, extended), ids in sorted(groups.items()):
        shown = "、".join(str(i) for i in ids[:8]) + ("…" if len(ids) > 8 else "")
        note = "已批准延期，顺延到工作日" if extended else ""
        table.add_row(str(plan_id), _day(old), _day(new), str(len(ids)), shown, note)
    console.print(table)


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        return False
    return typer.confirm("应用以上变更？", default=False)


@app.command("import")
def import_command(
    file: Path = typer.Argument(
        ..., help="日历文件（YAML），格式见 examples/calendar-2027.example.yaml"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="导入会移动已有报送的截止日期时，直接应用"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查和预览，不写数据库"),
) -> None:
    """导入一年的法定节假日、调休上班日和本单位休息日；覆盖节假日日历库中该年的数据。"""
    calendar_file = read_calendar_file(file)
    store = open_store()
    now = clock.now()
    with store.sessions() as session:
        outcome = import_calendar(
            session=session,
            calendar_file=calendar_file,
            source_name=file.name,
            now=now,
            confirm=yes and not dry_run,
        )
        if outcome.moves:
            _print_moves(outcome.moves)
        if dry_run:
            session.rollback()
            console.print("预览模式：未写入任何数据。")
            return
        if not outcome.applied:
            if not _confirmed():
                session.rollback()
                console.print("未应用变更，数据库保持不变（加 --yes 可直接应用）。")
                return
            outcome = import_calendar(
                session=session,
                calendar_file=calendar_file,
                source_name=file.name,
                now=now,
                confirm=True,
            )
        session.commit()
    after = outcome.after
    parts = [f"放假 {len(after.holidays)} 天", f"调休上班 {len(after.workdays)} 天"]
    if after.closures:
        parts.append(f"单位休息日 {len(after.closures)} 天")
    verb = "已导入" if outcome.changed else "内容与已导入的相同，未改动"
    moved = f"；{len(outcome.moves)} 条报送已改期" if outcome.moves else ""
    console.print(f"{outcome.year}年工作日历{verb}：{'，'.join(parts)}{moved}。")


@app.command("show")
def show_command(year: int = typer.Argument(..., help="年份，如 2027")) -> None:
    """显示某年的法定节假日、调休上班日和本单位休息日，以及数据来源。"""
    if not 2000 <= year <= 2100:
        raise InputError(f"年份应为四位数字（如 2027），收到：{year}")
    store = open_store()
    with store.sessions() as session:
        calendar = work_calendar(session=session)
    source = calendar.source(year)
    days = calendar.special_days(year)
    console.print(f"[bold]{year}年工作日历[/]（来源：{source.label}）")
    if source is CalendarSource.weekends_only:
        console.print(
            f"[yellow]没有{year}年的节假日数据：工作日按仅周末休息计算。请按国务院办公厅通知"
            "填写日历文件后运行 duban calendar import 文件"
            "（示例见 examples/calendar-2027.example.yaml）。[/]"
        )
    off = [d for d in days if d.kind is not DayKind.workday]
    on = [d for d in days if d.kind is DayKind.workday]
    if off:
        _print_days("休息日（法定节假日、单位休息日；不含普通周末）", off)
    if on:
        _print_days("调休上班日", on)
    first, last = date(year, 1, 1), date(year, 12, 31)
    total = (last - first).days + 1
    workdays = sum(calendar.is_workday(first + timedelta(days=n)) for n in range(total))
    console.print(f"全年工作日 {workdays} 天，休息日 {total - workdays} 天。")
