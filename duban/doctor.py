"""`duban doctor`: check a deployment's set-up and say, in Chinese, what to fix.

Each check returns a `Check` (name, ok, detail, fix); `run_checks` runs them all and never
raises for a broken part, so one report lists every problem at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import aiosmtplib
import httpx
from sqlalchemy import func, select

from duban.prefect_api import DEFAULT_POOL, ZOMBIE_AUTOMATION, PrefectApi, declared_deployments
from duban.serve_state import read_serve_state
from models import clock
from models.attachments import format_size
from models.db import current_revision, head_revision, make_engine, make_sessionmaker
from models.errors import DubanError
from models.outbox import DomainEvent
from models.settings import Environment, EventPublisher, Settings
from models.vocabulary import RecipientRole


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_database(settings: Settings) -> Check:
    """The app database answers and is at the newest migration."""
    engine = make_engine(settings.effective_database_url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except DubanError as exc:
        return Check("数据库", False, str(exc), "启动数据库或修正 DUBAN_DATABASE_URL")
    finally:
        engine.dispose()
    head = head_revision()
    if current != head:
        state = "未初始化" if current is None else f"版本 {current}"
        return Check("数据库", False, f"{where}：{state}，需要 {head}", "运行 duban db upgrade")
    return Check("数据库", True, f"{where}（版本 {current}）")


def check_prefect(api: PrefectApi | None, pool: str) -> list[Check]:
    """Prefect API reachable, every prefect.yaml deployment present, the pool has workers."""
    if api is None:
        return [
            Check(
                "Prefect 服务器",
                False,
                "未设置 PREFECT_API_URL（仅有进程内临时服务器，部署和工作进程无法使用）",
                "启动 Prefect 服务器（duban ui 或 prefect server start）并设置 PREFECT_API_URL",
            )
        ]
    problem = api.health_problem()
    if problem is not None:
        return [Check("Prefect 服务器", False, problem, "检查服务器是否运行、地址与认证设置")]
    checks = [Check("Prefect 服务器", True, api.url)]
    present = {name.split("/", 1)[-1] for name in api.deployment_names()}
    missing = sorted(name for name in declared_deployments() if not _deployed(name, present))
    if missing:
        checks.append(
            Check("部署", False, "缺少：" + "、".join(missing), "运行 duban deploy --plan 计划编号")
        )
    else:
        checks.append(Check("部署", True, f"{len(declared_deployments())} 个部署均已创建"))
    checks.append(check_zombie_automation(api))
    if api.work_pool(pool) is None:
        checks.append(Check("工作池", False, f"工作池 {pool} 不存在", "运行 duban deploy"))
        return checks
    workers = api.online_workers(pool)
    if not workers:
        checks.append(
            Check(
                "工作进程",
                False,
                f"工作池 {pool} 没有在线的工作进程",
                "在工作机上运行 duban worker",
            )
        )
    else:
        checks.append(Check("工作进程", True, f"{pool}：{len(workers)} 个在线"))
    return checks


def _deployed(name: str, present: set[str]) -> bool:
    """`name` exists as is, or per plan as `name-<plan id>` (how `duban serve` names them)."""
    return name in present or any(
        other.startswith(f"{name}-") and other.removeprefix(f"{name}-").isdigit()
        for other in present
    )


def check_zombie_automation(api: PrefectApi) -> Check:
    """The zombie-run automation exists, is enabled and crashes runs silent past its window."""
    window = api.zombie_window()
    if window is None:
        return Check(
            "僵尸运行检测",
            False,
            f"缺少已启用的自动化 {ZOMBIE_AUTOMATION}：工作进程失联后其运行会一直停在 Running",
            "运行 duban deploy --plan 计划编号（--zombie-after 秒数，默认 240）",
        )
    return Check("僵尸运行检测", True, f"{window} 秒无心跳的流程运行标记为 Crashed")


async def _smtp_problem(settings: Settings) -> str | None:
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        timeout=min(settings.smtp_timeout_seconds, 5.0),
        use_tls=settings.smtp_security.value == "tls",
        start_tls=settings.smtp_security.value == "starttls",
    )
    try:
        await client.connect()
        await client.ehlo()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def check_smtp(settings: Settings) -> Check:
    """The SMTP server accepts a connection and answers EHLO (no mail is sent)."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    problem = asyncio.run(_smtp_problem(settings))
    if problem is not None:
        fix = (
            "运行 duban mail relay（内置邮件服务器随之启动）"
            if settings.smtp_embedded
            else "检查 DUBAN_SMTP_*"
        )
        return Check("邮件服务器", False, f"{where} 无法连接：{problem}", fix)
    return Check("邮件服务器", True, where)


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_public_url(settings: Settings) -> Check:
    """The public URL in emails is absolute, and in production not loopback or plain http."""
    url = settings.public_url
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return Check("公开地址", False, f"{url} 不是绝对地址", "设置 DUBAN_PUBLIC_URL=https://…")
    if settings.env is Environment.production:
        if is_loopback_host(parts.hostname or ""):
            return Check("公开地址", False, f"{url} 是本机地址，部门打不开", "设置对外域名")
        if parts.scheme != "https":
            return Check("公开地址", False, f"{url} 未使用 https", "在反向代理上启用 https")
    return Check("公开地址", True, url)


