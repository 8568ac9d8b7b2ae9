"""The interactive `record_checkin` flow: pause with a form, resume with input, store once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.flow_runs import aresume_flow_run
from sqlalchemy import Engine, select

from flows.record_checkin import CheckinEntry, form_description, record_checkin
from models.db import make_sessionmaker, transaction
from models.outbox import DomainEvent
from models.settings import get_settings
from models.supervision import Checkin, Submission
from tests.portal_rows import make_checkin

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    # An in-process Prefect flow run leaves an idle keep-alive socket of Prefect's sync
    # client to the garbage collector (seen with any async flow here, not only pauses).
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture
def app_database(migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Point duban's settings (and so the flow) at the migrated test database."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", migrated_engine.url.render_as_string(False))
    get_settings.cache_clear()
    yield migrated_engine
    get_settings.cache_clear()


async def _paused_run_id(name: str, task: asyncio.Task[Any]) -> UUID:
    async with get_client() as client:
        for _ in range(200):
            if task.done():
                task.result()
                raise AssertionError("the flow finished without pausing")
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            paused = [run for run in runs if run.state is not None and run.state.is_paused()]
            if paused:
                return paused[0].id
            await asyncio.sleep(0.1)
    raise AssertionError(f"no paused run named {name}")


def _new_checkin(engine: Engine) -> tuple[int, int, list[int]]:
    with transaction(make_sessionmaker(engine)) as session:
        rows = make_checkin(session)
        return rows.checkin.id, rows.department.id, [target.id for target in rows.targets]


async def test_ui_entry_is_stored_as_the_departments_submission(
    app_database: Engine, prefect_harness: None
) -> None:
    checkin_id, department_id, target_ids = _new_checkin(app_database)
    task = asyncio.create_task(record_checkin(checkin_id, timeout_seconds=120))
    run_id = await _paused_run_id(f"代为报送-报送{checkin_id}", task)
    await aresume_flow_run(
        run_id,
        run_input={
            "status": "at_risk",
            "narrative": "已举办学术活动120场次。",
            "values": {str(target_ids[0]): 120},
            "problems": "经费到位晚",
        },
    )
    result = await asyncio.wait_for(task, timeout=60)

    with make_sessionmaker(app_database)() as session:
        submissions = list(
            session.scalars(select(Submission).where(Submission.checkin_id == checkin_id))
        )
        checkin = session.get(Checkin, checkin_id)
        events = list(
            session.scalars(
                select(DomainEvent).where(DomainEvent.resource_id == f"duban.checkin.{checkin_id}")
            )
        )
    assert result == {"submission_id": submissions[0].id, "version": 1}
    assert len(submissions) == 1
    stored = submissions[0]
    assert (stored.source, stored.status, stored.problems) == (
        "prefect_ui",
        "at_risk",
        "经费到位晚",
    )
    assert stored.values == {str(target_ids[0]): 120}
    assert stored.idempotency_key == f"prefect_ui:{run_id}"
    assert checkin is not None and checkin.status == "submitted"
    assert checkin.department_id == department_id
    submitted = [event for event in events if event.type == "duban.checkin.submitted"]
    assert submitted and all(event.published_at is not None for event in submitted)


async def test_invalid_entry_fails_the_run_and_writes_nothing(
    app_database: Engine, prefect_harness: None
) -> None:
    checkin_id, _, _ = _new_checkin(app_database)
    task = asyncio.create_task(record_checkin(checkin_id, timeout_seconds=120))
    run_id = await _paused_run_id(f"代为报送-报送{checkin_id}", task)
    await aresume_flow_run(run_id, run_input={"status": "on_track", "narrative": "   "})
    with pytest.raises(Exception, match="代报内容不合格：narrative"):
        await asyncio.wait_for(task, timeout=60)
    with make_sessionmaker(app_database)() as session:
        count = session.scalars(select(Submission).where(Submission.checkin_id == checkin_id))
        assert list(count) == []


def test_form_description_lists_target_ids_for_the_values_field() -> None:
    text = form_description(
        {
            "department": "学会部",
            "item": "第4项 搭建平台",
            "due_date": "2021-09-30",
            "targets": [(12, "不少于200场次")],
        }
    )
    assert "代学会部报送：第4项 搭建平台" in text
    assert "`12`：不少于200场次" in text
    schema = CheckinEntry.model_json_schema()
    assert set(schema["required"]) == {"status", "narrative"}
