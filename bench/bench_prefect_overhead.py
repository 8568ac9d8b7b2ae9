"""Prefect's own cost on this machine: flow runs created per second, and one async flow run.

For each backend (a real Prefect server subprocess on SQLite, then on PostgreSQL): create
flow runs from a deployment, one at a time and 8 at once, and run a trivial async flow in
process (the cost every `supervise_item` run pays before doing any work). Each measurement
runs in a child interpreter pointed at the server. `python -m bench prefect_overhead
[--runs N] [--flows N] [--backend sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


async def _measure(runs: int, flows: int) -> dict[str, Any]:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentCreate

    @flow(name="bench-noop")
    async def noop(x: int = 0) -> int:
        return x

    async with get_client() as client:
        flow_id = await client.create_flow_from_name("bench-noop")
        deployment_id = await client.create_deployment(
            **DeploymentCreate(flow_id=flow_id, name="overhead").model_dump(
                include={"flow_id", "name"}
            )
        )
        started = time.perf_counter()
        for _ in range(runs):
            await client.create_flow_run_from_deployment(deployment_id)
        sequential = runs / (time.perf_counter() - started)

        semaphore = asyncio.Semaphore(8)

        async def create() -> None:
            async with semaphore:
                await client.create_flow_run_from_deployment(deployment_id)

        started = time.perf_counter()
        await asyncio.gather(*(create() for _ in range(runs)))
        concurrent = runs / (time.perf_counter() - started)

    await noop(0)
    started = time.perf_counter()
    for index in range(flows):
        await noop(index)
    per_flow = (time.perf_counter() - started) / flows
    return {
        "created_per_s_sequential": round(sequential, 1),
        "created_per_s_8_concurrent": round(concurrent, 1),
        "in_process_async_flow_run_s": round(per_flow, 3),
    }


def _child(runs: int, flows: int) -> None:
    print(json.dumps(asyncio.run(_measure(runs, flows))))


def measure_backend(backend: str, runs: int, flows: int) -> dict[str, Any]:
    """Start a Prefect server on `backend`, measure in a child interpreter, stop the server."""
    sys.path.insert(0, str(REPO))
    from tests.prefect_server import fresh_postgres_database, start_prefect_server

    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        if backend == "postgresql":
            with fresh_postgres_database("bench_overhead") as url:
                return _measure_on(start_prefect_server(Path(tmp), database_url=url), runs, flows)
        return _measure_on(start_prefect_server(Path(tmp)), runs, flows)


def _measure_on(server: Any, runs: int, flows: int) -> dict[str, Any]:
    try:
        env = dict(server.client_env)
        env["PYTHONPATH"] = str(REPO)
        child = ["--child", "--runs", str(runs), "--flows", str(flows)]
        completed = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "bench.bench_prefect_overhead", *child],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr[-2000:])
        result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        result["server_database_is_locked_lines"] = server.log_tail(100000).count(
            "database is locked"
        )
        return result
    finally:
        server.stop()


def machine() -> dict[str, Any]:
    """Platform, CPU count, memory and the pinned versions, for the results table."""
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "prefect": version("prefect"),
        "fastapi": version("fastapi"),
        "sqlalchemy": version("sqlalchemy"),
    }


def run(
    runs: int = 200, flows: int = 30, backends: tuple[str, ...] = ("sqlite", "postgresql")
) -> dict[str, Any]:
    """Measure every backend; returns {"machine": …, "<backend>": {figures}}."""
    results: dict[str, Any] = {"machine": machine()}
    for backend in backends:
        results[backend] = measure_backend(backend, runs, flows)
    return results


def main() -> None:
    """Parse arguments, run, print the figures with the machine and versions."""
    parser = argparse.ArgumentParser(prog="bench prefect_overhead")
    parser.add_argument("--runs", type=int, default=200, help="flow runs to create per mode")
    parser.add_argument("--flows", type=int, default=30, help="in-process flow runs to time")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.runs, args.flows)
        return
    results = run(args.runs, args.flows, tuple(args.backend or ("sqlite", "postgresql")))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
