"""The supervision flows on a real Prefect server: runs named for items, named states,
artifacts, and batch mode that does not create a flow run per item."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterTags,
)
from sqlalchemy import Engine, func, select

from flows.supervise import supervise_item, supervise_plan
from models.calendar import default_calendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.policy import default_policy
from models.settings import get_settings
from models.supervision import Notice
from tasks.assignment import start_supervision
from tasks.status_card import plan_table
from tests.builders import make_department, make_plan

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    # Prefect's in-process API clients leave sockets for the garbage collector.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture
def flow_db(migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point the flows at the migrated test database (SQLite only: one backend suffices)."""
    if migrated_engine.dialect.name != "sqlite":
        pytest.skip("flows are exercised on SQLite; storage is covered on both elsewhere")
    monkeypatch.setenv("DUBAN_DATABASE_URL", migrated_engine.url.render_as_string(False))
    get_settings.cache_clear()
    yield migrated_engine
    get_settings.cache_clear()


def _started_plan(engine: Engine) -> tuple[int, list[int]]:
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        make_department(session, office=True)
        lead = make_department(session, f"学会部{uuid.uuid4().hex[:6]}")
        other = make_department(session)
        built = make_plan(
            session,
            items=[
                ("搭建高水平科技开放交流平台", [lead], []),
                ("推动科技助力企业发展", [lead, other], []),
                ("无人牵头的任务", [], []),
            ],
        )
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=resolve(date(2021, 5, 24)),
            policy=default_policy(),
            calendar=default_calendar(),
        )
        return built.plan.id, [item.id for item in built.items]


async def _runs(parent: UUID | None, tag: str) -> list[tuple[str, str]]:
    """Names and state names of the supervise-item runs started by the pass `parent`."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["supervise-item"])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[tag]),
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]),
            ),
        )
    return sorted((run.name, run.state.name if run.state else "") for run in runs)


async def test_plan_pass_runs_each_due_item_as_a_named_flow(
    flow_db: Engine, prefect_harness: None
) -> None:
    plan_id, items = _started_plan(flow_db)
    state = await supervise_plan(plan_id, as_of=resolve(date(2021, 6, 23)), return_state=True)
    assert state.name == "Supervised"
    runs = await _runs(state.state_details.flow_run_id, f"plan:{plan_id}")
    assert runs == [
        ("第1项 搭建高水平科技开放交流平台", "AwaitingCheckin"),
        ("第2项 推动科技助力企业发展", "AwaitingCheckin"),
    ]
    again = await supervise_plan(plan_id, as_of=resolve(date(2021, 6, 23)), return_state=True)
    assert await _runs(again.state_details.flow_run_id, f"plan:{plan_id}") == []
    assert "子流程 0 个" in (again.message or "")
    async with get_client() as client:
        item_runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(
                    any_=[state.state_details.flow_run_id]
                )
            )
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(
                    any_=[state.state_details.flow_run_id, *(run.id for run in item_runs)]
                )
            )
        )
    keys = {artifact.key for artifact in artifacts}
    assert keys == {f"duban-item-{items[0]}", f"duban-item-{items[1]}", f"duban-plan-{plan_id}"}
    card = next(a for a in artifacts if a.key == f"duban-item-{items[0]}")
    assert "2021-06-30" in str(card.data)
    assert "学会部" in str(card.data)


async def test_item_flow_names_its_state_and_batch_mode_creates_no_item_runs(
    flow_db: Engine, prefect_harness: None
) -> None:
    plan_id, items = _started_plan(flow_db)
    state = await supervise_item(items[0], as_of=resolve(date(2021, 7, 5)), return_state=True)
    assert state.name == "Escalated"
    again = await supervise_item(items[0], as_of=resolve(date(2021, 7, 5)), return_state=True)
    assert again.name == "Escalated"
    assert "新通知 0 条" in (again.message or "")
    state = await supervise_plan(
        plan_id, as_of=resolve(date(2021, 7, 5)), batch=True, return_state=True
    )
    assert state.name == "Supervised"
    assert await _runs(state.state_details.flow_run_id, f"plan:{plan_id}") == []
    assert "子流程 0 个" in (state.message or "")
    sessions = make_sessionmaker(flow_db)
    with sessions() as session:
        keys = list(session.scalars(select(Notice.key).where(Notice.item_id.in_(items[:2]))))
        assert len(keys) == len(set(keys))
        escalations = session.scalar(
            select(func.count())
            .select_from(Notice)
            .where(Notice.item_id == items[1], Notice.kind == "escalation")
        )
        assert escalations == 4


async def test_a_batch_pass_leaves_its_changes_and_summary_tables_on_its_run(
    flow_db: Engine, prefect_harness: None
) -> None:
    plan_id, _ = _started_plan(flow_db)
    day = date(2021, 6, 23)
    state = await supervise_plan(plan_id, as_of=resolve(day), batch=True, return_state=True)
    assert state.name == "Supervised"
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    by_key = {artifact.key: artifact for artifact in artifacts}
    assert set(by_key) == {f"duban-plan-{plan_id}-changes", f"duban-plan-{plan_id}"}
    assert all(artifact.type == "table" for artifact in artifacts)
    with make_sessionmaker(flow_db)() as session:
        assert json.loads(str(by_key[f"duban-plan-{plan_id}"].data)) == plan_table(
            session=session, plan_id=plan_id, today=day
        )
    changes = json.loads(str(by_key[f"duban-plan-{plan_id}-changes"].data))
    assert [row["任务"] for row in changes] == [
        "第1项 搭建高水平科技开放交流平台",
        "第2项 推动科技助力企业发展",
    ]
    assert all(row["新通知"] > 0 for row in changes)
    assert by_key[f"duban-plan-{plan_id}-changes"].description == "本次巡检有变化的任务（2项）"
    assert f"{len(changes)} 项有变化" in (state.message or "")
