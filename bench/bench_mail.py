"""Email benchmark: render and deliver N messages through duban's outbox relay, versus the
one-connection-per-message pattern of `prefect-email` (connect, send one, quit), and versus
the sink's own ceiling (the same messages, built beforehand, pushed over open connections
with no database: over 4 and over the relay's number, the faster counting), all in one run.

Run: `.venv/bin/python -m bench mail [--count 10000] [--database-url URL] [--window 16]
[--runs 3]` (`--window 1` sends one message at a time, each committed before the next;
window, connections and batch size default to the relay's own). The relay runs `--runs`
times, each over freshly rendered rows, and the ceiling is measured before each relay run
and once more at the end; every run is printed with the load average, and the median relay
run is compared with the highest median ceiling (the machine may be shared: CPU per message
is the steadier figure). The SMTP server is aiosmtpd on 127.0.0.1 in a child process (it
counts and discards). Every side uses aiosmtplib; duban never imports smtplib, not even
here.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.mime import WireMail, build_email
from notifications.outbox import NewMessage, enqueue_many
from notifications.relay import RelayOptions, RelayResult, _quick_ack, relay_once
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


@dataclass(frozen=True)
class RelayRun:
    """One relay run over freshly enqueued rows: wall and CPU seconds, the load average at
    its start, the counts, and the server's accepted messages and CPU seconds."""

    seconds: float
    cpu: float
    load: str
    result: RelayResult
    rows_sent: int
    delivered: int
    server_cpu: float
    traced_peak_mb: float | None


def run_relay(
    sessions: sessionmaker[Session], workdir: Path, options: RelayOptions, *, trace: bool
) -> RelayRun:
    """`relay_once` at `options` over the outbox as it is, against a fresh counting server
    (with `trace`, the relay's heap peak is traced)."""
    server = ServerProcess()
    settings = Settings(smtp_port=server.port, data_dir=workdir, smtp_timeout_seconds=30)
    if trace:
        tracemalloc.start()
    load, cpu_before, started = _load(), _cpu(), time.perf_counter()
    result = asyncio.run(relay_once(sessions=sessions, settings=settings, options=options))
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu_before
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    tracemalloc.stop()
    delivered, server_cpu = server.stop()
    with sessions() as session:
        sent = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        )
    return RelayRun(seconds, cpu, load, result, int(sent or 0), delivered, server_cpu, traced_peak)


def fresh_outbox(sessions: sessionmaker[Session], url: str, count: int, prefix: str) -> float:
    """Empty the outbox and render and enqueue `count` new messages; returns seconds."""
    with transaction(sessions) as session:
        session.execute(delete(OutboxMessage))
    return enqueue_rendered(url, count, prefix)


