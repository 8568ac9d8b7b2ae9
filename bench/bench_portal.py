"""Check-in form under load: `duban portal` (uvicorn, N worker processes) on loopback.

Run: `.venv/bin/python -m bench portal [--database-url URL] [--checkins 500]
[--seconds 10] [--concurrency 32] [--workers 1]`. The portal runs in a child process (its
workers are its children); the load client is a small HTTP/1.1 keep-alive client on
asyncio streams in this process, so its own cost stays low. Two timed phases:

1. GET: `--concurrency` clients open random check-in links for `--seconds` seconds;
2. answers: the same clients open a link and POST an answer (each with a fresh
   `submit_id`, so each accepted POST is a new version).

It prints throughput, latency p50/p95/p99 per request kind, the portal's CPU per GET and per
answer (from /proc, all its processes), and the stored-row check: the submissions in the
database must equal the POSTs answered 200, each once. Rate limits are raised so that
every request is served (their cost is paid as usual; only the numbers are higher).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

from sqlalchemy import func, select

from models import clock
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.directory import Department
from models.plan import Item, Phase, Plan, Section, Target
from models.settings import Settings
from models.supervision import Checkin, Submission
from notifications.links import make_token
from notifications.sink import free_port

SECRET = "bench-portal-secret-" + "x" * 32
_HIDDEN = re.compile(rb'name="(csrf_token|submit_id)" value="([^"]*)"')
_TARGET = re.compile(rb'name="(value_\d+)"')


def build_rows(url: str, count: int) -> list[tuple[int, int, object]]:
    """`count` pending check-ins over 50 departments and 50 items; returns (id, dept, due)."""
    now = clock.now()
    due = clock.local_date(now) + timedelta(days=20)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as session:
        departments = [
            Department(
                name=f"压测部门{n}",
                contact_emails=[f"dept{n}@example.org"],
                created_at=now,
            )
            for n in range(50)
        ]
        plan = Plan(
            title="压测工作要点",
            organisation="压测科协",
            year=due.year,
            source_sha256="0" * 64,
            created_at=now,
        )
        session.add_all([*departments, plan])
        session.flush()
        section = Section(plan_id=plan.id, position=1, number="一", title="压测")
        session.add(section)
        session.add(
            Phase(plan_id=plan.id, key="implement", name="组织实施", start_date=due, end_date=due)
        )
        session.flush()
        items = []
        for n in range(50):
            item = Item(
                plan_id=plan.id,
                section_id=section.id,
                position=n + 1,
                number=str(n + 1),
                title=f"第{n + 1}项压测任务",
                body="举办学术交流活动，打造品牌。" * 5,
            )
            session.add(item)
            items.append(item)
        session.flush()
        for item in items:
            session.add_all(
                Target(
                    item_id=item.id,
                    position=p,
                    text=f"不少于{p}00场次",
                    comparator="ge",
                    value=p * 100,
                    unit="场次",
                )
                for p in (1, 2)
            )
        checkins = [
            Checkin(
                item_id=items[n % 50].id,
                department_id=departments[(n // 50) % 50].id,
                phase_key="implement",
                seq=n,
                kind="progress",
                due_date=due,
                original_due_date=due,
                created_at=now,
            )
            for n in range(count)
        ]
        session.add_all(checkins)
        session.flush()
        return [(c.id, c.department_id, c.due_date) for c in checkins]


@dataclass
class Stats:
    """Latencies (seconds) and statuses per request kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        counts = self.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1