def check_document_converter() -> Check:
    """Which converter reads .doc/.wps plans (LibreOffice, else antiword); optional, so a
    missing one is reported with its install command but does not fail the check."""
    from models.plan_reader.word97 import INSTALL_HINT, available_converter

    found = available_converter()
    if found is None:
        return Check("文档转换", True, f"未安装，.doc/.wps 计划将被拒绝；安装：{INSTALL_HINT}")
    if found.endswith("antiword"):
        return Check("文档转换", True, f"antiword（{found}，仅文字；.wps 与 RTF 需 LibreOffice）")
    return Check("文档转换", True, f"LibreOffice（{found}）")


def serve_setup(settings: Settings) -> tuple[PrefectApi | None, list[Check]]:
    """The embedded Prefect API of a `duban serve` running on this data dir, and its check.

    For a shell without PREFECT_API_URL: a running serve's API is the one to check; a serve
    that left its state file but stopped is reported.
    """
    state = read_serve_state(settings.data_dir.resolve())
    if state is None:
        return None, []
    if not state.running():
        return None, [
            Check("duban serve", False, "上次启动的 duban serve 已不在运行", "运行 duban serve")
        ]
    detail = f"运行中（进程 {state.pid}），界面 {state.ui_url}"
    return PrefectApi(state.api_url), [Check("duban serve", True, detail)]


def portal_probe_url(settings: Settings) -> str:
    """Where the form's `/healthz` answers on this machine (a wildcard host is probed on
    loopback)."""
    host = settings.portal_host
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.portal_port}/healthz"


def check_portal(settings: Settings) -> list[Check]:
    """The check-in form answers `/healthz` at the configured address and emits events.

    A form without `PREFECT_API_URL` stores submissions but never triggers `supervise-item`
    (the events wait for the next daily pass): reported as a problem.
    """
    url = portal_probe_url(settings)
    start = "运行 duban portal（或 duban serve）"
    try:
        response = httpx.get(url, timeout=3.0)
    except httpx.HTTPError as exc:
        return [Check("报送表单", False, f"{url} 无法连接：{type(exc).__name__}", start)]
    if response.status_code != 200:
        return [
            Check("报送表单", False, f"{url} 返回 {response.status_code}", "查看报送表单服务日志")
        ]
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or body.get("status") != "ok":
        return [Check("报送表单", False, f"{url} 不是督办报送表单服务", "检查 DUBAN_PORTAL_PORT")]
    checks = [Check("报送表单", True, url)]
    if body.get("prefect_api") is False:
        checks.append(
            Check(
                "报送事件",
                False,
                "报送表单服务未设置 PREFECT_API_URL：部门报送后不会立即触发 supervise-item",
                "为报送表单服务设置 PREFECT_API_URL（和 PREFECT_API_AUTH_STRING）后重启",
            )
        )
    return checks


STALE_EVENT_AFTER = timedelta(minutes=10)


def check_pending_events(settings: Settings, now: datetime) -> list[Check]:
    """No domain event waits unpublished longer than `STALE_EVENT_AFTER` (a process that
    writes events has no Prefect API, or the API was down)."""
    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            stale = session.scalar(
                select(func.count())
                .select_from(DomainEvent)
                .where(
                    DomainEvent.published_at.is_(None),
                    DomainEvent.created_at < now - STALE_EVENT_AFTER,
                )
            )
    finally:
        engine.dispose()
    if stale:
        return [
            Check(
                "报送事件",
                False,
                f"{stale} 条事件超过 10 分钟未发送到 Prefect，相关任务未被立即重新督办",
                (
                    "确认事件发布进程 duban events relay 在运行（DUBAN_EVENT_PUBLISHER=relay），"
                    "并为它设置 PREFECT_API_URL"
                    if settings.event_publisher is EventPublisher.relay
                    else "为报送表单服务和命令行设置 PREFECT_API_URL；下一次每日督办会补发"
                ),
            )
        ]
    return []


