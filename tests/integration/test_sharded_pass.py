"""A batch pass fanned out to shard runs on two workers (Prefect server and app on PostgreSQL).

`duban deploy` applies prefect.yaml; two `duban worker --limit 2` processes serve `duban-pool`.
A `supervise-plan` deployment run with `shards=2` on a request day of a 250-item plan (batch
mode) starts two `supervise-shard` deployment runs as subflows of the pass; all three complete,
the database then holds exactly the notices the ladder owes (tests/faults/invariants.py), and
a second pass at the same day adds nothing. On the test harness (no worker): shard runs that
never finish fail the pass with a message naming them, and running the shards repairs the day.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterTags,
)
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import flows.shards
from flows.supervise import supervise_plan, supervise_shard
from models.db import make_engine, make_sessionmaker, upgrade
from models.outbox import DomainEvent, OutboxMessage
from models.settings import get_settings
from models.supervision import Notice
from tests.faults.invariants import notice_problems
from tests.faults.scenario import CALENDAR, DAY_REQUESTS, POLICY, at, build_plan
from tests.faults.workers import start_worker, stop_worker
from tests.prefect_server import (
    PrefectServer,
    postgres_prefect_server,
)

DUBAN = str(Path(sys.executable).with_name("duban"))
ITEMS = 250
SHARDS = 2
DEADLINE = 240.0
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    # Prefect's in-process API clients leave sockets for the garbage collector.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

T = TypeVar("T")


@pytest.fixture(scope="module")
def pg_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server subprocess on a fresh PostgreSQL database."""
    with postgres_prefect_server(tmp_path_factory.mktemp("shards"), "prefect_shards") as server:
        yield server


def _wait(predicate: Callable[[], T | None], what: str, deadline: float = DEADLINE) -> T:
    """Poll `predicate` each second until it returns a truthy value; transport errors of a
    loaded server count as "not yet". Fails after `deadline` seconds."""
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < deadline:
        try:
            value = predicate()
        except httpx.TransportError as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {deadline:.0f} s waiting for {what} ({last_error!r})")


def _api(server: PrefectServer, method: str, path: str, body: Any = None) -> Any:
    response = server.api(method, path, json=body, timeout=30)
    assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def _deployment_id(server: PrefectServer, flow: str, name: str) -> str:
    deployment_id: str = _api(server, "GET", f"/deployments/name/{flow}/{name}")["id"]
    return deployment_id


def _items_in(message: str) -> int:
    """The item count of a pass or shard message (`…巡检 125 项…`)."""
    return int(message.split("巡检 ", 1)[1].split(" 项", 1)[0])


def _counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Notice)) or 0,
            session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
            session.scalar(select(func.count()).select_from(DomainEvent)) or 0,
        )


class Pass:
    """Runs the `supervise-plan` deployment and reads back the pass and its shard runs."""

    def __init__(self, server: PrefectServer, plan_id: int, logs: Path) -> None:
        self.server, self.plan_id, self.logs = server, plan_id, logs
        self.plan_deployment = _deployment_id(
            server, "supervise-plan-on-workdays", "supervise-plan"
        )
        self.shard_deployment = _deployment_id(server, "supervise-shard", "supervise-shard")

    def run(self) -> dict[str, Any]:
        """Start a pass on the request day with `SHARDS` shards; its final gate run."""
        created = _api(
            self.server,
            "POST",
            f"/deployments/{self.plan_deployment}/create_flow_run",
            {
                "parameters": {
                    "plan_id": self.plan_id,
                    "as_of": at(DAY_REQUESTS).isoformat(),
                    "shards": SHARDS,
                }
            },
        )

        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = _api(self.server, "GET", f"/flow_runs/{created['id']}")
            return run if run["state_type"] in FINAL else None

        run = _wait(finished, "the supervise-plan run")
        assert run["state_type"] == "COMPLETED", (run["state"], self.worker_logs())
        return run

    def shard_runs(self) -> list[dict[str, Any]]:
        """Every `supervise-shard` run of this plan, oldest first."""
        runs: list[dict[str, Any]] = _api(
            self.server,
            "POST",
            "/flow_runs/filter",
            {
                "deployments": {"id": {"any_": [self.shard_deployment]}},
                "flow_runs": {"tags": {"all_": [f"plan:{self.plan_id}"]}},
                "sort": "EXPECTED_START_TIME_ASC",
            },
        )
        return runs

    def parent_of(self, run: dict[str, Any]) -> dict[str, Any]:
        """The flow run whose task started `run` as a subflow."""
        assert run["parent_task_run_id"], f"{run['name']} is not a subflow"
        task_run = _api(self.server, "GET", f"/task_runs/{run['parent_task_run_id']}")
        parent: dict[str, Any] = _api(self.server, "GET", f"/flow_runs/{task_run['flow_run_id']}")
        return parent

    def worker_logs(self) -> str:
        """The tail of each worker's log."""
        return "\n".join(
            path.read_text(errors="replace")[-3000:] for path in sorted(self.logs.glob("w*.log"))
        )


