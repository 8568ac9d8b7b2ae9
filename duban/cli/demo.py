"""`duban demo`: the main job — a whole supervised year on embedded defaults."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from duban.cli.output import console
from duban.demo.runner import DemoOptions, DemoRun, reset_data_dir, simulate_year
from duban.demo.services import pick_ports
from duban.demo.summary import COLOUR_NAMES, KIND_NAMES, DemoSummary, summarise
from duban.runtime import open_store
from models.settings import Settings, get_settings


def _settings_for_demo(smtp_port: int, portal_port: int) -> Settings:
    """Point SMTP and the form links at the demo's own loopback services, process-wide."""
    os.environ["DUBAN_SMTP_HOST"] = "127.0.0.1"
    os.environ["DUBAN_SMTP_PORT"] = str(smtp_port)
    os.environ["DUBAN_SMTP_SECURITY"] = "none"
    os.environ["DUBAN_PUBLIC_URL"] = f"http://127.0.0.1:{portal_port}"
    get_settings.cache_clear()
    return get_settings()


def _print_summary(summary: DemoSummary, run: DemoRun, settings: Settings, seconds: float) -> None:
    console.rule("督办演示：全年运行结果")
    colours = "，".join(
        f"{COLOUR_NAMES.get(colour, colour)} {count} 项"
        for colour, count in sorted(summary.colours.items())
    )
    console.print(f"任务状态：{colours}")
    table = Table("类别", "级别", "条数")
    for (kind, level), count in sorted(summary.notices.items()):
        table.add_row(KIND_NAMES.get(kind, kind), str(level) if level else "—", str(count))
    console.print(table)
    ranking = Table("部室", "应报送", "按时", "逾期报送", "未报送", "按时报送率")
    for line in summary.departments:
        rate = "—" if line.on_time_rate is None else f"{line.on_time_rate:.0%}"
        ranking.add_row(
            line.name, str(line.due), str(line.on_time), str(line.late), str(line.missing), rate
        )
    console.print(ranking)
    console.print(
        f"部门经表单报送 {run.submissions} 次，申请延期 {run.extensions_requested} 次，"
        f"批准 {run.extensions_approved} 次；模拟工作日 {run.workdays} 天，用时 {seconds:.0f} 秒。"
    )
    for period, files in run.reports.items():
        console.print(f"{period} 报告：" + "  ".join(str(path) for path in files.values()))
    console.print(f"邮件库（Maildir，共 {summary.mail_count} 封）：{settings.mail_store.resolve()}")
    console.print("查看邮件：duban mail store    查看任务状态：duban status")
    console.print("在 Prefect 界面查看本次运行：duban ui  然后打开 http://127.0.0.1:4200/runs")


def demo_command(
    reset: bool = typer.Option(False, "--reset", help="删除数据目录中以前的演示数据后从头运行。"),
    until: str = typer.Option("2021-12-31", help="模拟截止日期（YYYY-MM-DD）。"),
    out: Path | None = typer.Option(None, help="报告输出目录（默认：数据目录下的 reports）。"),
) -> None:
    """运行演示：导入长治市科协2021年工作要点，模拟全年督办。

    使用内置默认配置：SQLite、本地 Prefect、本地邮件服务与报送表单。
    """
    try:
        end = date.fromisoformat(until)
    except ValueError:
        raise typer.BadParameter(f"日期格式应为 YYYY-MM-DD：{until}") from None
    smtp_port, portal_port = pick_ports()
    settings = _settings_for_demo(smtp_port, portal_port)
    if reset:
        reset_data_dir(settings)
    options = DemoOptions(until=end, out_dir=out)
    started = time.monotonic()
    with Progress(
        TextColumn("模拟督办 {task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("准备中", total=None)

        def on_day(day: date, total: int) -> None:
            progress.update(task, total=total, advance=1, description=day.isoformat())

        run = asyncio.run(
            simulate_year(
                settings=settings,
                options=options,
                smtp_port=smtp_port,
                portal_port=portal_port,
                on_day=on_day,
            )
        )
    store = open_store(settings)
    with store.sessions() as session:
        summary = summarise(
            session=session, plan_id=run.plan_id, until=end, mail_store=settings.mail_store
        )
    _print_summary(summary, run, settings, time.monotonic() - started)
