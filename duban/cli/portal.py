"""`duban portal` (the check-in form server) and `duban extension …` (延期审批)."""

from __future__ import annotations

import typer
from rich.table import Table

from duban.cli.output import console, err_console
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.settings import get_settings
from portal.app import publish_if_configured
from portal.security import DEFAULT_PER_ADDRESS, RateLimits
from tasks.submissions import approve_extension, list_extensions, reject_extension

extension_app = typer.Typer(help="延期申请：查看、批准、驳回。", no_args_is_help=True)

DECISIONS = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回", "withdrawn": "已撤回"}


def portal_command(
    host: str | None = typer.Option(None, "--host", help="监听地址（默认 DUBAN_PORTAL_HOST）。"),
    port: int | None = typer.Option(None, "--port", help="监听端口（默认 DUBAN_PORTAL_PORT）。"),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="工作进程数（多核服务器可设为 CPU 核数）。"
    ),
    address_limit: int = typer.Option(
        DEFAULT_PER_ADDRESS,
        "--address-limit",
        min=1,
        help="同一来源地址每分钟最多请求数（兜底限制；同一出口的各部门共用）。",
    ),
    access_log: bool = typer.Option(
        False, "--access-log", help="记录访问日志（每个请求一行，链接令牌以摘要代替）。"
    ),
) -> None:
    """启动报送表单服务（部门通过邮件中的链接填报）。"""
    from portal.server import serve

    settings = get_settings()
    console.print(
        f"报送表单服务：http://{host or settings.portal_host}:{port or settings.portal_port}"
        f"（对外地址 {settings.public_url}，{workers} 个工作进程），按 Ctrl+C 停止。"
    )
    serve(
        settings,
        host=host,
        port=port,
        workers=workers,
        limits=RateLimits(per_address=address_limit),
        access_log=access_log,
    )


@extension_app.command("list")
def list_command(
    all_: bool = typer.Option(False, "--all", help="包括已处理的申请。"),
) -> None:
    """列出延期申请（默认只列待审批的）。"""
    store = open_store()
    with store.sessions() as session:
        extensions = list_extensions(session=session, pending_only=not all_)
    table = Table("编号", "报送", "申请延期至", "理由", "申请时间", "状态")
    for ext in extensions:
        table.add_row(
            str(ext.id),
            str(ext.checkin_id),
            ext.requested_date.isoformat(),
            ext.reason,
            ext.requested_at.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
            DECISIONS.get(ext.decision, ext.decision),
        )
    console.print(table)
    console.print(f"共 {len(extensions)} 条。")


def _decide(extension_id: int, decided_by: str, *, approve: bool, reason: str = "") -> None:
    store = open_store()
    now = clock.now()
    with transaction(store.sessions) as session:
        if approve:
            ext = approve_extension(
                session=session, extension_id=extension_id, decided_by=decided_by, now=now
            )
            message = (
                f"已批准延期申请 {ext.id}：报送 {ext.checkin_id} 截止日期由 "
                f"{ext.previous_due_date} 延至 {ext.requested_date}。"
            )
        else:
            ext = reject_extension(
                session=session,
                extension_id=extension_id,
                decided_by=decided_by,
                now=now,
                reason=reason,
            )
            message = f"已驳回延期申请 {ext.id}（报送 {ext.checkin_id}）。"
    console.print(message)
    try:
        publish_if_configured(store.sessions, now)
    except Exception as exc:  # the event stays pending; the next flow run publishes it
        err_console.print(f"提示：事件暂未发送到 Prefect（{type(exc).__name__}），稍后会补发。")


@extension_app.command("approve")
def approve_command(
    extension_id: int = typer.Argument(..., help="延期申请编号（见 duban extension list）。"),
    by: str = typer.Option("督查室", "--by", help="审批人。"),
) -> None:
    """批准延期：顺延截止日期（遇节假日顺延至工作日），重新开始催办。"""
    _decide(extension_id, by, approve=True)


@extension_app.command("reject")
def reject_command(
    extension_id: int = typer.Argument(..., help="延期申请编号（见 duban extension list）。"),
    by: str = typer.Option("督查室", "--by", help="审批人。"),
    reason: str = typer.Option("", "--reason", help="驳回理由（写入邮件和事件）。"),
) -> None:
    """驳回延期：截止日期不变，并邮件告知申请部门。"""
    _decide(extension_id, by, approve=False, reason=reason)


def register(app: typer.Typer) -> None:
    """Add `duban portal` and the `duban extension` group to `app`."""
    app.command("portal")(portal_command)
    app.add_typer(extension_app, name="extension")
