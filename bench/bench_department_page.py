"""A department's own page (本部门督办事项) for a department owing 500 check-ins, over HTTP.

Run: `.venv/bin/python -m bench department_page [--checkins 500] [--requests 200]
[--backend sqlite|postgresql|both]`. For each backend (PostgreSQL: a fresh database on
`DUBAN_BENCH_PG_URL`/`DUBAN_TEST_PG_URL`, default 127.0.0.1:5432, dropped afterwards) it
stores one plan of 100 items with a department that owes `--checkins` open check-ins
(5 per item, some overdue and escalated), 20 returned reports, 10 open leader instructions
and 5 closed items, next to a second department with as many check-ins of its own; then
starts the portal (`portal.app.create_app` under uvicorn, in a child process) on
loopback and opens the department's page `--requests` times, one after another, on one
keep-alive connection. It prints p50/p95/p99 per GET (the issue asks < 200 ms), the CPU
time the portal process spent per GET (user + system, from /proc: wall time alone says
little on a loaded machine), the page's size and row count, the cost of following up to
100 of its row links (each a redirect to a freshly signed form link), and the machine,
load average and versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench.bench_scale import fresh_database
from models import clock
from models.completion import ItemClosure
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.directory import Department
from models.instruction import Instruction
from models.plan import Item, Phase, Plan, Section
from models.settings import Settings
from models.supervision import Assignment, Checkin
from notifications.links import make_department_token
from notifications.sink import free_port

SECRET = "bench-department-page-" + "x" * 32
ITEMS = 100


def build_rows(url: str, checkins: int) -> int:
    """The plan and both departments' rows (module docstring); returns the department id."""
    now = clock.now()
    today = clock.local_date(now)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as session:
        own, other = (
            Department(name=name, contact_emails=[f"{n}@example.org"], created_at=now)
            for n, name in enumerate(("学会部", "普及部"))
        )
        plan = Plan(
            title="压测工作要点",
            organisation="压测科协",
            year=today.year,
            source_sha256="0" * 64,
            created_at=now,
        )
        session.add_all([own, other, plan])
        session.flush()
        section = Section(plan_id=plan.id, position=1, number="一", title="压测")
        session.add(section)
        session.add(
            Phase(
                plan_id=plan.id,
                key="implement",
                name="组织实施",
                start_date=today - timedelta(days=200),
                end_date=today + timedelta(days=200),
            )
        )
        session.flush()
        item_ids = list(
            session.scalars(
                insert(Item).returning(Item.id),
                [
                    {
                        "plan_id": plan.id,
                        "section_id": section.id,
                        "position": n + 1,
                        "number": str(n + 1),
                        "title": f"第{n + 1}项压测任务",
                        "body": "举办学术交流活动，打造品牌。",
                        "colour": ("green", "amber", "red")[n % 3],
                    }
                    for n in range(ITEMS)
                ],
            )
        )
        session.execute(
            insert(Assignment),
            [
                {
                    "item_id": item_id,
                    "department_id": department.id,
                    "role": "lead",
                    "assigned_at": now,
                }
                for item_id in item_ids
                for department in (own, other)
            ],
        )
        rows = []
        for department in (own, other):
            for n in range(checkins):
                due = today + timedelta(days=n // ITEMS * 30 - 40)
                returned = department is own and n < 20
                rows.append(
                    {
                        "item_id": item_ids[n % ITEMS],
                        "department_id": department.id,
                        "phase_key": "implement",
                        "seq": n // ITEMS,
                        "kind": "progress",
                        "due_date": due,
                        "original_due_date": due,
                        "status": "pending",
                        "escalation_level": min(3, max(0, (today - due).days // 10)),
                        "created_at": now,
                        "review": "returned" if returned else None,
                        "returns": 1 if returned else 0,
                        "return_reason": "请补充具体数据。" if returned else "",
                    }
                )
        session.execute(insert(Checkin), rows)
        session.execute(
            insert(Instruction),
            [
                {
                    "key": f"bench-{n}",
                    "item_id": item_ids[n],
                    "leader_role": "leader",
                    "leader_name": "刘卫东",
                    "text": "请抓紧落实。",
                    "source": "paper",
                    "given_at": now - timedelta(days=1),
                    "recorded_at": now,
                }
                for n in range(10)
            ],
        )
        session.execute(
            insert(ItemClosure),
            [
                {
                    "item_id": item_ids[-1 - n],
                    "closed_at": now - timedelta(days=2),
                    "closed_by": "督查室",
                    "reason": "已完成",
                    "cancelled_checkins": [],
                }
                for n in range(5)
            ],
        )
        return own.id


def serve(port: int) -> None:
    """Child process: the portal over `DUBAN_DATABASE_URL` with raised rate limits."""
    import uvicorn

    from duban.runtime import open_store
    from portal.app import create_app
    from portal.security import RateLimits

    settings = Settings()
    limits = RateLimits(per_token_get=10**9, per_token_post=10**9, per_address=10**9)
    app = create_app(settings, open_store(settings).sessions, limits=limits)
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


@contextmanager
def portal(url: str, data_dir: Path) -> Iterator[tuple[int, int]]:
    """The portal over `url` in a child process; yields its port and process id."""
    port = free_port()
    env = {
        **os.environ,
        "DUBAN_DATABASE_URL": url,
        "DUBAN_DATA_DIR": str(data_dir),
        "DUBAN_SECRET_KEY": SECRET,
        "DUBAN_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-m", "bench.bench_department_page", "--serve", str(port)]
    child = subprocess.Popen(  # noqa: S603
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("the portal did not start within 60 s") from None
                time.sleep(0.2)
        yield port, child.pid
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, *, checkins: int, requests: int, workdir: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    department_id = build_rows(url, checkins)
    token = make_department_token(
        settings=Settings(secret_key=SECRET, _env_file=None),
        department_id=department_id,
        expires_on=clock.local_date(clock.now()) + timedelta(days=30),
    )
    with (
        portal(url, workdir) as (port, pid),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        first = http.get(f"/d/{token}")
        if first.status_code != 200:
            raise SystemExit(f"the page answered {first.status_code}")
        for _ in range(5):  # warm up
            http.get(f"/d/{token}")
        seconds = []
        cpu_before = cpu_seconds(pid)
        for _ in range(requests):
            started = time.perf_counter()
            response = http.get(f"/d/{token}")
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200
        cpu = (cpu_seconds(pid) - cpu_before) / requests
        # a row's link (`/d/<token>/c/<id>`, where there is one): 303 to a signed form link
        paths = re.findall(r'href="http://127\.0\.0\.1:\d+(/d/[^"/]+/c/[0-9]+)"', first.text)
        hops: list[float] = []
        hop_cpu = float("nan")
        if paths:
            hop_before = cpu_seconds(pid)
            for path in paths[:100]:
                started = time.perf_counter()
                response = http.get(path)
                hops.append(time.perf_counter() - started)
                assert response.status_code == 303
            hop_cpu = (cpu_seconds(pid) - hop_before) / len(hops)
    rows = first.text.count('class="row ')
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    p50, p95, p99 = (cuts[k - 1] * 1000 for k in (50, 95, 99))
    print(
        f"{engine.dialect.name}: {requests} GETs, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(seconds) * 1000:.1f} ms; portal CPU {cpu * 1000:.1f} ms/GET; "
        f"page {len(first.content) / 1024:.0f} KiB, {rows} rows"
    )
    if hops:
        print(
            f"{engine.dialect.name}: {len(hops)} row links, p50 "
            f"{statistics.median(hops) * 1000:.1f} ms, portal CPU {hop_cpu * 1000:.1f} ms/GET"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkins", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"python {platform.python_version()} on {platform.platform()}")
    names = ("uvicorn", "starlette", "jinja2", "sqlalchemy", "psycopg")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in names))
    print(
        f"department: {args.checkins} open check-ins over {ITEMS} items (20 returned), "
        f"10 instructions, 5 closed items; another department as large; {datetime.now():%F %T}"
    )
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"duban-bench-department-{backend}-"))
        database = fresh_database() if backend == "postgresql" else nullcontext(None)
        with database as pg_url:
            url = pg_url or f"sqlite:///{workdir / 'bench.db'}"
            measure(url, checkins=args.checkins, requests=args.requests, workdir=workdir)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
