"""`duban demo`: the main job on embedded defaults (grows into the simulated year)."""

from __future__ import annotations

from pathlib import Path

from duban.cli.output import console
from duban.runtime import open_store
from models import clock
from models.db import make_engine, transaction, upgrade
from models.directory_file import load_directory_file
from models.settings import get_settings
from tasks.directory import list_departments, upsert_directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def demo_command() -> None:
    """运行演示：在内置默认配置（SQLite、本地 Prefect、本地邮件服务）上跑通督办流程。"""
    settings = get_settings()
    upgrade(make_engine(settings.effective_database_url))
    store = open_store(settings)
    directory = load_directory_file(EXAMPLES / "departments.yaml")
    with transaction(store.sessions) as session:
        upsert_directory(session=session, directory=directory, now=clock.now())
    with store.sessions() as session:
        names = [dept.name for dept in list_departments(session=session)]
    console.print(f"已载入演示部门 {len(names)} 个：{'、'.join(names)}")
