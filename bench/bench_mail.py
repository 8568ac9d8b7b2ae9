"""Email benchmark: render and deliver N messages through duban's outbox relay, versus the
one-connection-per-message pattern of `prefect-email` (connect, send one, quit), and versus
the sink's own ceiling (the same messages, built beforehand, pushed over the same number of
connections with no database), all in one run.

Run: `.venv/bin/python -m bench mail [--count 10000] [--database-url URL] [--window 16]`
(`--window 1` sends one message at a time, each committed before the next; the default is
the relay's). The SMTP server is aiosmtpd on 127.0.0.1 in a child process (it counts and
discards). Every side uses aiosmtplib; duban never imports smtplib, not even here.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import func, select

from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.mime import WireMail, build_email
from notifications.outbox import NewMessage, enqueue_many
from notifications.relay import RelayOptions, _quick_ack, relay_once
from notifications.rendering import KINDS, render_message
from notifications.samples import sample_context
from notifications.sink import free_port

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


class CountingHandler:
    """aiosmtpd handler that counts accepted messages and discards them."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: ARG002
        self.count += 1
        return "250 2.0.0 OK"


def serve(port: int) -> None:
    """Child process: serve SMTP on 127.0.0.1:`port` until SIGTERM, then print the count."""
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    print("ready", flush=True)
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    while not stopped:
        time.sleep(0.05)
    controller.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{handler.count} {usage.ru_utime + usage.ru_stime:.3f}", flush=True)


def enqueue_rendered(url: str, count: int, prefix: str) -> float:
    """Render `count` messages (all kinds, varied) and enqueue them; returns seconds."""
    sessions = make_sessionmaker(make_engine(url))
    kinds = sorted(KINDS)
    contexts = {kind: sample_context(kind) for kind in kinds}
    started = time.perf_counter()
    for start in range(0, count, 1000):
        batch = []
        for n in range(start, min(start + 1000, count)):
            kind = kinds[n % len(kinds)]
            context = contexts[kind]
            if "item" in context:
                context["item"]["label"] = f"第{n % 60 + 1}项"
            message = render_message(kind, context)
            batch.append(
                NewMessage(
                    key=f"{prefix}:{n}",
                    kind=kind,
                    to=[f"dept{n % 500}@example.org"],
                    subject=message.subject,
                    text_body=message.text,
                    html_body=message.html,
                )
            )
        with transaction(sessions) as session:
            enqueue_many(session=session, messages=batch, now=NOW)
    return time.perf_counter() - started


async def one_connection_per_message(rows: list[OutboxMessage], settings: Settings) -> float:
    """The prefect-email pattern: per message build, connect, send one, quit; returns seconds."""
    started = time.perf_counter()
    for row in rows:
        mail = build_email(row, settings)
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=settings.smtp_port, start_tls=False)
        await smtp.connect()
        await smtp.sendmail(mail.sender, mail.recipients, mail.data)
        await smtp.quit()
    return time.perf_counter() - started


async def sink_ceiling(rows: list[OutboxMessage], settings: Settings, connections: int) -> float:
    """What the sink itself takes: the rows' messages built beforehand (not timed), sent
    over `connections` open connections (quick ACK, as the relay does), no database;
    returns seconds."""
    mails = [build_email(row, settings) for row in rows]
    queue: asyncio.Queue[WireMail] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)

    async def push() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=settings.smtp_port, start_tls=False)
        await smtp.connect()
        while not queue.empty():
            mail = queue.get_nowait()
            _quick_ack(smtp)
            await smtp.sendmail(mail.sender, mail.recipients, mail.data)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(push() for _ in range(connections)))
    return time.perf_counter() - started


