"""The pinned Prefect set works end to end: deploy, schedule, and run to Completed.

Against a real Prefect server (SQLite, then PostgreSQL) started as a subprocess: `prefect
deploy --all` applies a prefect.yaml with an interval schedule into a process work pool, the
server's scheduler creates the runs, and a `prefect worker` subprocess executes one to
Completed. This is the failure the pins guard against: fastapi >= 0.151 breaks deploy (422)
and SQLAlchemy 2.1 stops the scheduler from creating any run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.prefect_server import (
    PrefectServer,
    fresh_postgres_database,
    require_postgres,
    start_prefect_server,
)

REPO = Path(__file__).resolve().parents[2]
PINNED = {"prefect": "3.8.8", "fastapi": "0.150.0", "sqlalchemy": "2.0.58"}
DEADLINE_SECONDS = 240  # generous: a loaded 2-CPU machine starts flow-run processes slowly

FLOW_SOURCE = """\
from prefect import flow


@flow(name="pin-probe")
async def pin_probe(x: int = 1) -> int:
    return x + 1
"""


def _constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, pinned = line.strip().partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    return pins


def test_installed_versions_match_the_pins() -> None:
    constraints = _constraint_pins()
    for name, pinned in PINNED.items():
        assert version(name) == pinned, f"{name} {version(name)} installed, {pinned} pinned"
        assert constraints.get(name) == pinned, f"constraints.txt pins {name} differently"
    for name in ("pydantic", "starlette", "uvicorn", "asyncpg", "aiosqlite"):
        assert constraints.get(name) == version(name), f"{name} drifted from constraints.txt"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def prefect_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectServer]:
    """A real Prefect server subprocess on SQLite or on a fresh PostgreSQL database."""
    workdir = tmp_path_factory.mktemp(f"prefect-{request.param}")
    fast_scheduler = {
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "5",
    }
    with contextlib.ExitStack() as stack:
        database_url = None
        if request.param == "postgresql":
            require_postgres()
            database_url = stack.enter_context(fresh_postgres_database())
        server = start_prefect_server(workdir, database_url=database_url, extra_env=fast_scheduler)
        stack.callback(server.stop)
        yield server


def _run(args: list[str], *, env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"prefect {' '.join(args)} failed:\n{output}"
    return output


def _flow_runs(server: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    response = server.api(
        "POST",
        "/flow_runs/filter",
        json={"deployments": {"id": {"any_": [deployment_id]}}, "sort": "START_TIME_ASC"},
        timeout=30,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.postgres
def test_scheduled_deployment_runs_to_completed_on_a_worker(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    project = tmp_path / "project"
    project.mkdir()
    (project / "pin_flow.py").write_text(FLOW_SOURCE)
    (project / "prefect.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: pins
            prefect-version: {PINNED["prefect"]}
            pull:
            - prefect.deployments.steps.set_working_directory:
                directory: {project}
            deployments:
            - name: every-few-seconds
              entrypoint: pin_flow.py:pin_probe
              parameters: {{x: 41}}
              work_pool: {{name: pins-pool}}
              schedules:
              - interval: 4
            """
        )
    )
    env = dict(prefect_server.client_env)
    env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    env["PREFECT_WORKER_PREFETCH_SECONDS"] = "5"
    _run(["work-pool", "create", "pins-pool", "--type", "process"], env=env, cwd=project)
    _run(["deploy", "--all"], env=env, cwd=project)
    response = prefect_server.api(
        "GET", "/deployments/name/pin-probe/every-few-seconds", timeout=10
    )
    assert response.status_code == 200, response.text
    deployment = response.json()
    assert deployment["schedules"][0]["schedule"]["interval"] == 4.0

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "pins-pool"],
            env=env,
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        completed: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        while time.monotonic() - started < DEADLINE_SECONDS:
            runs = _flow_runs(prefect_server, deployment["id"])
            completed = [run for run in runs if run["state_type"] == "COMPLETED"]
            if completed:
                break
            time.sleep(1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    assert completed, (
        f"no run completed in {DEADLINE_SECONDS} s; runs: "
        f"{[(run['expected_start_time'], run['state_type']) for run in runs]}\n"
        f"worker log:\n{worker_log.read_text(errors='replace')[-3000:]}\n"
        f"server log:\n{prefect_server.log_tail()}"
    )
    run = completed[0]
    assert run["auto_scheduled"] is True, "the run was not created by the scheduler"
    assert run["parameters"] == {"x": 41}
    assert run["work_pool_name"] == "pins-pool"
    assert "database is locked" not in prefect_server.log_tail(400)