class Connection:
    """One keep-alive HTTP/1.1 connection with a cookie jar of one cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cookie = ""

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if self.cookie:
            head += f"Cookie: {self.cookie}\r\n"
        if method == "POST":
            head += "Content-Type: application/x-www-form-urlencoded\r\n"
            head += f"Content-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in {b"\r\n", b""}:
                break
            name, _, value = line.decode("latin1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "set-cookie":
                self.cookie = value.strip().split(";", 1)[0]
        payload = await self.reader.readexactly(length)
        return status, payload


async def load(
    port: int, links: list[str], *, seconds: float, concurrency: int, answer: bool
) -> Stats:
    stats = Stats()
    deadline = time.perf_counter() + seconds
    rng = random.Random(7)

    async def client(number: int) -> None:
        connection = Connection(port)
        n = 0
        while time.perf_counter() < deadline:
            link = links[rng.randrange(len(links))]
            started = time.perf_counter()
            status, page = await connection.request("GET", link)
            stats.add("GET", time.perf_counter() - started, status)
            if not answer or status != 200:
                continue
            fields = {name.decode(): value.decode() for name, value in _HIDDEN.findall(page)}
            fields["submit_id"] = f"bench{number}-{n}"
            n += 1
            fields |= {"status": "on_track", "narrative": "已举办学术活动120场次。"}
            for name in _TARGET.findall(page):
                fields[name.decode()] = "120"
            body = urllib.parse.urlencode(fields).encode()
            started = time.perf_counter()
            status, _ = await connection.request("POST", link, body)
            stats.add("POST", time.perf_counter() - started, status)

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return stats


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: p99s depend on them)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and its live children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def percentile(values: list[float], k: int) -> float:
    """The `k`th percentile of `values` in milliseconds (inf when there are none)."""
    if len(values) < 2:
        return float("inf")
    return statistics.quantiles(values, n=100, method="inclusive")[k - 1] * 1000


def percentiles(values: list[float]) -> str:
    if not values:
        return "no requests"
    p50, p95, p99 = (percentile(values, k) for k in (50, 95, 99))
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"


# Issue 16's targets at 32 concurrent clients on PostgreSQL: (name, unit, limit, strict).
TARGETS = (
    ("CPU per GET", "ms", 3.0, False),
    ("CPU per answer", "ms", 15.0, False),
    ("GET p99", "ms", 300.0, True),
    ("POST p99", "ms", 800.0, True),
)


def verdict_line(figures: dict[str, float], *, database: str, concurrency: int) -> str:
    """One line: each target's figure and whether it is met, then PASS or FAIL overall."""
    parts, met = [], []
    for name, unit, limit, strict in TARGETS:
        value = figures.get(name, float("inf"))
        ok = value < limit if strict else value <= limit
        met.append(ok)
        sign = "<" if strict else "≤"
        parts.append(f"{name} {value:.2f} {unit} {'✓' if ok else '✗'} ({sign} {limit:g})")
    scope = "" if database == "postgresql" and concurrency == 32 else " [targets are for "
    scope += "" if not scope else "PostgreSQL at 32 clients]"
    overall = "PASS" if all(met) else "FAIL"
    return f"targets: {'; '.join(parts)} => {overall}{scope}"


def start_portal(
    url: str, data_dir: Path, port: int, workers: int, server: list[str] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DUBAN_DATABASE_URL": url,
        "DUBAN_DATA_DIR": str(data_dir),
        "DUBAN_SECRET_KEY": SECRET,
        "DUBAN_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "bench.bench_portal",
            "--serve",
            str(port),
            "--workers",
            str(workers),
            *(server or []),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=1):
                pass
            time.sleep(1.0 if workers > 1 else 0.2)  # let every worker finish start-up
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the portal did not start within 60 s")


