"""`duban report`: generate a quarter 通报 or the year's 总结评估 on demand."""

from __future__ import annotations

import errno
import os
from datetime import date, datetime, time
from pathlib import Path

import typer

from duban.cli.output import console
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.errors import InputError
from tasks.reporting.store import FORMATS, generate_report, summary_lines


def parse_as_of(text: str | None) -> datetime:
    """`2021-09-30` (end of that day, Asia/Shanghai), an ISO datetime, or now when None."""
    if text is None:
        return clock.now()
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return clock.resolve(datetime.combine(day, time(23, 59, 59)))
        return clock.resolve(datetime.fromisoformat(text.strip()))
    except ValueError as exc:
        raise InputError(
            f"无法识别的截止时间“{text}”，应形如 2021-09-30 或 2021-09-30T17:00。"
        ) from exc


def _os_reason(exc: OSError) -> str:
    if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return "没有写入权限或该位置只读"
    if exc.errno == errno.ENOSPC:
        return "磁盘空间不足"
    if exc.errno == errno.EISDIR:
        return "同名的目录已存在"
    if exc.errno in {errno.ENOTDIR, errno.EEXIST}:
        return "路径中有同名的文件"
    return exc.strerror or type(exc).__name__


def check_out_dir(out: Path) -> None:
    """Refuse an `out` that cannot hold reports, before any work; creates nothing.

    Names the cause (an existing file, a read-only or forbidden place) and the fix; the
    directory itself is created when the reports are written.
    """
    if out.exists() and not out.is_dir():
        raise InputError(
            f"--out {out} 是一个已有的文件，不是目录。请指定报告要写入的目录"
            "（不存在时会自动创建），如 --out reports。"
        )
    existing = out.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"无法创建报告目录 {out}：{existing} 是一个文件。请用 --out 指定一个目录。"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "报告目录" if existing == out.absolute() else f"无法创建报告目录 {out}：上级目录"
        raise InputError(
            f"{what} {existing} 不可写（没有写入权限或该位置只读）。"
            "请修改目录权限，或用 --out 指定一个可写的目录。"
        )


def report_command(
    plan: int = typer.Option(..., "--plan", help="计划编号。"),
    quarter: str | None = typer.Option(None, "--quarter", help="季度，如 2021Q3；缺省为当前季度。"),
    year: bool = typer.Option(False, "--year", help="生成年度总结评估报告。"),
    formats: list[str] = typer.Option(
        ["html", "docx"], "--format", help="输出格式：html、docx、md，可重复。"
    ),
    out: Path = typer.Option(Path("reports"), "--out", help="输出目录。"),
    as_of: str | None = typer.Option(None, "--as-of", help="数据截止日期，如 2021-09-30。"),
    email: bool = typer.Option(False, "--email/--no-email", help="是否向计划指定的收件人发送。"),
) -> None:
    """生成季度督办通报或年度总结评估报告（HTML、Word、Markdown）。"""
    if year and quarter:
        raise InputError("--quarter 与 --year 只能选一个。")
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise InputError(f"不支持的报告格式“{'、'.join(unknown)}”，可选：html、docx、md。")
    moment = parse_as_of(as_of)
    check_out_dir(out)
    store = open_store()
    try:
        with transaction(store.sessions) as session:
            result = generate_report(
                session=session,
                plan_id=plan,
                as_of=moment,
                generated_at=clock.now(),
                out_dir=out,
                quarter=quarter,
                year=year,
                formats=formats,
                email=email,
            )
    except OSError as exc:
        target = exc.filename or out
        raise InputError(
            f"无法写入报告文件 {target}：{_os_reason(exc)}。"
            "请检查该目录的权限和磁盘空间，或用 --out 换一个可写的目录；本次未记录任何报告。"
        ) from exc
    console.print(f"已生成{result.review.period.title}报告：")
    for fmt, path in result.files.items():
        console.print(f"  {fmt}：{path}", markup=False)
    for line in summary_lines(result.review):
        console.print(line, markup=False)
    if result.emailed:
        console.print("报告邮件已放入发送队列。")


def register(app: typer.Typer) -> None:
    """Add `report` to the CLI."""
    app.command("report")(report_command)
