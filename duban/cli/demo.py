"""`duban demo`: the main job — a whole supervised year on embedded defaults."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import date, datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from duban.cli.output import console, fail
from duban.demo.runner import DemoOptions, DemoRun, reset_data_dir, simulate_year
from duban.demo.services import serve_form
from duban.demo.summary import COLOUR_NAMES, KIND_NAMES, DemoSummary, summarise
from duban.ports import port_problem
from duban.runtime import Store, open_store, prefect_logs_to_file
from models import clock
from models.settings import Settings, get_settings
from models.supervision import Notice, Submission
from notifications.sink import free_port

DEMO_STATE = "demo.json"


def _settings_for_demo(smtp_port: int) -> Settings:
    """Point SMTP at the demo's own sink, process-wide; the form keeps its configured address
    (DUBAN_PORTAL_PORT) so the links in the demo's mail (DUBAN_PUBLIC_URL) stay usable."""
    os.environ["DUBAN_SMTP_HOST"] = "127.0.0.1"
    os.environ["DUBAN_SMTP_PORT"] = str(smtp_port)
    os.environ["DUBAN_SMTP_SECURITY"] = "none"
    get_settings.cache_clear()
    return get_settings()


def _short(files: dict[str, str]) -> str:
    """`dir/name.{html,docx,md}` for one report's files."""
    here = Path.cwd()
    paths = [Path(path).resolve() for path in files.values()]
    paths = [path.relative_to(here) if path.is_relative_to(here) else path for path in paths]
    if not paths:
        return "—"
    stem = paths[0].with_suffix("")
    suffixes = ",".join(path.suffix.lstrip(".") for path in paths)
    return f"{stem}.{{{suffixes}}}"


def _print_summary(
    summary: DemoSummary, run: DemoRun, settings: Settings, seconds: float, log: Path | None
) -> None:
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
    loop = run.loop
    console.print(
        f"督查室审核：通过 {loop.accepted} 份、退回 {loop.returned} 份（部门已重新报送）；"
        f"领导批示 {loop.instructions} 条（下次报送须写明落实情况）；"
        f"申请办结 {loop.completions_requested} 项、销号 {loop.completions_approved} 项，"
        f"随报送上传佐证材料 {loop.evidence_files} 份。"
    )
    for note in summary.notes:
        console.print(note, markup=False)
    spent = "，".join(f"{phase} {value:.0f} 秒" for phase, value in run.seconds.items())
    console.print(f"用时分布：{spent}", markup=False)
    console.print(f"邮件库（Maildir，共 {summary.mail_count} 封）：{settings.mail_store.resolve()}")
    console.print("点开邮件中的链接：duban demo --serve-form（按演示结束时的模拟时钟打开表单）")
    console.print("查看邮件：duban mail store    查看任务状态：duban status")
    console.print("在 Prefect 界面查看本次运行：duban ui  然后打开 http://127.0.0.1:4200/runs")
    if log is not None:
        console.print(f"Prefect 日志：{log}（加 --verbose 直接显示）", markup=False)


def _write_state(settings: Settings, run: DemoRun) -> None:
    moment = run.final_moment.isoformat() if run.final_moment else None
    state = {"plan_id": run.plan_id, "clock": moment, "seconds": run.seconds}
    path = settings.data_dir / DEMO_STATE
    path.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")


def _serve_form(settings: Settings) -> None:
    try:
        state = json.loads((settings.data_dir / DEMO_STATE).read_text(encoding="utf-8"))
        moment = datetime.fromisoformat(state["clock"])
    except (OSError, ValueError, KeyError, TypeError):
        fail("数据目录中没有演示记录：请先运行 make demo（或 duban demo --reset）。")
    problem = port_problem(settings.portal_host, settings.portal_port, "报送表单", PORT_FIX)
    if problem is not None:
        fail(problem)
    local = moment.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    console.print(
        f"演示报送表单：{settings.public_url}（模拟时钟 {local}，报送只存入数据库），"
        "按 Ctrl+C 停止。",
        markup=False,
    )
    serve_form(settings, moment)


