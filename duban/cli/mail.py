"""`duban mail …`: the email outbox, the relay, the embedded SMTP sink and its mail store."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime

import typer
from rich.table import Table

from duban.cli.output import console, fail
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.outbox import OutboxMessage
from models.settings import Settings, get_settings
from models.vocabulary import Channel, NoticeKind, OutboxStatus
from notifications.chat import mask_url
from notifications.mailstore import list_mail, read_mail
from notifications.outbox import count_by_status, find_message, list_messages, requeue_messages
from notifications.relay import RelayResult, relay_forever, relay_once
from notifications.rendering import KINDS, render_message
from notifications.samples import sample_context
from notifications.sink import MailSink

app = typer.Typer(help="邮件：发件箱、投递、内置邮件服务器与邮件库。", no_args_is_help=True)

OUTBOX_STATUS_LABELS = OutboxStatus.labels()
CHAT_KIND = "群消息"
LABELS = {**KINDS, "digest": "每日汇总"}  # the digest renders outside KINDS (notifications.digest)


def _local(moment: datetime | None) -> str:
    return moment.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def _recipients(row: OutboxMessage) -> str:
    """The row's recipients; a robot's webhook without its token."""
    if row.channel == Channel.EMAIL:
        return "、".join(row.to_addrs)
    return "、".join(mask_url(str(url)) for url in row.to_addrs)


@app.command("list")
def list_command(
    status: str = typer.Option(None, "--status", help="只看某一状态：pending/sending/sent/dead"),
    limit: int = typer.Option(50, "--limit", min=1, help="最多显示几条"),
) -> None:
    """列出发件箱中的邮件（最新的在前）。"""
    if status is not None and status not in OUTBOX_STATUS_LABELS:
        fail(f"未知的状态 {status}，可用：{'、'.join(OUTBOX_STATUS_LABELS)}")
    store = open_store()
    with store.sessions() as session:
        counts = count_by_status(session=session)
        rows = list_messages(session=session, status=status, limit=limit)
    table = Table("编号", "渠道", "类型", "状态", "次数", "收件人", "主题", "创建时间", "错误")
    for row in rows:
        table.add_row(
            row.id[:12],
            Channel.label_of(row.channel),
            LABELS.get(row.kind)
            or (CHAT_KIND if row.kind == "chat" else NoticeKind.label_of(row.kind)),
            OUTBOX_STATUS_LABELS.get(row.status, row.status),
            str(row.attempts),
            _recipients(row),
            row.subject,
            _local(row.created_at),
            row.last_error[:40],
        )
    console.print(table)
    summary = "，".join(f"{OUTBOX_STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items()))
    console.print(f"共 {sum(counts.values())} 封：{summary or '无'}。")


@app.command("show")
def show_command(message_id: str = typer.Argument(..., help="邮件编号（至少前6位）")) -> None:
    """显示发件箱中一封邮件的详情和正文。"""
    store = open_store()
    with store.sessions() as session:
        row = find_message(session=session, prefix=message_id)
    if row is None:
        fail(f"发件箱中没有唯一匹配 {message_id} 的邮件（编号至少写前6位）。")
    console.print(f"编号：{row.id}", markup=False)
    console.print(
        f"渠道：{Channel.label_of(row.channel)}  类型：{LABELS.get(row.kind, row.kind)}"
        f"  状态：{OUTBOX_STATUS_LABELS[row.status]}"
    )
    console.print(
        f"收件人：{_recipients(row)}  抄送：{'、'.join(row.cc_addrs) or '无'}", markup=False
    )
    console.print(f"主题：{row.subject}", markup=False)
    console.print(f"尝试次数：{row.attempts}  下次尝试：{_local(row.next_attempt_at)}")
    console.print(f"创建：{_local(row.created_at)}  发送：{_local(row.sent_at) or '未发送'}")
    if row.last_error:
        console.print(f"最近错误：{row.last_error}", markup=False)
    for address, reply in row.recipient_results.items():
        console.print(f"  {address}：{reply}", markup=False)
    if row.attachments:
        console.print("附件：" + "、".join(str(a.get("filename")) for a in row.attachments))
    console.print("")
    console.print(row.text_body, markup=False, soft_wrap=True)


@app.command("retry")
def retry_command(
    message_id: str = typer.Argument(None, help="邮件编号（至少前6位）"),
    dead: bool = typer.Option(False, "--dead", help="重新投递全部失败的邮件"),
) -> None:
    """把失败的邮件放回待发送队列（立即重试，重试次数清零）。"""
    if (message_id is None) == (not dead):
        fail("请给出一个邮件编号，或使用 --dead 重试全部失败邮件（二选一）。")
    store = open_store()
    with transaction(store.sessions) as session:
        if dead:
            count = requeue_messages(session=session, now=clock.now(), dead=True)
        else:
            row = find_message(session=session, prefix=message_id)
            if row is None:
                fail(f"发件箱中没有唯一匹配 {message_id} 的邮件。")
            if row.status not in ("dead", "pending"):
                fail(f"邮件 {row.id[:12]} 的状态是{OUTBOX_STATUS_LABELS[row.status]}，不能重试。")
            count = requeue_messages(session=session, now=clock.now(), message_id=row.id)
    console.print(f"已放回待发送队列：{count} 封。")


@app.command("preview")
def preview_command(
    kind: str = typer.Argument(..., help=f"邮件类型：{'/'.join(KINDS)}"),
    html: bool = typer.Option(False, "--html", help="输出 HTML 而不是纯文本"),
) -> None:
    """用示例数据预览一种邮件（主题和正文）。"""
    if kind not in KINDS:
        fail(f"未知的邮件类型 {kind}，可用：{'、'.join(KINDS)}")
    message = render_message(kind, sample_context(kind))
    console.print(f"主题：{message.subject}", markup=False)
    console.print("")
    console.print(message.html if html else message.text, markup=False, soft_wrap=True)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _open_sink(settings: Settings) -> MailSink:
    """The embedded server for `settings`, its Maildir created; a clear error if it cannot be."""
    try:
        return MailSink(path=settings.mail_store, host=settings.smtp_host, port=settings.smtp_port)
    except OSError as exc:
        fail(
            f"无法创建内置邮件服务器的邮件库目录 {settings.mail_store}（{exc.strerror}）。"
            "请检查数据目录 DUBAN_DATA_DIR 是否可写，"
            "或设置 DUBAN_SMTP_EMBEDDED=false 使用真实的邮件服务器。"
        )


def _embedded_sink(settings: Settings) -> MailSink | None:
    if not settings.smtp_embedded or _port_in_use(settings.smtp_host, settings.smtp_port):
        return None
    sink = _open_sink(settings)
    console.print(
        f"已启动内置邮件服务器 {settings.smtp_host}:{settings.smtp_port}，邮件保存在 "
        f"{settings.mail_store}",
        markup=False,
    )
    return sink.start()


def _print_result(result: RelayResult) -> None:
    console.print(
        f"领取 {result.claimed} 封：发送成功 {result.sent}，稍后重试 {result.retried}，"
        f"失败 {result.dead}，被其他投递进程接管 {result.lost}。"
    )
    if result.channels:
        sent = "，".join(
            f"{Channel.label_of(channel)} {count}"
            for channel, count in sorted(result.channels.items())
        )
        console.print(f"  按渠道：{sent}。")
    for error in result.errors[:10]:
        console.print(f"  {error}", markup=False)


@app.command("relay")
def relay_command(
    once: bool = typer.Option(False, "--once", help="投递一轮后退出"),
    interval: float = typer.Option(5.0, "--interval", min=0.5, help="轮询间隔（秒）"),
) -> None:
    """投递发件箱中的待发送邮件（内置模式下自动启动本机邮件服务器）。"""
    settings = get_settings()
    store = open_store(settings)
    sink = _embedded_sink(settings)
    try:
        if once:
            _print_result(asyncio.run(relay_once(sessions=store.sessions, settings=settings)))
            return
        console.print(f"正在投递，每 {interval:g} 秒检查一次；按 Ctrl+C 停止。")
        stop = asyncio.Event()
        try:
            asyncio.run(
                relay_forever(
                    sessions=store.sessions,
                    settings=settings,
                    stop=stop,
                    interval_seconds=interval,
                    on_result=_print_result,
                )
            )
        except KeyboardInterrupt:
            console.print("已停止投递。")
    finally:
        if sink is not None:
            sink.stop()


@app.command("sink")
def sink_command() -> None:
    """在前台运行内置邮件服务器（127.0.0.1），把收到的每封邮件存入邮件库。"""
    settings = get_settings()
    if _port_in_use(settings.smtp_host, settings.smtp_port):
        fail(f"端口 {settings.smtp_host}:{settings.smtp_port} 已被占用（内置邮件服务器已在运行？）")
    sink = _open_sink(settings)
    sink.start()
    console.print(
        f"内置邮件服务器运行于 {settings.smtp_host}:{settings.smtp_port}，邮件保存在 "
        f"{settings.mail_store}；按 Ctrl+C 停止。",
        markup=False,
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print(f"已停止。本次共收到 {sink.handler.received} 封邮件。")
    finally:
        sink.stop()


@app.command("store")
def store_command(
    ref: str = typer.Argument(None, help="显示一封邮件：编号（Message-ID 的开头）"),
    html: bool = typer.Option(False, "--html", help="显示 HTML 正文"),
) -> None:
    """查看内置邮件服务器收到的邮件（不给参数时列出全部）。"""
    settings = get_settings()
    if ref is not None:
        content = read_mail(settings.mail_store, ref)
        mail = content.mail
        console.print(
            f"主题：{mail.subject}\n发件人：{mail.sender}\n收件人：{mail.to}", markup=False
        )
        console.print(f"Message-ID：{mail.message_id}  类型：{mail.kind}", markup=False)
        if content.attachments:
            console.print("附件：" + "、".join(content.attachments), markup=False)
        console.print("")
        console.print(content.html if html else content.text, markup=False, soft_wrap=True)
        return
    mails = list_mail(settings.mail_store)
    table = Table("编号", "时间", "类型", "收件人", "主题")
    for mail in mails:
        table.add_row(
            mail.message_id.strip("<>").partition("@")[0][:12] or mail.key[:24],
            _local(mail.date),
            LABELS.get(mail.kind, mail.kind),
            mail.envelope_to or mail.to,
            mail.subject,
        )
    console.print(table)
    console.print(f"邮件库 {settings.mail_store}：共 {len(mails)} 封。", markup=False)
