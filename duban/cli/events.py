"""`duban events …`: the domain events waiting for Prefect's event feed, and their relay."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from duban.cli.output import console
from duban.runtime import open_store
from models import clock
from models.formats import cn_moment
from models.settings import EventPublisher, get_settings
from tasks.events import (
    EventRelay,
    oldest_pending_event_at,
    pending_event_count,
    publish_pending_events,
    relay_events_forever,
)

app = typer.Typer(
    help="事件：待发布到 Prefect 事件流的督办事件及其发布进程。", no_args_is_help=True
)


@app.command("status")
def status_command() -> None:
    """显示待发布的事件数、最早一条的写入时间和发布方式。"""
    settings = get_settings()
    store = open_store(settings)
    pending = pending_event_count(store.sessions)
    oldest = oldest_pending_event_at(store.sessions)
    since = f"，最早一条写入于 {cn_moment(oldest)}" if oldest is not None else ""
    console.print(f"待发布事件 {pending} 条{since}。")
    if settings.event_publisher is EventPublisher.relay:
        console.print(
            "发布方式：relay，由 duban events relay（duban serve 的“事件发布”进程）发布。"
        )
    else:
        console.print("发布方式：flow，由写入事件的流程运行在结束前发布。")


@app.command("relay")
def relay_command(
    once: bool = typer.Option(False, "--once", help="发布完当前积压后退出"),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="无积压时的检查间隔（秒）"),
    settle: float = typer.Option(
        1.0, "--settle", min=0.0, help="新事件停止写入多少秒、且没有巡检在运行时再发布"
    ),
    max_delay: float = typer.Option(
        30.0, "--max-delay", min=0.0, help="事件最多等待多少秒即发布，即使仍有新事件写入"
    ),
) -> None:
    """把督办事件发布到 Prefect 事件流（DUBAN_EVENT_PUBLISHER=relay 时由本进程发布）。"""
    store = open_store(get_settings())
    if once:
        sent = publish_pending_events(sessions=store.sessions, now=clock.now())
        left = pending_event_count(store.sessions)
        console.print(f"已发布事件 {sent} 条，待发布 {left} 条。")
        return
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    console.print(f"正在发布督办事件，无积压时每 {interval:g} 秒检查一次；按 Ctrl+C 停止。")

    def on_published(sent: int) -> None:
        left = pending_event_count(store.sessions)
        console.print(f"{clock.now():%H:%M:%S} 已发布事件 {sent} 条，待发布 {left} 条。")

    try:
        relay_events_forever(
            relay=EventRelay(
                sessions=store.sessions,
                interval_seconds=interval,
                settle_seconds=settle,
                max_delay_seconds=max_delay,
            ),
            stop=stop,
            on_published=on_published,
        )
    except KeyboardInterrupt:
        pass
    console.print("已停止发布事件。")
