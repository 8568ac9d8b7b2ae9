"""Province scale on PostgreSQL: start, daily passes, the day's email and the quarter report.

Run: `.venv/bin/python -m bench scale [--sizes 100,1000,10000] [--departments 500]`.
Per size, a fresh PostgreSQL database (created and dropped) holds one plan of N items, each
led by one and supported by two of 500 departments, all reporting monthly (default policy,
`support_departments_report`): about 33 check-ins per item a year. Each stage runs in a
fresh spawned interpreter, so its peak RSS is its own: starting supervision (2021-01-04),
the catch-up pass (2021-03-17; 90 % of the mobilisation check-ins were answered), the
request-day pass (2021-03-18, one request per item and department), delivering that day's
email to an aiosmtpd sink in another process (`relay_once`), and the 2021Q1 report (HTML,
DOCX, Markdown). Start and passes also report the stage process's CPU seconds (`cpu_s`,
PostgreSQL's own excluded), less sensitive than wall time to a shared machine's load. The
documents the stages write go to a temporary data dir. Passes call `reconcile_items` in
chunks of `flows.supervise.CHUNK_SIZE`, as the batch flow does. Prefect's own overhead is
measured apart on a real Prefect server (on PostgreSQL): one flow run with one no-op task
run per chunk. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from datetime import time as clock_time
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text, update

from models.clock import LOCAL_TZ, now

PG_ADMIN_URL = os.environ.get(
    "DUBAN_BENCH_PG_URL",
    os.environ.get("DUBAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
CREATED = datetime(2021, 1, 1, tzinfo=UTC)
STARTED = datetime(2021, 1, 4, 9, tzinfo=LOCAL_TZ)
CATCH_UP = date(2021, 3, 17)
REQUEST_DAY = date(2021, 3, 18)
QUARTER_END = datetime(2021, 3, 31, 17, tzinfo=LOCAL_TZ)


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    name = f"duban_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, *, items: int, departments: int) -> int:
    """Migrate and insert the directory, the plan and its assignments; returns the plan id."""
    from models.db import make_engine, make_sessionmaker, transaction, upgrade
    from models.directory import Department
    from models.plan import Item, Plan, Section
    from models.supervision import Assignment

    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(
            insert(Department),
            [
                {
                    "name": f"部门{d}" if d else "督查室",
                    "contact_name": f"联系人{d}",
                    "contact_emails": [f"contact{d}@bench.example.org"],
                    "leader_name": f"分管领导{d}",
                    "leader_email": f"leader{d}@bench.example.org",
                    "head_name": f"主要负责人{d}",
                    "head_email": f"head{d}@bench.example.org",
                    "is_supervision_office": d == 0,
                    "created_at": CREATED,
                }
                for d in range(departments + 1)
            ],
        )
        dept_ids = sorted(session.scalars(select(Department.id).where(Department.name != "督查室")))
        plan = Plan(
            title="某省2021年重点工作任务",
            organisation="某省督查室",
            year=2021,
            source_sha256=os.urandom(32).hex(),
            created_at=CREATED,
        )
        session.add(plan)
        session.flush()
        sections = max(1, items // 200)
        session.execute(
            insert(Section),
            [
                {"plan_id": plan.id, "position": s, "number": str(s + 1), "title": f"第{s + 1}部分"}
                for s in range(sections)
            ],
        )
        section_ids = sorted(session.scalars(select(Section.id).where(Section.plan_id == plan.id)))
        session.execute(
            insert(Item),
            [
                {
                    "plan_id": plan.id,
                    "section_id": section_ids[n * sections // items],
                    "position": n,
                    "number": str(n + 1),
                    "title": f"推进第{n + 1}项重点工作落地见效",
                }
                for n in range(items)
            ],
        )
        item_ids = sorted(session.scalars(select(Item.id).where(Item.plan_id == plan.id)))
        session.execute(
            insert(Assignment),
            [
                {
                    "item_id": item_id,
                    "department_id": dept_ids[(n + k) % len(dept_ids)],
                    "role": "lead" if k == 0 else "support",
                    "assigned_at": CREATED,
                }
                for n, item_id in enumerate(item_ids)
                for k in range(3)
            ],
        )
        plan_id = plan.id
    engine.dispose()
    return plan_id


def _policy() -> Any:
    from models.policy import default_policy

    return default_policy().model_copy(update={"support_departments_report": True})


def stage_start(url: str, plan_id: int) -> dict[str, Any]:
    """Start supervision; then mark 90 % of the mobilisation check-ins answered (setup)."""
    from models.calendar import default_calendar
    from models.db import make_engine, make_sessionmaker, transaction
    from models.supervision import Checkin
    from tasks.assignment import start_supervision

    sessions = make_sessionmaker(make_engine(url))
    started, cpu = time.perf_counter(), time.process_time()
    with transaction(sessions) as session:
        summary = start_supervision(
            session=session,
            plan_id=plan_id,
            now=STARTED,
            policy=_policy(),
            calendar=default_calendar(),
        )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with transaction(sessions) as session:
        session.execute(
            update(Checkin)
            .where(Checkin.phase_key == "mobilize", Checkin.id % 10 != 0)
            .values(status="submitted", submitted_at=datetime(2021, 2, 20, 10, tzinfo=LOCAL_TZ))
        )
    return {"seconds": elapsed, "cpu_s": cpu, "rows": summary.checkins, "note": "check-ins"}


def _pass(url: str, plan_id: int, day: date) -> dict[str, Any]:
    from flows.supervise import CHUNK_SIZE
    from models.calendar import default_calendar
    from models.clock import resolve
    from models.daily_pass import RECENT_SUBMISSION_DAYS
    from models.db import make_engine, make_sessionmaker, transaction
    from tasks.checkins import items_with_pending_before
    from tasks.reconcile import reconcile_items

    sessions = make_sessionmaker(make_engine(url))
    as_of = resolve(day)
    policy, calendar = _policy(), default_calendar()
    started, cpu = time.perf_counter(), time.process_time()
    with sessions() as session:
        horizon = date.fromordinal(day.toordinal() + policy.request_lead_workdays * 2 + 14)
        since = datetime.fromordinal(day.toordinal() - RECENT_SUBMISSION_DAYS).replace(tzinfo=UTC)
        candidates = items_with_pending_before(
            session=session, plan_id=plan_id, horizon=horizon, submitted_since=since
        )
    notices = 0
    for start in range(0, len(candidates), CHUNK_SIZE):
        with transaction(sessions) as session:
            results = reconcile_items(
                session=session,
                plan_id=plan_id,
                item_ids=candidates[start : start + CHUNK_SIZE],
                as_of=as_of,
                policy=policy,
                calendar=calendar,
            )
        notices += sum(len(result.notices) for result in results)
    chunks = -(-len(candidates) // CHUNK_SIZE)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "rows": notices,
        "chunks": chunks,
    }


def stage_catch_up(url: str, plan_id: int) -> dict[str, Any]:
    """The pass of 2021-03-17 (escalations of unanswered mobilisation check-ins)."""
    return _pass(url, plan_id, CATCH_UP) | {"note": "notices"}


def stage_request_day(url: str, plan_id: int) -> dict[str, Any]:
    """The pass of 2021-03-18 (one request per item and department)."""
    return _pass(url, plan_id, REQUEST_DAY) | {"note": "notices"}


def stage_relay(url: str, plan_id: int) -> dict[str, Any]:  # noqa: ARG001
    """Deliver every pending message to a counting aiosmtpd server in another process."""
    import asyncio

    from models.db import make_engine, make_sessionmaker
    from models.settings import Settings
    from notifications.relay import relay_once
    from notifications.sink import free_port

    port = free_port()
    sink = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", f"from bench.bench_mail import serve; serve({port})"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_seconds=30)
        sessions = make_sessionmaker(make_engine(url))
        moment = datetime.combine(REQUEST_DAY, clock_time(9, 30), tzinfo=LOCAL_TZ)
        started = time.perf_counter()
        result = asyncio.run(relay_once(sessions=sessions, settings=settings, now=moment))
        elapsed = time.perf_counter() - started
    finally:
        sink.terminate()
        received = int((sink.communicate(timeout=60)[0].split() or ["0"])[0])
    assert result.sent == received, (result, received)
    return {"seconds": elapsed, "rows": result.sent, "note": "emails"}


def stage_report(url: str, plan_id: int) -> dict[str, Any]:
    """Generate the 2021Q1 report (HTML, DOCX, Markdown) into a temporary directory."""
    from models.db import make_engine, make_sessionmaker, transaction
    from tasks.reporting.store import generate_report

    sessions = make_sessionmaker(make_engine(url))
    with tempfile.TemporaryDirectory(prefix="duban-bench-scale-") as out:
        started = time.perf_counter()
        with transaction(sessions) as session:
            generate_report(
                session=session,
                plan_id=plan_id,
                as_of=QUARTER_END,
                generated_at=QUARTER_END,
                out_dir=Path(out),
                quarter="2021Q1",
            )
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rows": 1, "note": "report"}


def stage_idle(url: str, plan_id: int) -> dict[str, Any]:  # noqa: ARG001
    """Import the flows (Prefect included) and the reports, nothing else: a stage's floor."""
    import flows.supervise  # noqa: F401
    import tasks.reporting.store  # noqa: F401

    return {"seconds": 0.0, "rows": 0, "note": ""}


