"""Province scale on workers: the daily job as deployment runs on PostgreSQL with W workers.

Run: `.venv/bin/python -m bench distributed [--sizes 100,1000] [--workers 2] [--departments 500]
[--digest off|on|both] [--events relay|flow]`.
Per size: a fresh app database seeded as `bench scale` does (N items × 3 departments, monthly
check-ins, 500 departments; the policy is stored on the plan, so the deployment runs use it),
a Prefect server subprocess on its own fresh PostgreSQL database, `duban deploy --plan`,
W `duban worker --limit 2` processes (`DUBAN_PASS_SHARDS=W`) and an aiosmtpd sink. Stages:

1. start supervision — an admin command, not a worker job: `bench_scale.stage_start` in a
   spawned child (then 90 % of the mobilisation check-ins are marked answered, as there);
2. the catch-up pass (2021-03-17) and 3. the request-day pass (2021-03-18), each a
   `supervise-plan` deployment run created through the API with `as_of`, `batch=True` (the
   province mode at every size; `--auto-mode` lets the flow choose, which below 200 items is
   one `supervise_item` subflow per item) and `shards=W`, executed by the workers: the pass
   starts one `supervise-shard` deployment run per shard;
4. the day's email: `duban mail relay --once`, one relay, then (the same rows put back to
   pending) W relays at once, into the sink;
5. the 2021Q1 report: a `quarter-review` deployment run on the quarter's last working day.

`--events relay` (the default, what `duban serve` runs) sets `DUBAN_EVENT_PUBLISHER=relay` on
the workers and runs one `duban events relay` beside them: a pass ends once its rows are
committed, and each pass stage also reports when every domain event was in the server's feed
(`events_in_feed_s`, from the pass's end); `--events flow` has each pass publish its events
before it ends (the pass then includes the server's ingestion).

`--digest on` runs it all with daily digests (`delivery: digest` for departments and leaders,
docs/email.md), `both` once without and once with; a last table compares the emails each pass
put in the outbox (the request day's is the figure of issue #14) and the relays' time.

Peak memory of every flow-run process comes from `bench/peak_site/sitecustomize.py` (on the
workers' PYTHONPATH): each process writes its `VmHWM` at exit to a file named by its flow
run id; a stage reports the largest of its runs. Prefect's share of each deployment run is its
wall time (created → terminal, server clock) minus the time during which at least one of its
duban task runs was running (the union of their intervals): what is left is Prefect (queue
poll, process start, engine, API calls) plus the flow-level code around the tasks. The floor
is a `supervise-plan` run on a non-working day, which ends at the calendar gate. The start-day
assignment email is marked sent directly (setup; `bench scale` measures its delivery).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.bench_scale import (
    CATCH_UP,
    QUARTER_END,
    REQUEST_DAY,
    _policy,
    fresh_database,
    machine,
    run_prefect,
    run_stage,
    seed,
)
from models.clock import resolve
from tasks.events import feed_total

REPO = Path(__file__).resolve().parents[1]
PEAK_SITE = Path(__file__).with_name("peak_site")
DUBAN = str(Path(sys.executable).with_name("duban"))
SUNDAY = date(2021, 3, 14)
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PLAN_DEPLOYMENT = ("supervise-plan-on-workdays", "supervise-plan")
QUARTER_DEPLOYMENT = ("quarter-review-at-quarter-end", "quarter-review")
RUN_DEADLINE = 3 * 3600.0
NOTICES = "select count(*) from notice"
REPORTS = "select count(*) from report"
PENDING = "select count(*) from outbox_message where status = 'pending'"
PENDING_EMAIL = PENDING + " and channel = 'email'"


def read_peaks(directory: Path) -> dict[str, float]:
    """Peak MB per key from the `<key>.<pid>.peak` files (kB inside): the largest process
    of each key (a flow run may run in more than one process)."""
    peaks: dict[str, float] = {}
    for path in directory.glob("*.peak"):
        key = path.name.removesuffix(".peak").rsplit(".", 1)[0]
        try:
            megabytes = int(path.read_text().strip()) / 1024
        except ValueError:
            continue
        peaks[key] = max(peaks.get(key, 0.0), megabytes)
    return peaks


def wait_peaks(directory: Path, keys: list[str], timeout: float = 30.0) -> dict[str, float]:
    """`read_peaks`, once every key has a file or after `timeout` seconds (a flow-run
    process writes its file at exit, which may come after the API shows the run final)."""
    deadline = time.monotonic() + timeout
    while True:
        peaks = read_peaks(directory)
        if all(key in peaks for key in keys) or time.monotonic() >= deadline:
            return peaks
        time.sleep(0.2)


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def busy_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    """Length of the union of time intervals, in seconds (overlapping shards count once)."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def load() -> str:
    """The 1-minute load average, for progress lines (2 CPUs are shared)."""
    return f"load {os.getloadavg()[0]:.2f}"


