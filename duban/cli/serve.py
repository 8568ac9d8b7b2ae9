"""`duban serve`: the whole system on one machine, one command.

Starts the Prefect server (UI on 127.0.0.1), a worker, the check-in form, the mail relay
(with the embedded SMTP server in development) and the event relay (the passes leave their
events to it: `DUBAN_EVENT_PUBLISHER=relay`) as child processes, each in its own process
group with its log under `<data dir>/logs/`; creates or updates the deployments of every
supervised plan (and of plans started later); restarts a child that dies, with back-off;
stops everything on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx
import typer
from sqlalchemy import select

from duban.children import Child, Children
from duban.cli.deploy import PAUSED, apply_deployments, ensure_zombie_automation
from duban.cli.misc import prefect_server_process
from duban.cli.output import console, err_console, fail
from duban.doctor import is_loopback_host
from duban.ports import port_problem
from duban.prefect_api import DEFAULT_POOL, PrefectApi
from duban.runtime import settings_environment
from duban.serve_state import ServeState, clear_serve_state, write_serve_state
from models import clock
from models.db import make_engine, make_sessionmaker, upgrade
from models.plan import Plan
from models.plan_year import plan_year_over, plan_year_over_message
from models.settings import Environment, EventPublisher, Settings, get_settings

UI_HOST = "127.0.0.1"
SERVER_START_SECONDS = 120.0
DEFAULT_ZOMBIE_AFTER = 240
DUBAN_CLI = (sys.executable, "-c", "from duban.cli import main; main()")


def serve_refusal(settings: Settings) -> str | None:
    """Why `duban serve` must not start with `settings`, or None.

    The development secret in production is refused by `Settings` itself; here: a form
    listening beyond loopback while the links in emails point at a loopback address.
    """
    if settings.env is Environment.production and settings.smtp_embedded:
        return "生产环境不能使用内置邮件服务器：设置 DUBAN_SMTP_EMBEDDED=false 和 DUBAN_SMTP_*。"
    public_host = httpx.URL(settings.public_url).host
    if not is_loopback_host(settings.portal_host) and is_loopback_host(public_host):
        return (
            f"报送表单监听 {settings.portal_host}（本机以外可访问），但邮件链接仍指向本机地址 "
            f"{settings.public_url}：设置 DUBAN_PUBLIC_URL=https://对外域名，"
            "或把 DUBAN_PORTAL_HOST 设为 127.0.0.1。"
        )
    return None


def _port_problems(settings: Settings, ui_port: int) -> list[str]:
    checks = [
        (UI_HOST, ui_port, "Prefect 界面", "用 --ui-port 指定其他端口"),
        (settings.portal_host, settings.portal_port, "报送表单", "设置 DUBAN_PORTAL_PORT"),
    ]
    if settings.smtp_embedded:
        checks.append(
            (settings.smtp_host, settings.smtp_port, "内置邮件服务器", "设置 DUBAN_SMTP_PORT")
        )
    return [problem for check in checks if (problem := port_problem(*check)) is not None]


class PlanWatcher(threading.Thread):
    """Deploys every supervised plan once, and plans started later, every `rescan` seconds.

    A plan whose year is over is deployed with its schedules paused (one warning) unless
    `allow_past_year`.
    """

    def __init__(
        self,
        settings: Settings,
        api: PrefectApi,
        *,
        rescan: float,
        allow_past_year: bool,
        pass_every: int | None,
    ) -> None:
        super().__init__(name="duban-serve-plans", daemon=True)
        self.settings = settings
        self.api = api
        self.rescan = rescan
        self.allow_past_year = allow_past_year
        self.pass_every = pass_every
        self.stopping = threading.Event()
        self.handled: set[int] = set()
        self.automation_done = False

    def supervised_plans(self) -> list[tuple[int, int]]:
        """(id, year) of each plan whose supervision has started."""
        engine = make_engine(self.settings.effective_database_url)
        try:
            with make_sessionmaker(engine)() as session:
                rows = session.execute(
                    select(Plan.id, Plan.year).where(Plan.started_at.is_not(None)).order_by(Plan.id)
                ).all()
        finally:
            engine.dispose()
        return [(plan_id, year) for plan_id, year in rows]

    def scan(self) -> None:
        """Deploy the supervised plans not handled yet; a failure is retried next scan."""
        today = clock.local_date(clock.now())
        for plan_id, year in self.supervised_plans():
            if plan_id in self.handled:
                continue
            past = plan_year_over(year, today) and not self.allow_past_year
            names = apply_deployments(
                self.api,
                plan_id,
                pool=DEFAULT_POOL,
                per_plan_names=True,
                pass_every_seconds=self.pass_every,
                schedules_active=not past,
            )
            if past:
                warning = plan_year_over_message(plan_id, year, today) + PAUSED
                err_console.print(warning, markup=False, style="yellow")
            self.handled.add(plan_id)
            console.print(f"已部署计划 {plan_id} 的 {len(names)} 个流程。")
        if not self.automation_done:
            console.print(ensure_zombie_automation(self.api, DEFAULT_ZOMBIE_AFTER))
            self.automation_done = True

    def run(self) -> None:
        """Scan until stopped."""
        while not self.stopping.is_set():
            try:
                self.scan()
            except Exception as exc:
                err_console.print(f"部署计划时出错（稍后重试）：{exc}", markup=False)
            self.stopping.wait(self.rescan)


def _wait_for_server(child: Child, api: PrefectApi) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if not child.running():
            fail(f"Prefect 服务器启动失败，见日志 {child.log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api.url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    child.stop()
    fail(f"Prefect 服务器 {SERVER_START_SECONDS:.0f} 秒内未就绪，见日志 {child.log_path}")


def _children(settings: Settings, api_url: str, ui_port: int, logs: Path) -> list[Child]:
    server_argv, server_env = prefect_server_process(UI_HOST, ui_port)
    server_env |= settings_environment(settings)
    env = (
        dict(os.environ)
        | settings_environment(settings)
        | {"PREFECT_API_URL": api_url, "DUBAN_EVENT_PUBLISHER": EventPublisher.relay.value}
    )
    return [
        Child("Prefect 服务器", server_argv, server_env, logs / "prefect-server.log"),
        Child("工作进程", [*DUBAN_CLI, "worker"], env, logs / "worker.log"),
        Child("报送表单", [*DUBAN_CLI, "portal"], env, logs / "portal.log"),
        Child("邮件投递", [*DUBAN_CLI, "mail", "relay"], env, logs / "mail-relay.log"),
        Child("事件发布", [*DUBAN_CLI, "events", "relay"], env, logs / "event-relay.log"),
    ]


def serve_command(
    ui_port: int = typer.Option(4200, "--ui-port", min=1, max=65535, help="Prefect 界面端口。"),
    allow_past_year: bool = typer.Option(
        False, "--allow-past-year", help="年度已结束的计划也启用定时督办（默认暂停）。"
    ),
    pass_every: int | None = typer.Option(
        None, "--pass-every", min=10, hidden=True, help="每隔若干秒运行每日督办（仅用于测试）。"
    ),
    rescan: float = typer.Option(
        15.0, "--rescan", min=1.0, hidden=True, help="检查新开始督办的计划的间隔（秒）。"
    ),
) -> None:
    """一条命令在本机运行整个督办系统：Prefect 服务器和界面、工作进程、报送表单、邮件与事件投递。"""
    settings = get_settings()
    refusal = serve_refusal(settings)
    if refusal is not None:
        fail(refusal)
    problems = _port_problems(settings, ui_port)
    if problems:
        fail(problems[0])
    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if settings.smtp_embedded:
        mailbox.Maildir(settings.mail_store.resolve(), create=True)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()

    api = PrefectApi(f"http://{UI_HOST}:{ui_port}/api")
    os.environ["PREFECT_API_URL"] = api.url
    children = _children(settings, api.url, ui_port, logs)
    supervisor = Children(children, report=lambda line: console.print(line, markup=False))
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    watcher: PlanWatcher | None = None
    try:
        console.print("正在启动 Prefect 服务器…")
        supervisor.start(children[0])
        _wait_for_server(children[0], api)
        for child in children[1:]:
            supervisor.start(child)
        ui_url = f"http://{UI_HOST}:{ui_port}"
        portal_url = f"http://{settings.portal_host}:{settings.portal_port}"
        write_serve_state(data_dir, ServeState(os.getpid(), api.url, ui_url, portal_url))
        console.print(f"Prefect 界面：{ui_url}", markup=False)
        console.print(f"报送表单：{portal_url}（邮件链接指向 {settings.public_url}）", markup=False)
        if settings.smtp_embedded:
            console.print(
                f"内置邮件服务器：{settings.smtp_host}:{settings.smtp_port}，"
                f"邮件保存在 {settings.mail_store.resolve()}（duban mail list 查看）",
                markup=False,
            )
        console.print(f"日志：{logs}", markup=False)
        console.print(f"其他终端使用此服务器：export PREFECT_API_URL={api.url}", markup=False)
        console.print("按 Ctrl+C 停止全部服务。")
        watcher = PlanWatcher(
            settings,
            api,
            rescan=rescan,
            allow_past_year=allow_past_year,
            pass_every=pass_every,
        )
        watcher.start()
        while not stopping.wait(0.5):
            supervisor.poll()
    finally:
        console.print("正在停止全部服务…")
        if watcher is not None:
            watcher.stopping.set()
        supervisor.stop_all()
        if watcher is not None:
            watcher.join(timeout=30)
        clear_serve_state(data_dir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("已停止。")


def register(app: typer.Typer) -> None:
    """Add `serve` to `app`."""
    app.command("serve")(serve_command)
