"""Prefect's cost of a city-scale pass: one plan run with item subflow runs, per simulated day.

`python -m bench supervision_runs [--days 10] [--items 2]` starts Prefect's test server
(SQLite) and runs, back to back in one process, `--days` top-level flow runs shaped like a
city-scale `supervise_plan` pass (`--items` `supervise_item`-like subflow runs each), in four
variants: with or without a task run before the subflows (the former `pass-scope` task),
and with or without one shared API client (`flows.simulate.shared_prefect_clients`). It
prints the wall and client CPU time per day and how many API requests the server answered
503 (SQLite "database is locked"; Prefect's client waits about 2 s before each retry, the
shared clients of `flows.simulate` 0.1-0.8 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import AsyncExitStack
from typing import Any


def main() -> None:
    """Run the four variants and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench supervision_runs", description=__doc__)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--items", type=int, default=2)
    args = parser.parse_args(sys.argv[1:])
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import httpx
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.testing.utilities import prefect_test_harness

    from flows.simulate import shared_prefect_clients

    unavailable = [0]
    send = httpx.AsyncClient.send

    async def counting_send(self: httpx.AsyncClient, request: Any, **kwargs: Any) -> Any:
        response = await send(self, request, **kwargs)
        if response.status_code == 503:
            unavailable[0] += 1
        return response

    httpx.AsyncClient.send = counting_send  # type: ignore[method-assign]

    @task(name="bench-scope", cache_policy=NO_CACHE)
    def scope(day: int) -> int:
        return day

    @flow(name="bench-item")
    async def item(number: int) -> int:
        return number

    @flow(name="bench-pass")
    async def one_pass(day: int, items: int, with_task: bool) -> None:
        if with_task:
            scope(day)
        for number in range(items):
            await item(day * 100 + number)

    async def days(with_task: bool, shared: bool) -> float:
        async with AsyncExitStack() as stack:
            if shared:
                await stack.enter_async_context(shared_prefect_clients())
            started = time.perf_counter()
            for day in range(args.days):
                await one_pass(day, args.items, with_task)
            return time.perf_counter() - started

    with prefect_test_harness(server_startup_timeout=120):
        asyncio.run(days(False, False))
        for with_task, shared in ((True, False), (False, False), (False, True), (True, True)):
            unavailable[0] = 0
            cpu = time.process_time()
            wall = asyncio.run(days(with_task, shared))
            print(
                f"task run before subflows {'yes' if with_task else 'no '}, shared client "
                f"{'yes' if shared else 'no '}: {1000 * wall / args.days:.0f} ms/day wall, "
                f"{1000 * (time.process_time() - cpu) / args.days:.0f} ms/day client CPU, "
                f"{unavailable[0]} answers 503, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
