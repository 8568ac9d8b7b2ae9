"""`duban db …`: schema migrations."""

from __future__ import annotations

import typer

from duban.cli.output import console
from models.db import make_engine, upgrade
from models.settings import get_settings

app = typer.Typer(help="数据库管理。", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """把数据库结构升级到最新版本（首次使用时会创建全部数据表）。"""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    before, after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"数据库已是最新版本（{after}）：{where}")
    else:
        console.print(f"数据库已升级：{before or '空库'} → {after}：{where}")