class Api:
    """The few Prefect REST calls the benchmark makes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON; raise on an error status; return the decoded body."""
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def deployment_id(self, flow: str, name: str) -> str:
        """Id of deployment `flow/name`."""
        response = self.http.get(f"/deployments/name/{flow}/{name}")
        response.raise_for_status()
        return str(response.json()["id"])

    def wait_workers(self, count: int, deadline: float = 180.0) -> None:
        """Block until `count` workers of duban-pool are online."""
        started = time.monotonic()
        while time.monotonic() - started < deadline:
            workers = self.post("/work_pools/duban-pool/workers/filter", {})
            if sum(worker["status"] == "ONLINE" for worker in workers) >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"fewer than {count} workers online after {deadline:.0f} s")

    def run(self, deployment: tuple[str, str], parameters: dict[str, Any]) -> dict[str, Any]:
        """Create a run of `deployment` and poll it to a terminal state; returns the run."""
        created = self.post(
            f"/deployments/{self.deployment_id(*deployment)}/create_flow_run",
            {"parameters": parameters},
        )
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < RUN_DEADLINE:
            try:
                response = self.http.get(f"/flow_runs/{created['id']}")
            except httpx.HTTPError as exc:  # a busy server: poll again
                last = repr(exc)
            else:
                run: dict[str, Any] = response.json() if response.status_code == 200 else {}
                if run.get("state_type") in TERMINAL:
                    return run
                last = last if run else f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(0.5)
        if last:
            print(f"  last poll error: {last}", flush=True)
        raise RuntimeError(f"run {created['id']} not finished after {RUN_DEADLINE:.0f} s")

    def tree(self, run: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The flow runs created while `run` ran (its subflows and shard runs: stages run one
        at a time) and all their task runs (placeholders of subflows included)."""
        first, last = _at(run["created"]), _at(run["end_time"])
        runs = [
            other
            for other in self.post("/flow_runs/filter", {"limit": 200})
            if first <= _at(other["created"]) <= last
        ]
        tasks: list[dict[str, Any]] = self.post(
            "/task_runs/filter",
            {"flow_runs": {"id": {"any_": [other["id"] for other in runs]}}, "limit": 200},
        )
        return runs, tasks


def count(url: str, query: str) -> int:
    """The integer a `select count(*) …` query gives on the app database."""
    engine = create_engine(url)
    with engine.connect() as connection:
        value = int(connection.scalar(text(query)) or 0)
    engine.dispose()
    return value


def execute(url: str, statement: str, **params: Any) -> int:
    """Run one SQL statement on the app database in its own transaction; rows affected."""
    engine = create_engine(url)
    with engine.begin() as connection:
        affected = connection.execute(text(statement), params).rowcount
    engine.dispose()
    return int(affected)


def store_policy(url: str, plan_id: int, *, digest: bool = False) -> None:
    """Store the benchmark's policy on the plan, so that deployment runs read the same one
    (with daily digests for departments and leaders when `digest`)."""
    from models.db import make_engine, make_sessionmaker, transaction
    from models.digest import DeliveryRule
    from models.plan import Plan

    policy = _policy()
    if digest:
        policy = policy.model_copy(
            update={"delivery": DeliveryRule(departments="digest", leaders="digest")}
        )
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        plan = session.get(Plan, plan_id)
        assert plan is not None
        plan.policy = policy.model_dump(mode="json")
    engine.dispose()


def run_timings(runs: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> str:
    """Each process-level (deployment) run of a tree, in order of creation, as
    `queued+[before|tasks|after]` seconds: created to running (worker poll, process start,
    flow load), then running time split into flow code before its first task run, the span
    of its task runs (its in-process subflows' included) and flow code after the last."""
    by_id = {run["id"]: run for run in runs}
    owner_of_task = {task["id"]: task["flow_run_id"] for task in tasks}

    def process_run(run_id: str) -> str:
        run = by_id[run_id]
        for _ in range(len(by_id)):
            owner = owner_of_task.get(run["parent_task_run_id"])
            if run["deployment_id"] or owner not in by_id:
                break
            run = by_id[owner]
        return str(run["id"])

    placeholders = {run["parent_task_run_id"] for run in runs}
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for task in tasks:
        if task["id"] in placeholders or not task["end_time"] or task["flow_run_id"] not in by_id:
            continue
        spans.setdefault(process_run(task["flow_run_id"]), []).append(
            (_at(task["start_time"]), _at(task["end_time"]))
        )
    parts = []
    for run in sorted(runs, key=lambda other: str(other["created"])):
        if run["deployment_id"] and run["start_time"] and run["end_time"]:
            created, start, end = (_at(run[key]) for key in ("created", "start_time", "end_time"))
            queued = f"{(start - created).total_seconds():.1f}"
            mine = spans.get(run["id"])
            if not mine:
                parts.append(f"{queued}+{(end - start).total_seconds():.1f}")
                continue
            first, last = min(a for a, _ in mine), max(b for _, b in mine)
            parts.append(
                f"{queued}+[{(first - start).total_seconds():.1f}|"
                f"{(last - first).total_seconds():.1f}|{(end - last).total_seconds():.1f}]"
            )
    return " ".join(parts)


def deployment_stage(
    api: Api,
    peaks_dir: Path,
    deployment: tuple[str, str],
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """Run a deployment to the end; wall, duban's task time, Prefect's share, peak MB."""
    run = api.run(deployment, parameters)
    if run["state_type"] != "COMPLETED":
        raise RuntimeError(f"{deployment[1]} ended {run['state_type']}: {run['state']}")
    runs, every_task = api.tree(run)
    placeholders = {other["parent_task_run_id"] for other in runs}
    tasks = [task for task in every_task if task["id"] not in placeholders]
    wall = (_at(run["end_time"]) - _at(run["created"])).total_seconds()
    busy = busy_seconds(
        [(_at(task["start_time"]), _at(task["end_time"])) for task in tasks if task["end_time"]]
    )
    peaks = wait_peaks(peaks_dir, [other["id"] for other in runs if other["deployment_id"]])
    processes = [peaks[other["id"]] for other in runs if other["id"] in peaks]
    return {
        "seconds": wall,
        "runs": run_timings(runs, every_task),
        "peak_mb": max(processes) if processes else None,
        "processes": len(processes),
        "flow_runs": len(runs),
        "task_runs": len(tasks),
        "task_sum": sum(float(task["total_run_time"]) for task in tasks),
        "duban": busy,
        "prefect": wall - busy,
        "state": f"{run['state_name']}: {run['state']['message']}",
    }


FEED_SINCE = datetime(2020, 1, 1, tzinfo=UTC)
FEED_UNTIL = datetime(2022, 12, 31, tzinfo=UTC)  # the benchmark's years, and the next


def events_in_feed(url: str, api_url: str, timeout: float = 600.0) -> float | None:
    """Seconds until no domain event is unpublished and the server's feed holds them all
    (`duban.*` events of the benchmark's year), None after `timeout`."""
    started = time.perf_counter()
    total = count(url, "select count(*) from domain_event")
    while time.perf_counter() - started < timeout:
        pending = count(url, "select count(*) from domain_event where published_at is null")
        if not pending and feed_total(api_url, since=FEED_SINCE, until=FEED_UNTIL) >= total:
            return time.perf_counter() - started
        time.sleep(0.5)
    return None


@contextlib.contextmanager
def processes(commands: list[list[str]], env: dict[str, str], logs: Path) -> Iterator[None]:
    """Run long-lived processes (workers) in their own process groups; end them all."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, command in enumerate(commands):
            with (logs / f"proc{index}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(  # noqa: S603
                        command,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[int, list[int]]]:
    """aiosmtpd (counting, discarding) in a child process; yields its port and, after the
    block, the number of messages it received in the list."""
    from notifications.sink import free_port

    port = free_port()
    received: list[int] = []
    sink = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", f"from bench.bench_mail import serve; serve({port})"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        yield port, received
    finally:
        sink.terminate()
        try:
            out = sink.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            sink.kill()
            out = sink.communicate(timeout=10)[0]
        received.append(int((out.split() or ["0"])[0]))


def relay_stage(relays: int, env: dict[str, str], peaks_dir: Path, tag: str) -> dict[str, Any]:
    """`relays` × `duban mail relay --once` at once into a fresh sink; wall, sent, peak."""
    with smtp_sink() as (port, received):
        envs = []
        for index in range(relays):
            relay_env = dict(env)
            relay_env.update(
                {
                    "DUBAN_SMTP_PORT": str(port),
                    "DUBAN_SMTP_EMBEDDED": "false",
                    "DUBAN_BENCH_PEAK_NAME": f"{tag}-{index}",
                }
            )
            envs.append(relay_env)
        started = time.perf_counter()
        running = [
            subprocess.Popen(  # noqa: S603
                [DUBAN, "mail", "relay", "--once"],
                env=relay_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for relay_env in envs
        ]
        try:
            outputs = [process.communicate(timeout=RUN_DEADLINE)[0] for process in running]
        finally:
            for process in running:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
        elapsed = time.perf_counter() - started
    for process, output in zip(running, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"relay failed: {output[-800:]}")
    sent = sum(int(m.group(1)) for out in outputs for m in re.finditer(r"发送成功 (\d+)", out))
    if sent != received[0]:
        raise RuntimeError(f"relays report {sent} sent, the sink received {received[0]}")
    peaks = read_peaks(peaks_dir)
    mine = [peaks[f"{tag}-{index}"] for index in range(relays) if f"{tag}-{index}" in peaks]
    return {
        "seconds": elapsed,
        "peak_mb": max(mine) if mine else None,
        "rows": sent,
        "per_relay": [
            int(m.group(1)) for out in outputs for m in re.finditer(r"发送成功 (\d+)", out)
        ],
    }


def _report(name: str, result: dict[str, Any]) -> None:
    shown = {
        key: round(value, 2) if isinstance(value, float) else value for key, value in result.items()
    }
    print(f"  {name}: {shown} ({load()})", flush=True)


def measure(
    size: int, args: argparse.Namespace, tmp: Path, *, digest: bool = False
) -> dict[str, dict[str, Any]]:
    """Every stage for one size (with daily digests when `digest`); stage name -> result."""
    from tests.prefect_server import fresh_postgres_database, start_prefect_server

    workers = args.workers
    results: dict[str, dict[str, Any]] = {}
    work = tmp / f"n{size}{'-digest' if digest else ''}"
    peaks_dir = work / "peaks"
    peaks_dir.mkdir(parents=True)
    with fresh_database() as url, fresh_postgres_database("bench_dist_prefect") as prefect_url:
        started = time.perf_counter()
        plan_id = seed(url, items=size, departments=args.departments)
        store_policy(url, plan_id, digest=digest)
        print(
            f"{size} items seeded in {time.perf_counter() - started:.1f} s ({load()})", flush=True
        )
        server = start_prefect_server(work, database_url=prefect_url)
        try:
            env = dict(server.client_env)
            env.update(
                {
                    "DUBAN_DATABASE_URL": url,
                    "DUBAN_DATA_DIR": str(work / "data"),
                    "DUBAN_SMTP_EMBEDDED": "false",
                    "DUBAN_PASS_SHARDS": str(workers),
                    "DUBAN_EVENT_PUBLISHER": args.events,
                    "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "DUBAN_BENCH_PEAK_DIR": str(peaks_dir),
                    "PYTHONPATH": os.pathsep.join(
                        filter(None, [str(PEAK_SITE), str(REPO), os.environ.get("PYTHONPATH")])
                    ),
                }
            )
            deployed = subprocess.run(  # noqa: S603
                [DUBAN, "deploy", "--plan", str(plan_id)],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=REPO,
            )
            if deployed.returncode != 0:
                raise RuntimeError(deployed.stdout + deployed.stderr)
            api = Api(server.api_url)
            command = [DUBAN, "worker", "--limit", "2"]
            relays = [[DUBAN, "events", "relay"]] if args.events == "relay" else []
            with processes([command] * workers + relays, env, work):
                api.wait_workers(workers)
                print(f"  {workers} workers online ({load()})", flush=True)
                sunday = {"plan_id": plan_id, "as_of": resolve(SUNDAY).isoformat()}
                deployment_stage(api, peaks_dir, PLAN_DEPLOYMENT, sunday)  # warm-up
                floor = deployment_stage(api, peaks_dir, PLAN_DEPLOYMENT, sunday)
                results["Prefect floor: deployment run, non-working day"] = floor | {"rows": 0}
                _report("floor", floor)

                start = run_stage("start supervision", url, plan_id)
                results["1. start supervision (admin, in process)"] = start
                _report("start", start)
                marked = execute(
                    url,
                    "update outbox_message set status = 'sent', sent_at = now() "
                    "where status = 'pending'",
                )
                print(f"  start-day email marked sent directly: {marked}", flush=True)
                store_policy(url, plan_id, digest=digest)  # start_supervision stored its own

                for label, day in (
                    ("2. catch-up pass 03-17", CATCH_UP),
                    ("3. request-day pass 03-18", REQUEST_DAY),
                ):
                    before = count(url, NOTICES)
                    emails_before = count(url, PENDING_EMAIL)
                    parameters: dict[str, Any] = {
                        "plan_id": plan_id,
                        "as_of": resolve(day).isoformat(),
                        "shards": workers,
                    }
                    if not args.auto_mode:
                        parameters["batch"] = True
                    result = deployment_stage(api, peaks_dir, PLAN_DEPLOYMENT, parameters)
                    result["rows"] = count(url, NOTICES) - before
                    result["emails"] = count(url, PENDING_EMAIL) - emails_before
                    result["events_in_feed_s"] = events_in_feed(url, server.api_url)
                    results[label] = result
                    _report(label, result)

                pending = count(url, PENDING)
                mark = time.time()
                one = relay_stage(1, env, peaks_dir, "relay1")
                results["4a. deliver 03-18 email, 1 relay"] = one
                _report("relay x1", one)
                reset = execute(
                    url,
                    "update outbox_message set status = 'pending', sent_at = null, attempts = 0, "
                    "lease_until = null, recipient_results = '{}' "
                    "where status = 'sent' and sent_at >= to_timestamp(:mark)",
                    mark=mark,
                )
                if reset != pending:
                    raise RuntimeError(f"{pending} were pending, {reset} put back")
                many = relay_stage(workers, env, peaks_dir, f"relay{workers}")
                results[f"4b. deliver 03-18 email, {workers} relays at once"] = many
                _report(f"relay x{workers}", many)

                before = count(url, REPORTS)
                quarter = {"plan_id": plan_id, "as_of": QUARTER_END.isoformat()}
                result = deployment_stage(api, peaks_dir, QUARTER_DEPLOYMENT, quarter)
                result["rows"] = count(url, REPORTS) - before
                results["5. quarter report 2021Q1 (deployment run)"] = result
                _report("quarter", result)

            chunks = math.ceil(size / 500)
            noop = run_prefect(chunks, 0, server.client_env)
            noop["rows"] = chunks
            results["Prefect no-op: flow + 1 task run per chunk, in process"] = noop
            _report("prefect no-op", noop)
        finally:
            server.stop()
    return results


def _cell(result: dict[str, Any]) -> str:
    peak = "–" if result.get("peak_mb") is None else f"{result['peak_mb']:.0f}"
    return f"{result['seconds']:.2f} / {peak} / {result['rows']:,}"


def tables(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> str:
    """The stage table (s / MB / rows per size, time growth) and Prefect's share per run."""
    steps = list(pairwise(sizes))
    head = "| stage | " + " | ".join(f"{n:,} items: s / MB / rows" for n in sizes)
    head += "".join(f" | time {a:,}→{b:,}" for a, b in steps)
    lines = [head + " |", "|" + "---|" * (1 + len(sizes) + len(steps))]
    for name in results[sizes[0]]:
        cells = [_cell(results[n][name]) for n in sizes]
        for a, b in steps:
            before, after = results[a][name]["seconds"], results[b][name]["seconds"]
            cells.append(f"×{after / before:.1f}" if before > 0.005 else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| deployment run | "
        + " | ".join(
            f"{n:,}: wall / duban tasks / Prefect + flow code / duban share [/ events in feed "
            "after the run]"
            for n in sizes
        )
        + " |",
        "|" + "---|" * (1 + len(sizes)),
    ]
    for name in results[sizes[0]]:
        if "duban" not in results[sizes[0]][name]:
            continue
        cells = []
        for n in sizes:
            r = results[n][name]
            share = r["duban"] / r["seconds"] if r["seconds"] else 0.0
            cell = f"{r['seconds']:.1f} s / {r['duban']:.1f} s / {r['prefect']:.1f} s / {share:.0%}"
            if "events_in_feed_s" in r:
                feed = r["events_in_feed_s"]
                cell += " / events in feed " + (f"+{feed:.1f} s" if feed is not None else "never")
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def digest_table(sizes: list[int], runs: dict[str, dict[int, dict[str, dict[str, Any]]]]) -> str:
    """Emails per pass and relay seconds, without and with digests, per size."""
    lines = [
        "| digests | items | emails 03-17 (catch-up) | emails 03-18 (request day) "
        "| relay x1 s | relay xW s | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, results in runs.items():
        for n in sizes:
            stages = results[n]
            relays = [stages[name] for name in stages if name.startswith("4")]
            lines.append(
                f"| {mode} | {n:,} | {stages['2. catch-up pass 03-17']['emails']:,} "
                f"| {stages['3. request-day pass 03-18']['emails']:,} "
                f"| {relays[0]['seconds']:.2f} | {relays[1]['seconds']:.2f} "
                f"| {stages['load']['value']} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Measure every size; print the machine line and the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated item counts")
    parser.add_argument(
        "--workers", type=int, default=2, help="workers, shards per pass and parallel relays"
    )
    parser.add_argument("--departments", type=int, default=500, help="departments to seed")
    parser.add_argument(
        "--auto-mode",
        action="store_true",
        help="let supervise_plan choose city or batch mode (default: batch at every size)",
    )
    parser.add_argument(
        "--digest",
        choices=("off", "on", "both"),
        default="off",
        help="daily digests for departments and leaders: off (one email per notice), on, both",
    )
    parser.add_argument(
        "--events",
        choices=("relay", "flow"),
        default="relay",
        help="who publishes the passes' events (DUBAN_EVENT_PUBLISHER): duban events relay, "
        "or each pass before it ends",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = {"off": ["off"], "on": ["on"], "both": ["off", "on"]}[args.digest]
    print(machine(), flush=True)
    runs: dict[str, dict[int, dict[str, dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="duban-bench-distributed-") as tmp:
        for mode in modes:
            results = runs[mode] = {}
            for size in sizes:
                print(f"digests {mode}, {size:,} items", flush=True)
                results[size] = measure(size, args, Path(tmp), digest=mode == "on")
                results[size]["load"] = {"value": load(), "seconds": 0.0, "rows": 0}
    for mode, results in runs.items():
        print()
        print(f"digests {mode}:")
        shown = {n: {k: v for k, v in r.items() if k != "load"} for n, r in results.items()}
        print(tables(sizes, shown))
    print()
    print(digest_table(sizes, runs))


if __name__ == "__main__":
    main()
