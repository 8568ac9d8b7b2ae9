"""`duban item close|reopen` and `duban item completion list|approve|reject` (办结与销号).

Commands in the existing `item` group: the office closes an item directly or reopens it,
each with a reason, and decides the completion requests (申请办结) departments sent from
the form. Every change and its event and email commit together (`tasks.closure`).
"""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from duban.cli.output import console, line, plain
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.vocabulary import CompletionDecision
from tasks.closure import (
    approve_completion,
    close_item,
    closed_items,
    completion_requests,
    pending_completions,
    reject_completion,
    reopen_item,
)

completion_app = typer.Typer(help="办结申请：查看、审核通过（销号）、驳回。", no_args_is_help=True)

_BY = typer.Option("督查室", "--by", help="经办人或审核人。")


def close_command(
    item: int = typer.Argument(..., help="任务编号（数据库编号，见 duban status）。"),
    reason: str = typer.Option("", "--reason", help="销号理由（必填），如：经党组会研究取消。"),
    by: str = _BY,
) -> None:
    """销号：督查室直接办结任务，此后不再提醒、督办（须填写理由）。"""
    store = open_store()
    with transaction(store.sessions) as session:
        result = close_item(session, item, by, reason, clock.now())
    console.print(
        f"任务 {item} 已销号（已办结），取消待报送 {result.cancelled} 条，不再提醒和督办。"
    )


def reopen_command(
    item: int = typer.Argument(..., help="任务编号。"),
    reason: str = typer.Option("", "--reason", help="重新打开的理由（必填）。"),
    by: str = _BY,
) -> None:
    """重新打开已办结的任务，恢复督办（须填写理由）。"""
    store = open_store()
    with transaction(store.sessions) as session:
        result = reopen_item(session, item, by, reason, clock.now())
    console.print(
        f"任务 {item} 已重新打开，恢复督办：恢复报送 {result.restored} 条，"
        f"新增报送 {result.created} 条。"
    )


@completion_app.command("list")
def completion_list_command(
    all_: bool = typer.Option(False, "--all", help="包括已处理的申请。"),
) -> None:
    """列出办结申请（默认只列待审核的）。"""
    store = open_store()
    with store.sessions() as session:
        rows = completion_requests(
            session=session, decision=None if all_ else CompletionDecision.PENDING
        )
    table = Table("编号", "任务", "申请部门", "办结情况说明", "申请时间", "状态")
    for row in rows:
        table.add_row(
            plain(row.request_id),
            plain(row.item_label[:40]),
            plain(row.department),
            plain(row.summary[:60]),
            plain(clock.local_date(row.requested_at).isoformat()),
            plain(row.decision.label + (f"：{row.reason}" if row.reason else "")),
        )
    console.print(table)
    console.print(f"共 {len(rows)} 条。")


@completion_app.command("approve")
def completion_approve_command(
    request: int = typer.Argument(..., help="办结申请编号（见 duban item completion list）。"),
    note: str = typer.Option("", "--note", help="审核意见（可选）。"),
    by: str = _BY,
) -> None:
    """审核通过办结申请，予以销号：任务办结，后续报送取消，不再督办。"""
    store = open_store()
    with transaction(store.sessions) as session:
        result = approve_completion(session, request, by, clock.now(), note)
    console.print(
        f"办结申请 {request} 已审核通过：任务 {result.item_id} 已销号（已办结），"
        f"取消待报送 {result.cancelled} 条。"
    )


@completion_app.command("reject")
def completion_reject_command(
    request: int = typer.Argument(..., help="办结申请编号。"),
    reason: str = typer.Option("", "--reason", help="驳回理由（必填），将发给申请部门。"),
    by: str = _BY,
) -> None:
    """驳回办结申请（须填写理由）：任务继续督办，理由邮件发给申请部门。"""
    store = open_store()
    with transaction(store.sessions) as session:
        row = reject_completion(session, request, by, reason, clock.now())
    console.print(f"办结申请 {request} 已驳回：任务 {row.item_id} 继续督办，已通知申请部门。")


def closure_summary(*, session: Session, plan_id: int) -> None:
    """Print, for `duban status`, how many items are closed and which completion requests
    wait for the office (nothing when there are none)."""
    closed = closed_items(session=session, plan_id=plan_id)
    if closed:
        console.print(f"已办结（销号）{len(closed)} 项。")
    waiting = pending_completions(session=session, plan_id=plan_id)
    if waiting:
        console.print(
            line((f"待审核的办结申请 {len(waiting)} 条（duban item completion list）：", "yellow"))
        )
        for row in waiting:
            console.print(
                line(f"  申请 {row.request_id}：{row.item_label[:40]}（{row.department}）")
            )


def register(item_app: typer.Typer) -> None:
    """Add `close`, `reopen` and the `completion` group to the `item` group."""
    item_app.command("close")(close_command)
    item_app.command("reopen")(reopen_command)
    item_app.add_typer(completion_app, name="completion")