def all_rows(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    """Every outbox row, in id order (the messages the ceiling sends)."""
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=RelayOptions.concurrency,
        help="the relay's connections (default: the relay's own default)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=RelayOptions.batch_size,
        help="rows per claim (default: the relay's own default)",
    )
    parser.add_argument(
        "--ceiling-connections",
        default="",
        help="comma-separated connection counts the sink's ceiling is measured with "
        "(default: 4 and the relay's); the highest median is the ceiling",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=RelayOptions.window,
        help="rows sent ahead of their commit, at most (the after-crash duplicate window)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="relay runs, each on freshly enqueued rows; the ceiling is measured before each "
        "and after the last (medians are compared)",
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
    print(f"database: {engine.dialect.name}; messages: {args.count}; relay runs: {args.runs}")
    options = RelayOptions(
        batch_size=args.batch_size, concurrency=args.concurrency, window=args.window
    )
    n = args.count
    counts = sorted(
        {int(value) for value in args.ceiling_connections.split(",") if value.strip()}
        or {4, args.concurrency}
    )

    runs: list[RelayRun] = []
    ceilings: dict[int, list[tuple[float, str]]] = {count: [] for count in counts}
    render_seconds = rss_after_relay = 0.0
    for number in range(max(1, args.runs)):
        seconds = fresh_outbox(sessions, url, n, f"relay{number}")
        render_seconds = render_seconds or seconds
        rows = all_rows(sessions)
        for count in counts:
            load = _load()
            ceilings[count].append((measure_ceiling(rows, workdir, count)[0], load))
        del rows
        runs.append(run_relay(sessions, workdir, options, trace=args.tracemalloc))
        rss_after_relay = rss_after_relay or _max_rss_mb()
    rows = all_rows(sessions)

    server = ServerProcess()
    settings = Settings(smtp_port=server.port, data_dir=workdir, smtp_timeout_seconds=30)
    baseline_load, cpu_before = _load(), _cpu()
    baseline_seconds = asyncio.run(one_connection_per_message(rows, settings))
    baseline_cpu = _cpu() - cpu_before
    baseline_delivered, baseline_server_cpu = server.stop()

    for count in counts:
        load = _load()
        ceiling_after, ceiling_delivered, ceiling_server_cpu = measure_ceiling(rows, workdir, count)
        ceilings[count].append((ceiling_after, load))

    print(f"render + enqueue: {render_seconds:.2f} s ({render_seconds / n * 1000:.2f} ms/message)")
    for number, run in enumerate(runs, 1):
        result = run.result
        print(
            f"duban relay run {number} (load {run.load}; {args.concurrency} connections, "
            f"batches of {args.batch_size}, group commit, window {args.window}): "
            f"{run.seconds:.2f} s wall; CPU {run.cpu / n * 1000:.2f} ms/message in the relay, "
            f"{run.server_cpu / n * 1000:.2f} ms/message in the server; "
            f"{result.sent} sent, {result.retried} retried, {result.dead} dead, "
            f"server accepted {run.delivered}, rows sent {run.rows_sent}"
        )
    relay = _median_run(runs)
    relay_seconds, relay_cpu, relay_server_cpu = relay.seconds, relay.cpu, relay.server_cpu
    print(
        "one connection per message, sequential (prefect-email pattern) "
        f"(load {baseline_load}): {baseline_seconds:.2f} s wall; CPU "
        f"{baseline_cpu / n * 1000:.2f} ms/message in the client, "
        f"{baseline_server_cpu / n * 1000:.2f} ms/message in the server; "
        f"server accepted {baseline_delivered}"
    )
    medians = {
        count: statistics.median(seconds for seconds, _ in ceilings[count]) for count in counts
    }
    for count in counts:
        print(
            f"sink ceiling ({count} connections, messages built beforehand, no database), "
            "before each relay run and at the end: "
            + ", ".join(f"{seconds:.2f} s (load {load})" for seconds, load in ceilings[count])
            + f" wall, median {medians[count]:.2f} s ({n / medians[count]:.0f} msg/s)"
        )
    best = min(counts, key=lambda count: medians[count])
    ceiling_seconds = medians[best]
    print(
        f"sink ceiling: the highest median, {best} connections; last run "
        f"({counts[-1]} connections) {ceiling_server_cpu / n * 1000:.2f} ms/message in the "
        f"server, server accepted {ceiling_delivered}"
    )
    relay_rate, baseline_rate, ceiling_rate = (
        n / relay_seconds,
        n / baseline_seconds,
        n / ceiling_seconds,
    )
    print(
        f"messages per second: relay {relay_rate:.0f} (median run), one connection per "
        f"message {baseline_rate:.0f}, sink ceiling {ceiling_rate:.0f} (median)"
    )
    total = render_seconds + relay_seconds
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
        f"peak RSS of the benchmark process after the first relay run (includes the ceiling "
        f"run before it, which holds every message built at once): {rss_after_relay:.0f} MB "
        f"(target < 200 MB) -> {_verdict(rss_after_relay < 200)}"
    )
    peaks = [run.traced_peak_mb for run in runs if run.traced_peak_mb is not None]
    if peaks:
        print(f"relay heap peak (tracemalloc): {max(peaks):.1f} MB")


def _median_run(runs: list[RelayRun]) -> RelayRun:
    """The run with the median wall time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda run: run.seconds)
    return ordered[(len(ordered) - 1) // 2]


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