STAGES: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "baseline: interpreter + imports": stage_idle,
    "start supervision": stage_start,
    "relay start-day email": stage_relay,
    "catch-up pass 03-17": stage_catch_up,
    "request-day pass 03-18": stage_request_day,
    "deliver 03-18 email": stage_relay,
    "quarter report 2021Q1": stage_report,
}


def peak_mb() -> float:
    """This process's peak RSS in MB: `VmHWM` (reset by exec, unlike `ru_maxrss`, which a
    spawned child inherits from its parent)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(name: str, url: str, plan_id: int, queue: Any) -> None:
    result = STAGES[name](url, plan_id)
    result["peak_mb"] = peak_mb()
    result["load_1m"] = os.getloadavg()[0]
    queue.put(result)


def run_stage(name: str, url: str, plan_id: int) -> dict[str, Any]:
    """Run one stage in a fresh spawned interpreter; returns seconds, rows and peak RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(name, url, plan_id, queue))
    child.start()
    try:
        result: dict[str, Any] = queue.get(timeout=3600)
    finally:
        child.join(timeout=60)
    return result


def stage_prefect(chunks: int, subflows: int) -> dict[str, Any]:
    """Prefect's own cost on the configured API: a flow run with `chunks` no-op task runs,
    and (per run) a flow run with `subflows` no-op subflow runs, after a warm-up run."""
    import asyncio

    from prefect import flow, task

    @task(name="noop-chunk")
    def noop_chunk(number: int) -> int:
        return number

    @flow(name="noop-item")
    async def noop_item(number: int) -> int:
        return number

    @flow(name="bench-overhead-batches")
    async def batches(count: int) -> None:
        for number in range(count):
            noop_chunk(number)

    @flow(name="bench-overhead-items")
    async def items(count: int) -> None:
        for number in range(count):
            await noop_item(number)

    asyncio.run(batches(1))
    started = time.perf_counter()
    asyncio.run(batches(chunks))
    batch_seconds = time.perf_counter() - started
    started = time.perf_counter()
    asyncio.run(items(subflows))
    per_subflow = (time.perf_counter() - started) / max(subflows, 1)
    return {"seconds": batch_seconds, "rows": chunks, "per_subflow": per_subflow}


