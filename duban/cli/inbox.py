"""`duban inbox list|sync`: the supervisors' inbox from the command line (docs/inbox.md).

`list` shows the decisions waiting in the database (the truth the Prefect UI's inbox runs
mirror); `sync` gives each one a waiting run in Prefect and ends the stale ones, as the
deployed daily pass does.
"""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from duban.cli.deploy import _api_or_fail
from duban.cli.output import console, plain
from duban.runtime import open_store
from models import clock
from models.inbox import run_name

app = typer.Typer(help="收件箱：待督查室决定的事项（延期、审核、办结）。", no_args_is_help=True)
_PLAN = typer.Option(..., "--plan", help="计划编号。")


@app.command("list")
def list_command(plan: int = _PLAN) -> None:
    """列出计划中等待决定的事项（数据库中的记录；Prefect 界面按标签 duban-inbox 显示同样内容）。"""
    # Imported here: they import Prefect, which must not load before the CLI configured it.
    from tasks.inbox import pending_decisions
    from tasks.inbox_runs import sync_inbox  # noqa: F401  (registers every kind's source)

    store = open_store()
    with store.sessions() as session:
        decisions = pending_decisions(session=session, plan_id=plan)
    table = Table("类型", "编号", "等待运行名称", "提出时间")
    for decision in decisions:
        table.add_row(
            decision.kind.label,
            decision.key,
            plain(run_name(decision)),
            decision.requested_at.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    console.print(f"共 {len(decisions)} 项待决定。")


@app.command("sync")
def sync_command(plan: int = _PLAN) -> None:
    """为每项待决定事项在 Prefect 中保留一个等待输入的运行，撤销已在别处处理的。"""
    from tasks.inbox_runs import sync_inbox

    _api_or_fail()
    store = open_store()
    result = asyncio.run(sync_inbox(sessions=store.sessions, plan_id=plan, now=clock.now()))
    console.print(result.message)


def register(root: typer.Typer) -> None:
    """Add the `duban inbox` group to `root`."""
    root.add_typer(app, name="inbox")
