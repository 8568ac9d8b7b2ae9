"""Deployed duban on a real Prefect server for the worker and server fault tests.

`deploy` runs `duban deploy` (with a zombie window), `start_worker` a `duban worker` in its
own session, `kill_tree` SIGKILLs a worker and every process below it (the flow-run child
runs in a session of its own), `start_pass` creates a `supervise-plan` deployment run, and
`flow_runs` / `wait_for` read the server with a deadline on every wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.prefect_server import PrefectServer, start_prefect_server

__all__ = ["PrefectServer"]

DUBAN = str(Path(sys.executable).with_name("duban"))
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
PLAN_DEPLOYMENT = "supervise-plan-on-workdays/supervise-plan"
T = TypeVar("T")


def duban_env(server: PrefectServer, database_url: str, workdir: Path) -> dict[str, str]:
    """Environment of `duban deploy` / `duban worker`: app database, Prefect API, fast polls."""
    env = dict(server.client_env)
    env.update(
        {
            "DUBAN_DATABASE_URL": database_url,
            "DUBAN_DATA_DIR": str(workdir / "data"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def create_pool(server: PrefectServer) -> None:
    """Create the process work pool `duban-pool` (as `duban deploy` would), so that a worker
    can start while `duban deploy` runs."""
    response = server.api(
        "POST", "/work_pools/", json={"name": "duban-pool", "type": "process"}, timeout=10
    )
    assert response.status_code == 201, response.text


def deploy(env: dict[str, str], plan_id: int, *, zombie_after: int) -> str:
    """Run `duban deploy --plan plan_id --zombie-after zombie_after`; returns its output."""
    result = subprocess.run(  # noqa: S603
        [DUBAN, "deploy", "--plan", str(plan_id), "--zombie-after", str(zombie_after)],
        env={**env, "COLUMNS": "240"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `duban worker` in a new session, writing to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            [DUBAN, "worker", "--limit", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (read from /proc)."""
    tree = _children()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> list[int]:
    """SIGSTOP then SIGKILL `process` and all its descendants, so none can report the others'
    death; returns the pids killed. Waits for `process` itself."""
    pids = [process.pid, *descendants(process.pid)]
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    process.wait(timeout=30)
    return pids


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """End a worker that is still running: SIGTERM to its group, SIGKILL to the tree after 30 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_tree(process)


def deployment_id(server: PrefectServer, name: str = PLAN_DEPLOYMENT) -> str:
    """The id of deployment `flow/name`."""
    response = server.api("GET", f"/deployments/name/{name}", timeout=10)
    assert response.status_code == 200, response.text
    found: str = response.json()["id"]
    return found


def start_pass(server: PrefectServer, plan_id: int, as_of: datetime) -> str:
    """Create a batch-mode `supervise-plan` deployment run at `as_of`; returns its id."""
    response = server.api(
        "POST",
        f"/deployments/{deployment_id(server)}/create_flow_run",
        json={"parameters": {"plan_id": plan_id, "as_of": as_of.isoformat(), "batch": True}},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def flow_runs(server: PrefectServer) -> list[dict[str, Any]]:
    """Every flow run on the server (parents and subflows) except the scheduled ones (the
    deployments' cron schedules keep future runs waiting)."""
    response = server.api(
        "POST",
        "/flow_runs/filter",
        json={"limit": 200, "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}}},
        timeout=10,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def task_run_states(server: PrefectServer) -> dict[str, int]:
    """How many task runs are in each state type (for the report of what Prefect did)."""
    response = server.api("POST", "/task_runs/filter", json={"limit": 200}, timeout=10)
    response.raise_for_status()
    counts: dict[str, int] = {}
    for run in response.json():
        counts[run["state_type"]] = counts.get(run["state_type"], 0) + 1
    return counts


def flow_run(server: PrefectServer, run_id: str) -> dict[str, Any]:
    """One flow run."""
    response = server.api("GET", f"/flow_runs/{run_id}", timeout=10)
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


def wait_for(
    predicate: Callable[[], T | None],
    deadline: float,
    what: str,
    server: PrefectServer | None = None,
) -> T:
    """Poll `predicate` every 0.2 s until it returns something truthy or `deadline` passes.

    HTTP errors count as "not yet" (the server may be restarting). On timeout the error
    names `what` and, given `server`, the state of every flow run.
    """
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    states = ""
    if server is not None:
        with contextlib.suppress(httpx.HTTPError):
            states = "; ".join(
                f"{run['name']} {run['state_type']}/{run['state_name']}: "
                f"{(run['state'] or {}).get('message')}"
                for run in flow_runs(server)
            )
    raise AssertionError(f"timed out waiting for {what}; flow runs: {states}")


def online_workers(server: PrefectServer) -> list[str]:
    """Names of ONLINE workers of duban-pool."""
    response = server.api("POST", "/work_pools/duban-pool/workers/filter", json={}, timeout=10)
    response.raise_for_status()
    return [worker["name"] for worker in response.json() if worker["status"] == "ONLINE"]


def logs(workdir: Path) -> str:
    """The tails of the worker logs under `workdir` (for assertion messages)."""
    return "\n".join(
        path.read_text(errors="replace")[-3000:] for path in sorted(workdir.glob("worker*.log"))
    )


def bring_up(
    workdir: Path, prefect_url: str, app_url: str, *, chunk: str, zombie_after: int
) -> tuple[PrefectServer, dict[str, str], subprocess.Popen[bytes]]:
    """Start a Prefect server on `prefect_url`, the pool and a worker (passes of `chunk` items
    per chunk), and run `duban deploy --plan 1 --zombie-after zombie_after` while the caller
    builds its plan (the test's runs pass `plan_id` themselves). Returns (server, worker
    environment, worker); stops what it started if a step fails."""
    server = start_prefect_server(workdir / "prefect", database_url=prefect_url)
    env = duban_env(server, app_url, workdir)
    env["DUBAN_PASS_CHUNK_SIZE"] = chunk
    worker = None
    try:
        create_pool(server)
        worker = start_worker(env, workdir / "worker1.log")
        deployed = deploy(env, 1, zombie_after=zombie_after)
        assert f"{zombie_after} 秒无心跳" in deployed
    except BaseException:
        if worker is not None:
            stop_worker(worker)
        server.stop()
        raise
    return server, env, worker
