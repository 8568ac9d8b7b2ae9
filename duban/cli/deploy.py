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
from sqlalchemy import select

from duban.cli.output import console, err_console, fail, line
from duban.doctor import Check, run_checks, serve_setup
from duban.prefect_api import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_POOL,
    PROJECT_DIR,
    PrefectApi,
    declared_deployments,
    zombie_automation,
)
from duban.runtime import open_store
from models import clock
from models.errors import DubanError
from models.plan import Plan
from models.plan_year import plan_year_over, plan_year_over_message
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


DAILY_ENTRYPOINT = "flows/calendar_gates.py:supervise_plan_on_workdays"


def deployment_file(
    plan: int,
    *,
    per_plan_names: bool = False,
    pass_every_seconds: int | None = None,
    schedules_active: bool = True,
) -> str:
    """The project's prefect.yaml with `{{ $DUBAN_PLAN_ID }}` replaced by the integer `plan`.

    An integer, not the string an environment placeholder would give, so that the server's
    parameter-schema check accepts the deployment. The pull step's project dir stays a
    placeholder that each worker fills in at run time. `per_plan_names` names each scheduled
    deployment `<name>-<plan>` so that several plans are supervised side by side (`duban
    serve`); `pass_every_seconds` replaces the daily pass's cron with an interval (rehearsals
    and tests only); `schedules_active=False` pauses every schedule (a past year's plan).
    """
    config = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in config["deployments"]:
        parameters = deployment.get("parameters") or {}
        if parameters.get("plan_id") == PLAN_PLACEHOLDER:
            parameters["plan_id"] = plan
        if per_plan_names and deployment.get("schedules"):
            deployment["name"] = f"{deployment['name']}-{plan}"
        if pass_every_seconds and deployment["entrypoint"] == DAILY_ENTRYPOINT:
            deployment["schedules"] = [{"interval": pass_every_seconds, "active": True}]
        for schedule in deployment.get("schedules") or []:
            schedule["active"] = schedule.get("active", True) and schedules_active
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def _prefect(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [*PREFECT, *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )


def past_year_warning(plan: int) -> str | None:
    """Why `plan`'s schedules must stay paused (its year is over), or None.

    Prints a warning (and returns None) for a plan id the database does not know.
    """
    store = open_store()
    try:
        with store.sessions() as session:
            year = session.scalar(select(Plan.year).where(Plan.id == plan))
    finally:
        store.engine.dispose()
    if year is None:
        err_console.print(line((f"提示：数据库中还没有编号为 {plan} 的计划。", "yellow")))
        return None
    today = clock.local_date(clock.now())
    return plan_year_over_message(plan, year, today) if plan_year_over(year, today) else None


PAUSED = "已部署，但定时督办和通报已暂停；确需按真实时钟上线请加 --allow-past-year。"


def apply_deployments(
    api: PrefectApi,
    plan: int,
    *,
    pool: str = DEFAULT_POOL,
    per_plan_names: bool = False,
    pass_every_seconds: int | None = None,
    schedules_active: bool = True,
) -> list[str]:
    """Create the work pool if missing and create or update every deployment for `plan`.

    Runs the Prefect CLI (`prefect deploy --all`) on a generated prefect.yaml; returns the
    deployment names created. Raises `DubanError` naming the step that failed.
    """
    env = {key: value for key, value in os.environ.items() if key != "DUBAN_PROJECT_DIR"}
    if api.work_pool(pool) is None:
        created = _prefect(["work-pool", "create", pool, "--type", "process"], env)
        if created.returncode != 0 and api.work_pool(pool) is None:
            detail = (created.stderr or created.stdout).strip()[-300:]
            raise DubanError(f"创建工作池 {pool} 失败：{detail}")
    with tempfile.TemporaryDirectory(prefix="duban-deploy-") as tmp:
        prefect_file = Path(tmp) / "prefect.yaml"
        text = deployment_file(
            plan,
            per_plan_names=per_plan_names,
            pass_every_seconds=pass_every_seconds,
            schedules_active=schedules_active,
        )
        prefect_file.write_text(text, encoding="utf-8")
        names = [item["name"] for item in yaml.safe_load(text)["deployments"]]
        args = ["deploy", "--all", "--prefect-file", str(prefect_file)]
        if pool != DEFAULT_POOL:
            args += ["--pool", pool]
        result = _prefect(args, env)
    if result.returncode != 0:
        raise DubanError(f"部署失败：{(result.stderr or result.stdout).strip()[-800:]}")
    present = {name.split("/", 1)[-1] for name in api.deployment_names()}
    missing = sorted(set(names) - present)
    if missing:
        raise DubanError("部署未全部创建：缺少 " + "、".join(missing))
    return names


def deploy_command(
    plan: int = typer.Option(..., "--plan", help="定时督办和通报所针对的计划编号。"),
    pool: str = typer.Option(DEFAULT_POOL, help="Prefect 工作池名称。"),
    zombie_after: int = typer.Option(
        DEFAULT_ZOMBIE_AFTER,
        "--zombie-after",
        min=0,
        help="流程运行多少秒无心跳即标记为 Crashed（僵尸运行检测自动化）；0 表示不创建。",
    ),
    allow_past_year: bool = typer.Option(
        False,
        "--allow-past-year",
        help="计划年度已结束仍启用定时督办（默认暂停，以免按真实时钟大量催办）。",
    ),
) -> None:
    """按 prefect.yaml 创建或更新全部部署（不存在时先创建进程工作池）和僵尸运行检测自动化。"""
    if 0 < zombie_after <= MINIMUM_HEARTBEAT_SECONDS:
        fail(
            f"--zombie-after 必须为 0 或大于 {MINIMUM_HEARTBEAT_SECONDS} 秒"
            "（Prefect 心跳间隔的下限），建议不少于工作进程心跳间隔的 3 倍。"
        )
    api = _api_or_fail()
    warning = None if allow_past_year else past_year_warning(plan)
    had_pool = api.work_pool(pool) is not None
    names = apply_deployments(api, plan, pool=pool, schedules_active=warning is None)
    if not had_pool:
        console.print(f"已创建进程工作池 {pool}")
    entrypoints = declared_deployments()
    console.print(f"已部署 {len(names)} 个流程（计划 {plan}）到 {api.url}：")
    for name in names:
        console.print(f"  {name}  ←  {entrypoints[name]}")
    if zombie_after:
        console.print(ensure_zombie_automation(api, zombie_after))
    else:
        console.print("未创建僵尸运行检测自动化（--zombie-after 0）")
    if warning is not None:
        err_console.print(line((f"{warning}{PAUSED}", "yellow")))
    console.print(f"下一步：在每台工作机上运行 duban worker --pool {pool}")


def ensure_zombie_automation(api: PrefectApi, zombie_after: int) -> str:
    """Create or update the zombie-run automation; the line saying what was done."""
    outcome = api.ensure_automation(zombie_automation(zombie_after))
    verb = {"created": "已创建", "updated": "已更新", "unchanged": "已存在"}[outcome]
    return f"{verb}僵尸运行检测自动化：{zombie_after} 秒无心跳的流程运行标记为 Crashed"


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
    settings = get_settings()
    api = PrefectApi.from_settings()
    checks: list[Check] = []
    if api is None:
        api, checks = serve_setup(settings)
    checks += run_checks(settings, api, pool=pool)
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