@pytest.fixture
def workers(
    pg_prefect_server: PrefectServer, pg_database_url: str, tmp_path: Path
) -> Iterator[tuple[int, Pass]]:
    """A migrated plan of `ITEMS` items, `duban deploy`, and two `duban worker --limit 2`."""
    engine = make_engine(pg_database_url)
    upgrade(engine)
    plan_id = build_plan(make_sessionmaker(engine), items=ITEMS, departments=12)
    engine.dispose()
    env = dict(pg_prefect_server.client_env)
    env.update(
        {
            "DUBAN_DATABASE_URL": pg_database_url,
            "DUBAN_DATA_DIR": str(tmp_path / "data"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
    )
    deployed = subprocess.run(  # noqa: S603
        [DUBAN, "deploy", "--plan", str(plan_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "supervise-shard" in deployed.stdout
    processes = [start_worker(env, tmp_path / f"w{index}.log") for index in range(2)]
    try:
        _wait(
            lambda: [
                worker
                for worker in _api(
                    pg_prefect_server, "POST", "/work_pools/duban-pool/workers/filter", {}
                )
                if worker["status"] == "ONLINE"
            ][1:],
            "two online workers",
        )
        yield plan_id, Pass(pg_prefect_server, plan_id, tmp_path)
    finally:
        for process in processes:
            stop_worker(process)


@pytest.mark.postgres
def test_two_workers_share_a_sharded_pass_and_owe_exactly_the_notices(
    workers: tuple[int, Pass], pg_database_url: str
) -> None:
    plan_id, passes = workers
    engine = make_engine(pg_database_url)
    sessions = make_sessionmaker(engine)
    before = _counts(sessions)

    gate = passes.run()
    assert gate["state_name"] == "Supervised"
    assert f"分 {SHARDS} 片" in gate["state"]["message"]
    shards = passes.shard_runs()
    assert sorted(run["name"] for run in shards) == [
        f"督办巡检 计划{plan_id} {DAY_REQUESTS.isoformat()} 第{n}片（共{SHARDS}片）"
        for n in range(1, SHARDS + 1)
    ]
    assert sorted(int(run["parameters"]["shard"]) for run in shards) == list(range(SHARDS))
    for run in shards:
        assert run["state_type"] == "COMPLETED", run["state"]
        assert run["state_name"] == "Supervised"
        assert run["labels"]["prefect.work-pool.name"] == "duban-pool"
        assert run["labels"]["prefect.worker.name"].startswith("ProcessWorker")
        parent = passes.parent_of(run)
        assert parent["name"] == f"督办巡检 计划{plan_id} {DAY_REQUESTS.isoformat()}"
        assert parent["state_type"] == "COMPLETED"
    reconciled = [_items_in(run["state"]["message"]) for run in shards]
    assert sum(reconciled) == _items_in(gate["state"]["message"]) > ITEMS // 2
    assert all(count > 0 for count in reconciled), reconciled

    after = _counts(sessions)
    assert after[0] > before[0], "the request day owes new notices"
    with sessions() as session:
        problems = notice_problems(
            session=session,
            plan_id=plan_id,
            pass_days=[DAY_REQUESTS],
            policy=POLICY,
            calendar=CALENDAR,
        )
    assert problems == []
    with sessions() as session:
        unpublished = session.scalar(
            select(func.count()).select_from(DomainEvent).where(DomainEvent.published_at.is_(None))
        )
    assert unpublished == 0, "the shards and the pass publish every event of the day"

    again = passes.run()
    assert again["state_name"] == "Supervised"
    assert len(passes.shard_runs()) == 2 * SHARDS
    assert _counts(sessions) == after
    assert again["state"]["message"].count("新通知 0 条") == SHARDS
    engine.dispose()


@pytest.fixture
def harness_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated SQLite database that the flows in this process use."""
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    engine = make_engine(url)
    upgrade(engine)
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()
    engine.dispose()


async def test_shards_that_do_not_finish_fail_the_pass_and_a_rerun_repairs_it(
    harness_db: Engine, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = make_sessionmaker(harness_db)
    plan_id = build_plan(sessions, items=24)
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("supervise-shard")
        await client.create_deployment(
            flow_id=flow_id,
            name="supervise-shard",
            entrypoint="flows/supervise.py:supervise_shard",
        )
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setattr(flows.shards, "SHARD_TIMEOUT_SECONDS", 3.0)
    monkeypatch.setattr(flows.shards, "SHARD_POLL_SECONDS", 0.5)

    state = await supervise_plan(
        plan_id, as_of=at(DAY_REQUESTS), batch=True, shards=SHARDS, return_state=True
    )
    assert state.is_failed()
    message = state.message or ""
    assert "分片巡检未全部完成" in message
    assert "第1片（共2片）" in message
    assert "第2片（共2片）" in message
    assert "Scheduled" in message
    assert "重新运行" in message
    # This pass's shard runs: other modules' runs on the same server carry `plan:1` too.
    pass_run = state.state_details.flow_run_id
    assert pass_run is not None
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"plan:{plan_id}"]),
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[pass_run]),
            )
        )
    assert sorted(run.parameters["shard"] for run in runs) == list(range(SHARDS))
    assert all(run.parent_task_run_id is not None for run in runs)
    with sessions() as session:
        owed = select(func.count()).select_from(Notice).where(Notice.kind != "assignment")
        assert session.scalar(owed) == 0, "no shard ran, so no request is sent yet"

    for shard in range(SHARDS):
        done = await supervise_shard(
            plan_id, as_of=at(DAY_REQUESTS), shard=shard, shards=SHARDS, return_state=True
        )
        assert done.is_completed()
        assert done.name == "Supervised"
    with sessions() as session:
        problems = notice_problems(
            session=session,
            plan_id=plan_id,
            pass_days=[DAY_REQUESTS],
            policy=POLICY,
            calendar=CALENDAR,
        )
    assert problems == []


async def test_a_missing_shard_deployment_is_named_with_the_fix(
    harness_db: Engine, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = build_plan(make_sessionmaker(harness_db), items=4)
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setattr(flows.shards, "SHARD_DEPLOYMENT", "supervise-shard/not-deployed")
    state = await supervise_plan(
        plan_id, as_of=at(DAY_REQUESTS), batch=True, shards=SHARDS, return_state=True
    )
    assert state.is_failed()
    assert "找不到分片部署 supervise-shard/not-deployed" in (state.message or "")
    assert "duban deploy" in (state.message or "")