PORT_FIX = "设置 DUBAN_PORTAL_PORT（并相应设置 DUBAN_PUBLIC_URL）"


def demo_command(
    reset: bool = typer.Option(False, "--reset", help="删除数据目录中以前的演示数据后从头运行。"),
    until: str = typer.Option("2021-12-31", help="模拟截止日期（YYYY-MM-DD）。"),
    out: Path | None = typer.Option(None, help="报告输出目录（默认：数据目录下的 reports）。"),
    verbose: bool = typer.Option(False, "--verbose", help="显示 Prefect 的日志（默认写入文件）。"),
    serve_form_only: bool = typer.Option(
        False,
        "--serve-form",
        help="不模拟，只按演示结束时的模拟时钟提供报送表单，打开邮件中的链接。",
    ),
) -> None:
    """运行演示：导入长治市科协2021年工作要点，模拟全年督办。

    使用内置默认配置：SQLite、本地 Prefect、本地邮件服务与报送表单（DUBAN_PORTAL_PORT，
    邮件链接指向 DUBAN_PUBLIC_URL）。
    """
    if serve_form_only:
        _serve_form(get_settings())
        return
    try:
        end = date.fromisoformat(until)
    except ValueError:
        raise typer.BadParameter(f"日期格式应为 YYYY-MM-DD：{until}") from None
    smtp_port = free_port()
    settings = _settings_for_demo(smtp_port)
    problem = port_problem("127.0.0.1", settings.portal_port, "报送表单", PORT_FIX)
    if problem is not None:
        fail(problem)
    if reset:
        reset_data_dir(settings)
    log = None if verbose else settings.data_dir.resolve() / "logs" / "demo-prefect.log"
    if log is not None:
        log.unlink(missing_ok=True)
        prefect_logs_to_file(log)
    options = DemoOptions(until=end, out_dir=out)
    started = time.monotonic()
    counts = DayCounts(settings)
    with Progress(
        TextColumn("模拟督办 {task.description}", markup=False),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("准备中", total=None)

        def on_day(day: date, total: int) -> None:
            progress.update(task, total=total, advance=1, description=counts.line(day))

        def on_report(period: str, files: dict[str, str]) -> None:
            counts.reports += 1
            progress.console.print(f"已生成 {period} 报告：{_short(files)}", markup=False)

        run = asyncio.run(
            simulate_year(
                settings=settings,
                options=options,
                smtp_port=smtp_port,
                portal_port=settings.portal_port,
                on_day=on_day,
                on_report=on_report,
            )
        )
    store = open_store(settings)
    with store.sessions() as session:
        summary = summarise(
            session=session,
            plan_id=run.plan_id,
            until=end,
            mail_store=settings.mail_store,
            second_plan_id=run.second_plan_id,
        )
    _write_state(settings, run)
    _print_summary(summary, run, settings, time.monotonic() - started, log)


class DayCounts:
    """The running counts shown on the progress line (one query per simulated day)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reports = 0
        self.submissions = 0
        self.store: Store | None = None

    def line(self, day: date) -> str:
        """`date 提醒 n 督办 n 报送 n 报告 n` as of the end of `day`."""
        if self.store is None:
            self.store = open_store(self.settings)
        with self.store.sessions() as session:
            query = select(Notice.kind, func.count()).group_by(Notice.kind)
            notices: dict[str, int] = dict(session.execute(query).tuples().all())
            submissions = session.scalar(select(func.count()).select_from(Submission)) or 0
        prompts = notices.get("request", 0) + notices.get("reminder", 0)
        escalations = notices.get("escalation", 0)
        return (
            f"{day.isoformat()} 提醒 {prompts} 督办 {escalations} "
            f"报送 {submissions} 报告 {self.reports}"
        )