def _prefect_child(chunks: int, subflows: int, queue: Any) -> None:
    result = stage_prefect(chunks, subflows)
    result["peak_mb"] = peak_mb()
    queue.put(result)


def run_prefect(chunks: int, subflows: int, env: dict[str, str]) -> dict[str, Any]:
    """`stage_prefect` in a spawned interpreter whose environment points at the server."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_prefect_child, args=(chunks, subflows, queue))
        child.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        result: dict[str, Any] = queue.get(timeout=1800)
    finally:
        child.join(timeout=60)
    return result


@contextmanager
def prefect_server(workdir: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a fresh PostgreSQL database; yields a client environment."""
    from tests.prefect_server import fresh_postgres_database, start_prefect_server

    with fresh_postgres_database("bench_prefect") as database_url:
        server = start_prefect_server(workdir, database_url=database_url)
        try:
            yield server.client_env
        finally:
            server.stop()


def machine() -> str:
    """Platform, CPUs, memory, versions and date, one line."""
    memory = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    admin = create_engine(PG_ADMIN_URL)
    with admin.connect() as connection:
        server = str(connection.scalar(text("show server_version")))
    admin.dispose()
    return (
        f"{platform.platform()} | CPUs {os.cpu_count()} | RAM {memory} | "
        f"Python {platform.python_version()} | PostgreSQL {server} | "
        f"prefect {version('prefect')} | SQLAlchemy {version('sqlalchemy')} | "
        f"psycopg {version('psycopg')} | aiosmtplib {version('aiosmtplib')} | "
        f"aiosmtpd {version('aiosmtpd')} | {now():%Y-%m-%d}"
    )


