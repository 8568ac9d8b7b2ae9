"""Top-level commands: `init`, `ui`."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from duban.cli.demo import demo_command
from duban.cli.output import console
from models.db import make_engine, upgrade
from models.settings import get_settings


def init_command() -> None:
    """初始化：创建数据目录并把数据库升级到最新结构。"""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    _, after = upgrade(engine)
    console.print(f"数据目录：{settings.data_dir.resolve()}")
    console.print(f"数据库：{engine.url.render_as_string(hide_password=True)}（版本 {after}）")


def prefect_server_process(host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of `prefect server start` on `host:port` (UI at the same
    address; PREFECT_HOME and the quiet defaults come from `configure_prefect_defaults`)."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_SERVER_API_HOST"] = host
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_UI_API_URL"] = f"http://{host}:{port}/api"
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    return argv, env


def ui_command(
    port: int = typer.Option(4200, help="Prefect 界面端口。"),
    host: str = typer.Option("127.0.0.1", help="监听地址。"),
) -> None:
    """启动 Prefect 服务器和界面，查看督办流程的运行、状态、事件和产出。"""
    argv, env = prefect_server_process(host, port)
    console.print(f"Prefect 界面：http://{host}:{port}  （按 Ctrl+C 退出）")
    console.print(f"让命令行使用此服务器：export PREFECT_API_URL=http://{host}:{port}/api")
    completed = subprocess.run(argv, env=env, check=False)  # noqa: S603
    raise typer.Exit(completed.returncode)


def register(app: typer.Typer) -> None:
    """Add the top-level commands to `app`."""
    app.command("init")(init_command)
    app.command("ui")(ui_command)
    app.command("demo")(demo_command)
