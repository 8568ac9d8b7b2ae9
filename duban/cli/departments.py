"""`duban departments …`: the department directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from duban.cli.output import console
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.directory_file import load_directory_file
from tasks.directory import list_departments, upsert_directory

app = typer.Typer(help="部门名录：导入与查看。", no_args_is_help=True)


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="部门名录文件（YAML 或 JSON），格式见 README。"),
) -> None:
    """导入部门名录：按名称新增或更新部门；文件有误时不写入任何数据。"""
    directory = load_directory_file(file)
    store = open_store()
    with transaction(store.sessions) as session:
        summary = upsert_directory(session=session, directory=directory, now=clock.now())
    console.print(
        f"已导入部门名录 {file}：新增 {len(summary.created)} 个，更新 {len(summary.updated)} 个。"
    )


@app.command("list")
def list_command() -> None:
    """列出全部部门、别名和联系人。"""
    store = open_store()
    with store.sessions() as session:
        departments = list_departments(session=session)
    table = Table("部门", "别名", "联系人邮箱", "分管领导", "主要负责人", "督查室")
    for dept in departments:
        table.add_row(
            dept.name,
            "、".join(alias.alias for alias in dept.aliases),
            "、".join(dept.contact_emails),
            f"{dept.leader_name} {dept.leader_email}".strip(),
            f"{dept.head_name} {dept.head_email}".strip(),
            "是" if dept.is_supervision_office else "",
        )
    console.print(table)
    console.print(f"共 {len(departments)} 个部门。")