def check_calendar(settings: Settings) -> Check:
    """Every plan being or about to be supervised has holiday data for its year."""
    from duban.runtime import open_store
    from tasks.calendar_store import plans_without_calendar

    try:
        store = open_store(settings)
    except DubanError:
        return Check("工作日历", True, "数据库未就绪，未检查（见上方数据库一项）")
    with store.sessions() as session:
        missing = plans_without_calendar(session=session)
    store.engine.dispose()
    if missing:
        detail = "；".join(f"计划 {p.id}（{p.year}年）没有{p.year}年的节假日数据" for p in missing)
        return Check(
            "工作日历",
            False,
            f"{detail}，工作日按仅周末计算",
            "按国务院办公厅通知填写日历文件后运行 duban calendar import 文件"
            "（示例见 examples/calendar-2027.example.yaml）",
        )
    return Check("工作日历", True, "督办中的计划所在年度均有节假日数据")


def check_attachment_store(settings: Settings) -> Check:
    """Where evidence files go: the database, or a shared directory that must be writable."""
    size = format_size(settings.attachment_max_bytes)
    limits = f"每个不超过{size}，每次最多{settings.attachment_max_count}个"
    root = settings.attachment_dir
    if root is None:
        return Check("附件存储", True, f"存于数据库（{limits}）")
    fix = (
        f"在每台运行表单和工作进程的机器上挂载共享目录 {root} 并允许写入，"
        "或取消 DUBAN_ATTACHMENT_DIR"
    )
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("附件存储", False, f"共享目录 {root} 不可写：{exc.strerror or exc}", fix)
    return Check("附件存储", True, f"共享目录 {root}（{limits}）")


def run_checks(
    settings: Settings,
    api: PrefectApi | None,
    *,
    pool: str = DEFAULT_POOL,
    now: datetime | None = None,
) -> list[Check]:
    """Run every check; a check that crashes is reported as failed, never raised.

    The pending-events check runs only when the database check passed.
    """
    checks: list[Check] = []
    moment = now or clock.now()
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("数据库", lambda: [check_database(settings)]),
        ("Prefect 服务器", lambda: check_prefect(api, pool)),
        ("报送表单", lambda: check_portal(settings)),
        ("邮件服务器", lambda: [check_smtp(settings)]),
        ("公开地址", lambda: [check_public_url(settings)]),
        ("文档转换", lambda: [check_document_converter()]),
        ("工作日历", lambda: [check_calendar(settings)]),
        ("群机器人", lambda: check_robots(settings)),
        ("附件存储", lambda: [check_attachment_store(settings)]),
    ]
    for name, step in steps:
        try:
            checks.extend(step())
        except Exception as exc:
            checks.append(Check(name, False, f"检查出错：{type(exc).__name__}: {exc}"))
        if name == "数据库" and checks[-1].ok:
            try:
                checks.extend(check_pending_events(settings, moment))
            except Exception as exc:
                checks.append(Check("报送事件", False, f"检查出错：{type(exc).__name__}: {exc}"))
    return checks


def check_robots(settings: Settings) -> list[Check]:
    """The group chat robots configured in the directory (never their secrets or tokens),
    and chat messages in the dead letters."""
    from duban.runtime import open_store
    from models.directory import Department
    from models.outbox import OutboxMessage
    from models.vocabulary import Channel
    from notifications.chat import mask_url

    try:
        store = open_store(settings)
    except DubanError:
        return [Check("群机器人", True, "数据库未就绪，未检查（见上方数据库一项）")]
    with store.sessions() as session:
        departments = list(session.scalars(select(Department).order_by(Department.name)))
        dead = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.channel != Channel.EMAIL, OutboxMessage.status == "dead")
        )
    store.engine.dispose()
    lines = []
    for department in departments:
        robots = [robot for robot in department.robots if isinstance(robot, dict)]
        if robots:
            shown = "、".join(
                f"{Channel.label_of(str(robot.get('kind')))}"
                f"（{RecipientRole.label_of(str(robot.get('role')))}，"
                f"{mask_url(str(robot.get('url')))}{'，加签' if robot.get('secret') else ''}）"
                for robot in robots
            )
            lines.append(f"{department.name}：{shown}")
    checks = [
        Check("群机器人", True, "；".join(lines) if lines else "未配置（督办与通报只发邮件）")
    ]
    if dead:
        checks.append(
            Check(
                "群消息",
                False,
                f"{dead} 条群消息投递失败",
                "运行 duban mail list --status dead 查看原因，"
                "修正部门名录后运行 duban mail retry --dead",
            )
        )
    return checks
