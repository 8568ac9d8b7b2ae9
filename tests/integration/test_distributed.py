"""The distributed set-up, for real: Prefect server on PostgreSQL, app on PostgreSQL, two workers.

`duban deploy` applies prefect.yaml; two `duban worker` processes serve `duban-pool`. A run
of the `supervise-plan` deployment executes on a worker (through the working-day gate and
the pull step into `$DUBAN_PROJECT_DIR`), and a `duban.checkin.submitted` event fires the
`supervise-item` trigger with the item id taken from the event payload.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from models.calendar import WorkCalendar
from models.clock import resolve
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.policy import default_policy
from tasks.assignment import start_supervision
from tests.builders import make_department, make_plan
from tests.faults.workers import start_worker, stop_worker
from tests.prefect_server import (
    PrefectServer,
    postgres_prefect_server,
)

DUBAN = str(Path(sys.executable).with_name("duban"))
DEADLINE = 150
pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server subprocess on a fresh PostgreSQL database."""
    with postgres_prefect_server(tmp_path_factory.mktemp("dist"), "prefect_dist") as server:
        yield server


def _started_plan(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        make_department(session, office=True)
        lead = make_department(session)
        built = make_plan(session, items=[("搭建高水平科技开放交流平台", [lead], [])])
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=resolve(date(2021, 5, 24)),
            policy=default_policy(),
            calendar=WorkCalendar(),
        )
        plan_id, item_id = built.plan.id, built.items[0].id
    engine.dispose()
    return plan_id, item_id, lead.id


def _runs(server: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    response = server.api(
        "POST",
        "/flow_runs/filter",
        json={"deployments": {"id": {"any_": [deployment_id]}}},
        timeout=10,
    )
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def _wait(predicate: Any, started: float, what: str) -> Any:
    while time.monotonic() - started < DEADLINE:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _deployment_id(server: PrefectServer, flow: str, name: str) -> str:
    response = server.api("GET", f"/deployments/name/{flow}/{name}", timeout=10)
    assert response.status_code == 200, response.text
    deployment_id: str = response.json()["id"]
    return deployment_id


def test_two_workers_run_the_deployments_and_the_trigger(
    pg_prefect_server: PrefectServer, pg_database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    plan_id, item_id, _ = _started_plan(pg_database_url)
    env = dict(pg_prefect_server.client_env)
    env.update(
        {
            "DUBAN_DATABASE_URL": pg_database_url,
            "DUBAN_DATA_DIR": str(tmp_path / "data"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
    )
    deployed = subprocess.run(  # noqa: S603
        [DUBAN, "deploy", "--plan", str(plan_id)], env=env, capture_output=True, text=True
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    workers = [start_worker(env, tmp_path / f"worker{index}.log") for index in range(2)]
    try:
        online = _wait(
            lambda: [
                worker
                for worker in pg_prefect_server.api(
                    "POST", "/work_pools/duban-pool/workers/filter", json={}
                ).json()
                if worker["status"] == "ONLINE"
            ][1:],
            started,
            "two online workers",
        )
        assert online

        plan_deployment = _deployment_id(
            pg_prefect_server, "supervise-plan-on-workdays", "supervise-plan"
        )
        created = pg_prefect_server.api(
            "POST",
            f"/deployments/{plan_deployment}/create_flow_run",
            json={"parameters": {"plan_id": plan_id, "as_of": "2021-06-01T09:00:00+08:00"}},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = pg_prefect_server.api("GET", f"/flow_runs/{run_id}").json()
            return run if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED"} else None

        plan_run = _wait(finished, started, "the supervise-plan run")
        assert plan_run["state_type"] == "COMPLETED", _logs(tmp_path)
        assert plan_run["state_name"] == "Supervised"

        emit = textwrap.dedent(
            f"""\
            from prefect.events import emit_event
            emit_event(
                event="duban.checkin.submitted",
                resource={{"prefect.resource.id": "duban.checkin.424242"}},
                payload={{"item_id": {item_id}}},
            )
            """
        )
        emitted = subprocess.run(  # noqa: S603
            [sys.executable, "-c", emit], env=env, capture_output=True, text=True, timeout=60
        )
        assert emitted.returncode == 0, emitted.stderr
        item_deployment = _deployment_id(pg_prefect_server, "supervise-item", "supervise-item")
        item_runs = _wait(
            lambda: [
                run
                for run in _runs(pg_prefect_server, item_deployment)
                if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED"}
            ],
            started,
            "the triggered supervise-item run",
        )
        (item_run,) = item_runs
        assert int(item_run["parameters"]["item_id"]) == item_id
        assert item_run["state_type"] == "COMPLETED", _logs(tmp_path)
    finally:
        for worker in workers:
            stop_worker(worker)


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace")[-2000:] for path in sorted(tmp_path.glob("worker*.log"))
    )
