"""`duban deploy`, `duban worker` and `duban doctor`: run duban on a Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import typer
import yaml
from rich.table import Table

from duban.cli.output import console, fail, line
from duban.doctor import run_checks
from duban.prefect_api import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_POOL,
    PROJECT_DIR,
    PrefectApi,
    declared_deployments,
    zombie_automation,
)
from models.settings import get_settings

PREFECT = (sys.executable, "-m", "prefect", "--no-prompt")
PLAN_PLACEHOLDER = "{{ $DUBAN_PLAN_ID }}"
DEFAULT_ZOMBIE_AFTER = 240
MINIMUM_HEARTBEAT_SECONDS = 30


def _api_or_fail() -> PrefectApi:
    api = PrefectApi.from_settings()
    if api is None:
        fail("未设置 PREFECT_API_URL。请先启动 Prefect 服务器（duban ui）并设置 PREFECT_API_URL。")
    problem = api.health_problem()
    if problem is not None:
        fail(f"Prefect 服务器不可用：{problem}")
    return api


def deployment_file(plan: int) -> str:
    """The project's prefect.yaml with `{{ $DUBAN_PLAN_ID }}` replaced by the integer `plan`.

    An integer, not the string an environment placeholder would give, so that the server's
    parameter-schema check accepts the deployment. The pull step's project dir stays a
    placeholder that each worker fills in at run time.
    """
    config = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in config["deployments"]:
        parameters = deployment.get("parameters") or {}
        if parameters.get("plan_id") == PLAN_PLACEHOLDER:
            parameters["plan_id"] = plan
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def _prefect(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [*PREFECT, *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )


def deploy_command(
    plan: int = typer.Option(..., "--plan", help="定时督办和通报所针对的计划编号。"),
    pool: str = typer.Option(DEFAULT_POOL, help="Prefect 工作池名称。"),
    zombie_after: int = typer.Option(
        DEFAULT_ZOMBIE_AFTER,
        "--zombie-after",
        min=0,
        help="流程运行多少秒无心跳即标记为 Crashed（僵尸运行检测自动化）；0 表示不创建。",
    ),
) -> None:
    """按 prefect.yaml 创建或更新全部部署（不存在时先创建进程工作池）和僵尸运行检测自动化。"""
    if 0 < zombie_after <= MINIMUM_HEARTBEAT_SECONDS:
        fail(
            f"--zombie-after 必须为 0 或大于 {MINIMUM_HEARTBEAT_SECONDS} 秒"
            "（Prefect 心跳间隔的下限），建议不少于工作进程心跳间隔的 3 倍。"
        )
    api = _api_or_fail()
    env = {key: value for key, value in os.environ.items() if key != "DUBAN_PROJECT_DIR"}
    if api.work_pool(pool) is None:
        created = _prefect(["work-pool", "create", pool, "--type", "process"], env)
        if created.returncode != 0:
            fail(f"创建工作池 {pool} 失败：{(created.stderr or created.stdout).strip()[-300:]}")
        console.print(f"已创建进程工作池 {pool}")
    with tempfile.TemporaryDirectory(prefix="duban-deploy-") as tmp:
        prefect_file = Path(tmp) / "prefect.yaml"
        prefect_file.write_text(deployment_file(plan), encoding="utf-8")
        args = ["deploy", "--all", "--prefect-file", str(prefect_file)]
        if pool != DEFAULT_POOL:
            args += ["--pool", pool]
        result = _prefect(args, env)
    if result.returncode != 0:
        fail(f"部署失败：{(result.stderr or result.stdout).strip()[-800:]}")
    names = declared_deployments()
    present = {name.split("/", 1)[-1] for name in api.deployment_names()}
    missing = sorted(set(names) - present)
    if missing:
        fail("部署未全部创建：缺少 " + "、".join(missing))
    console.print(f"已部署 {len(names)} 个流程（计划 {plan}）到 {api.url}：")
    for name, entrypoint in names.items():
        console.print(f"  {name}  ←  {entrypoint}")
    if zombie_after:
        outcome = api.ensure_automation(zombie_automation(zombie_after))
        verb = {"created": "已创建", "updated": "已更新", "unchanged": "已存在"}[outcome]
        console.print(f"{verb}僵尸运行检测自动化：{zombie_after} 秒无心跳的流程运行标记为 Crashed")
    else:
        console.print("未创建僵尸运行检测自动化（--zombie-after 0）")
    console.print(f"下一步：在每台工作机上运行 duban worker --pool {pool}")


def worker_command(
    pool: str = typer.Option(DEFAULT_POOL, help="要领取任务的工作池。"),
    limit: int | None = typer.Option(None, help="同时运行的流程数上限。"),
) -> None:
    """启动 Prefect 进程工作进程，领取并运行 duban 的流程（按 Ctrl+C 退出）。

    Its flow runs send a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (default 30
    here), which the zombie-run automation of `duban deploy` watches.
    """
    api = _api_or_fail()
    env = dict(os.environ)
    env.setdefault("DUBAN_PROJECT_DIR", str(PROJECT_DIR))
    env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(DEFAULT_HEARTBEAT_SECONDS))
    args = ["worker", "start", "--pool", pool, "--type", "process"]
    if limit is not None:
        args += ["--limit", str(limit)]
    console.print(
        f"工作进程连接 {api.url}，工作池 {pool}，项目目录 {env['DUBAN_PROJECT_DIR']}，"
        f"流程心跳每 {env['PREFECT_FLOWS_HEARTBEAT_FREQUENCY']} 秒"
    )
    completed = subprocess.run([*PREFECT, *args], cwd=PROJECT_DIR, env=env, check=False)  # noqa: S603
    raise typer.Exit(completed.returncode)


def doctor_command(
    pool: str = typer.Option(DEFAULT_POOL, help="要检查的工作池。"),
) -> None:
    """检查部署环境：数据库、Prefect 服务器、部署、工作进程、邮件服务器、公开地址。"""
    checks = run_checks(get_settings(), PrefectApi.from_settings(), pool=pool)
    table = Table(show_header=True, header_style="bold")
    for column in ("检查项", "结果", "说明", "如何处理"):
        table.add_column(column)
    for check in checks:
        mark = line(("正常", "green")) if check.ok else line(("有问题", "bold red"))
        table.add_row(check.name, mark, check.detail, check.fix)
    console.print(table)
    failed = [check for check in checks if not check.ok]
    if failed:
        console.print(line((f"{len(failed)} 项需要处理。", "bold red")))
        raise typer.Exit(1)
    console.print(line(("全部正常。", "green")))


def register(app: typer.Typer) -> None:
    """Add `deploy`, `worker` and `doctor` to `app`."""
    app.command("deploy")(deploy_command)
    app.command("worker")(worker_command)
    app.command("doctor")(doctor_command)