def table(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> str:
    """A Markdown table: per stage and size, seconds / peak MB / rows, and growth ratios."""
    head = "| stage | " + " | ".join(f"{n:,} items: s / MB / rows" for n in sizes)
    head += " | " + " | ".join(f"time {a:,}→{b:,}" for a, b in pairwise(sizes))
    lines = [head + " |", "|" + "---|" * (1 + len(sizes) + max(0, len(sizes) - 1))]
    for name in results[sizes[0]]:
        cells = []
        for n in sizes:
            r = results[n][name]
            cells.append(f"{r['seconds']:.2f} / {r['peak_mb']:.0f} / {r['rows']:,}")
        for a, b in pairwise(sizes):
            before, after = results[a][name]["seconds"], results[b][name]["seconds"]
            cells.append(f"×{after / before:.1f}" if before > 0.005 else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Seed and measure every size; print the machine line and the results table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated item counts")
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--no-prefect", action="store_true", help="skip the Prefect overhead")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(machine(), flush=True)
    results: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="duban-bench-scale-") as tmp:
        server = None if args.no_prefect else prefect_server(Path(tmp))
        env = server.__enter__() if server is not None else {}
        try:
            for size in sizes:
                results[size] = {}
                # The stages' documents (督办单, reports) go to a data dir of this run.
                os.environ["DUBAN_DATA_DIR"] = str(Path(tmp) / f"data-{size}")
                with fresh_database() as url:
                    started = time.perf_counter()
                    plan_id = seed(url, items=size, departments=args.departments)
                    print(f"{size} items seeded in {time.perf_counter() - started:.1f} s")
                    for name in STAGES:
                        results[size][name] = run_stage(name, url, plan_id)
                        print(f"  {name}: {results[size][name]}", flush=True)
                if server is not None:
                    chunks = results[size]["request-day pass 03-18"]["chunks"]
                    prefect = run_prefect(chunks, min(size, 100), env)
                    results[size]["Prefect: flow + 1 task run per chunk"] = prefect
                    results[size]["Prefect: 1 subflow run per item (est.)"] = {
                        "seconds": prefect["per_subflow"] * size,
                        "rows": size,
                        "peak_mb": prefect["peak_mb"],
                    }
                    print(f"  prefect: {prefect}", flush=True)
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    print()
    print(table(sizes, results))


if __name__ == "__main__":
    main()