def hello_app() -> object:
    """The floor: a bare Starlette app answering every `/c/{token}` with a small page."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def hello(request: object) -> HTMLResponse:  # noqa: ARG001
        return HTMLResponse("<!doctype html><p>hello</p>")

    return Starlette(routes=[Route("/c/{token}", hello)])


def serve(port: int, workers: int, *, http: str = "auto", loop: str = "auto") -> None:
    """Child process: the portal with raised limits until SIGTERM (`duban portal` itself
    for several workers; the same app under one uvicorn process otherwise, with uvicorn's
    `http` and `loop` implementations as asked; `http` "floor" serves `hello_app`).
    """
    import uvicorn

    if http.startswith("floor"):
        floor_http = http.partition(":")[2] or "auto"
        uvicorn.run(
            hello_app(),  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            access_log=False,
            log_level="warning",
            http=floor_http,
            loop=loop,
        )
        return

    from duban.runtime import open_store
    from portal.app import create_app
    from portal.security import RateLimits
    from portal.server import RedactedAccessLog

    settings = Settings()
    limits = RateLimits(per_token_get=10**9, per_token_post=10**9, per_address=10**9)
    if workers > 1:
        from portal.server import serve as serve_portal

        serve_portal(settings, host="127.0.0.1", port=port, workers=workers, limits=limits)
        return
    app = RedactedAccessLog(create_app(settings, open_store(settings).sessions, limits=limits))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        http=http,
        loop=loop,
    )


def insert_commit_floor(url: str, count: int = 2000) -> str:
    """CPU and wall time of one INSERT + COMMIT from this process through SQLAlchemy Core
    (a throw-away table): what storing one row costs at the least, server work excluded."""
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("create table if not exists bench_floor (id integer, note text)"))
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(count):
        with engine.begin() as connection:
            connection.execute(
                text("insert into bench_floor (id, note) values (:id, :note)"),
                {"id": n, "note": "已举办学术活动120场次。"},
            )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with engine.begin() as connection:
        connection.execute(text("drop table bench_floor"))
    return (
        f"INSERT + COMMIT ({count}, one at a time): {cpu / count * 1000:.2f} ms CPU here, "
        f"{wall / count * 1000:.2f} ms wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--checkins", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--http", default="auto", help="uvicorn's HTTP implementation (auto, h11, httptools)"
    )
    parser.add_argument("--loop", default="auto", help="uvicorn's event loop (auto, asyncio)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="measure the physical limit instead: a bare Starlette app under the same load "
        "(GET phase) and one INSERT + COMMIT",
    )
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers, http=args.http, loop=args.loop)
        return

    print(f"machine: {platform.machine()} cpus={os.cpu_count()} load average {load_average()}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    names = ("uvicorn", "starlette", "jinja2", "sqlalchemy")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in names))
    workdir = Path(tempfile.mkdtemp(prefix="duban-bench-portal-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rows = build_rows(url, args.checkins)
    settings = Settings(secret_key=SECRET)
    links = [
        "/c/" + make_token(settings=settings, checkin_id=c, department_id=d, due_date=due)  # type: ignore[arg-type]
        for c, d, due in rows
    ]
    print(
        f"database: {engine.dialect.name}; check-ins: {len(rows)}; clients: "
        f"{args.concurrency}; workers: {args.workers}; {args.seconds:g} s per phase"
    )
    port = free_port()
    http = f"floor:{args.http}" if args.floor else args.http
    print(
        f"uvicorn: http {args.http}, loop {args.loop}"
        + (" (bare Starlette app)" if args.floor else "")
    )
    portal = start_portal(url, workdir, port, args.workers, ["--http", http, "--loop", args.loop])
    phases = (("GET", False),) if args.floor else (("GET", False), ("answers", True))
    accepted = 0
    figures: dict[str, float] = {}
    try:
        for phase, answer in phases:
            cpu_before, started = process_cpu(portal.pid), time.perf_counter()
            client_before = time.process_time()
            stats = asyncio.run(
                load(port, links, seconds=args.seconds, concurrency=args.concurrency, answer=answer)
            )
            elapsed, cpu = time.perf_counter() - started, process_cpu(portal.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            gets = len(stats.latencies.get("GET", []))
            posts = len(stats.latencies.get("POST", []))
            print(
                f"-- phase {phase}: {elapsed:.1f} s, portal CPU {cpu:.2f} s (server processes "
                f"only), load client CPU {client_cpu:.2f} s, load average {load_average()}"
            )
            for kind in ("GET", "POST"):
                if kind in stats.latencies:
                    done = len(stats.latencies[kind])
                    print(
                        f"   {kind}: {done} requests, {done / elapsed:.0f}/s, "
                        f"{percentiles(stats.latencies[kind])}, statuses {stats.statuses[kind]}"
                    )
            if answer:
                figures["CPU per answer"] = cpu / max(posts, 1) * 1000
                figures["POST p99"] = percentile(stats.latencies.get("POST", []), 99)
                print(f"   CPU per answer (page + POST): {figures['CPU per answer']:.1f} ms")
                accepted = stats.statuses.get("POST", {}).get(200, 0)
            else:
                figures["CPU per GET"] = cpu / max(gets, 1) * 1000
                figures["GET p99"] = percentile(stats.latencies.get("GET", []), 99)
                print(f"   CPU per GET: {figures['CPU per GET']:.2f} ms")
    finally:
        portal.send_signal(signal.SIGINT)
        try:
            portal.wait(timeout=30)
        except subprocess.TimeoutExpired:
            portal.kill()
    if args.floor:
        print(insert_commit_floor(url))
        return
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Submission)) or 0
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(Submission.idempotency_key)
                .group_by(Submission.idempotency_key)
                .having(func.count() > 1)
                .subquery()
            )
        )
    verdict = "ok" if stored == accepted and not duplicates else "MISMATCH"
    print(
        f"stored rows: {stored} submissions for {accepted} accepted answers, "
        f"{duplicates} duplicated: {verdict}"
    )
    print(f"load average at the end: {load_average()}")
    print(verdict_line(figures, database=engine.dialect.name, concurrency=args.concurrency))
    if verdict != "ok":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