class ServerProcess:
    """The counting aiosmtpd server in a child process; `stop()` returns (count, CPU s)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.bench_mail", "--serve", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self) -> tuple[int, float]:
        self.process.terminate()
        count, cpu = self.process.communicate(timeout=60)[0].split()
        return int(count), float(cpu)


def measure_ceiling(
    rows: list[OutboxMessage], workdir: Path, connections: int
) -> tuple[float, int, float]:
    """`sink_ceiling` against a fresh counting server: (seconds, accepted, server CPU s)."""
    server = ServerProcess()
    settings = Settings(smtp_port=server.port, data_dir=workdir, smtp_timeout_seconds=30)
    seconds = asyncio.run(sink_ceiling(rows, settings, connections))
    accepted, server_cpu = server.stop()
    return seconds, accepted, server_cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--window",
        type=int,
        default=RelayOptions.window,
        help="rows sent ahead of their commit, at most (the after-crash duplicate window)",
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the relay's heap")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    print(f"machine: {platform.machine()} cpus={_cpus()} load average {_load()}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    names = ("aiosmtplib", "aiosmtpd", "jinja2", "sqlalchemy")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in names))
    workdir = Path(tempfile.mkdtemp(prefix="duban-bench-mail-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    print(f"database: {engine.dialect.name}; messages: {args.count}")

    render_seconds = enqueue_rendered(url, args.count, "relay")
    with sessions() as session:
        pending = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    ceiling_before, _, _ = measure_ceiling(pending, workdir, args.concurrency)
    del pending
    server = ServerProcess()
    settings = Settings(smtp_port=server.port, data_dir=workdir, smtp_timeout_seconds=30)
    options = RelayOptions(
        batch_size=args.batch_size, concurrency=args.concurrency, window=args.window
    )
    if args.tracemalloc:
        tracemalloc.start()
    cpu_before, started = _cpu(), time.perf_counter()
    result = asyncio.run(relay_once(sessions=sessions, settings=settings, options=options))
    relay_seconds, relay_cpu = time.perf_counter() - started, _cpu() - cpu_before
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    tracemalloc.stop()
    rss_after_relay = _max_rss_mb()
    relay_delivered, relay_server_cpu = server.stop()
    with sessions() as session:
        sent = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        )
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    server = ServerProcess()
    settings = Settings(smtp_port=server.port, data_dir=workdir, smtp_timeout_seconds=30)
    cpu_before, started = _cpu(), time.perf_counter()
    baseline_seconds = asyncio.run(one_connection_per_message(rows, settings))
    baseline_cpu = _cpu() - cpu_before
    baseline_delivered, baseline_server_cpu = server.stop()

    ceiling_after, ceiling_delivered, ceiling_server_cpu = measure_ceiling(
        rows, workdir, args.concurrency
    )
    ceiling_seconds = (ceiling_before + ceiling_after) / 2

    n = args.count
    total = render_seconds + relay_seconds
    print(f"render + enqueue: {render_seconds:.2f} s ({render_seconds / n * 1000:.2f} ms/message)")
    print(
        f"duban relay ({args.concurrency} connections, batches of {args.batch_size}, "
        f"group commit, window {args.window}): "
        f"{relay_seconds:.2f} s wall; CPU {relay_cpu / n * 1000:.2f} ms/message in the relay, "
        f"{relay_server_cpu / n * 1000:.2f} ms/message in the server; "
        f"{result.sent} sent, {result.retried} retried, {result.dead} dead, "
        f"server accepted {relay_delivered}, rows sent {sent}"
    )
    print(
        "one connection per message, sequential (prefect-email pattern): "
        f"{baseline_seconds:.2f} s wall; CPU {baseline_cpu / n * 1000:.2f} ms/message in the "
        f"client, {baseline_server_cpu / n * 1000:.2f} ms/message in the server; "
        f"server accepted {baseline_delivered}"
    )
    print(
        f"sink ceiling ({args.concurrency} connections, messages built beforehand, no "
        f"database), run before and after the relay: {ceiling_before:.2f} s and "
        f"{ceiling_after:.2f} s wall, mean {ceiling_seconds:.2f} s; "
        f"{ceiling_server_cpu / n * 1000:.2f} ms/message in the server; "
        f"server accepted {ceiling_delivered}"
    )
    relay_rate, baseline_rate, ceiling_rate = (
        n / relay_seconds,
        n / baseline_seconds,
        n / ceiling_seconds,
    )
    print(
        f"messages per second: relay {relay_rate:.0f}, one connection per message "
        f"{baseline_rate:.0f}, sink ceiling {ceiling_rate:.0f}"
    )
    print(f"rendered and delivered: {total:.2f} s (target < 30 s) -> {_verdict(total < 30)}")
    speedup = relay_rate / baseline_rate
    print(
        f"relay speed-up over one-by-one (wall): {speedup:.1f}x (target >= 2x) -> "
        f"{_verdict(speedup >= 2)}"
    )
    share = relay_rate / ceiling_rate
    print(
        f"relay share of the sink ceiling: {share:.0%} (target >= 80%) -> {_verdict(share >= 0.8)}"
    )
    print(
        "relay saving in total CPU per message (client + server): "
        f"{(baseline_cpu + baseline_server_cpu) / (relay_cpu + relay_server_cpu):.1f}x"
    )
    print(
        f"peak RSS of the benchmark process after the relay (includes the ceiling run before "
        f"it, which holds every message built at once): {rss_after_relay:.0f} MB "
        f"(target < 200 MB) -> {_verdict(rss_after_relay < 200)}"
    )
    if traced_peak is not None:
        print(f"relay heap peak (tracemalloc): {traced_peak:.1f} MB")


def _load() -> str:
    import os

    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


if __name__ == "__main__":
    main()
