"""Table artifacts stay under Prefect's event size limit (`tasks.artifacts`).

The server emits `prefect.artifact-collection.created/updated` with the artifact's data in
the payload and drops any event over `PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES`; these tests
build that very event (Prefect's own lifecycle code) for each page of a province-scale plan
table and measure it as the server's messaging does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from uuid import uuid4

from prefect.artifacts import TableArtifact
from prefect.server.events.schemas.lifecycle import artifact_collection_updated_event
from prefect.settings import PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES, temporary_settings
from prefect.types._datetime import now

from tasks.artifacts import (
    PAGE_BUDGET_BYTES,
    encoded_pages,
    encoded_size,
    page_budget,
    page_key,
    table_pages,
)


def _plan_rows(items: int) -> list[dict[str, Any]]:
    """Rows shaped like `tasks.status_card.plan_table`'s, with the longest title it keeps."""
    return [
        {
            "序号": str(n),
            "任务": ("推动科技助力企业高质量发展" * 4)[:40],
            "红黄绿灯": "黄灯",
            "已报送": 12,
            "待报送": 12,
            "逾期": 12,
            "督办级别": 3,
            "待交办": "是",
            "办结": "已办结（2021-12-31）",
        }
        for n in range(1, items + 1)
    ]


def _event_size(rows: list[dict[str, Any]], key: str) -> int:
    """Size of the server's artifact-collection event for a table artifact of `rows`."""
    collection = SimpleNamespace(
        id=uuid4(),
        latest_id=uuid4(),
        flow_run_id=uuid4(),
        task_run_id=uuid4(),
        key=key,
        type="table",
        data=TableArtifact(table=rows).format(),
        description="省级工作要点（10000项）：督办概况（截至 2021-12-31）（第1/9页，第1–1200行）",
    )
    event = artifact_collection_updated_event(collection, now("UTC")).receive()  # type: ignore[arg-type]
    return len(event.model_dump_json().encode())


def test_one_table_of_a_province_plan_is_over_the_limit() -> None:
    assert (
        _event_size(_plan_rows(5000), "duban-plan-1")
        > PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES.value()
    )


def test_every_page_of_a_10000_item_plan_table_fits_in_one_event() -> None:
    rows = _plan_rows(10_000)
    assert page_budget() == PAGE_BUDGET_BYTES
    pages = table_pages(rows, page_budget())
    assert len(pages) > 1
    assert [row for page in pages for row in page] == rows
    limit = PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES.value()
    for number, page in enumerate(pages, start=1):
        assert _event_size(page, page_key("duban-plan-1", number)) < limit


def test_pages_are_filled_up_to_the_budget() -> None:
    rows = _plan_rows(50)
    budget = encoded_size(rows[:20]) + 10
    pages = table_pages(rows, budget)
    assert [len(page) for page in pages] == [20, 20, 10]
    assert all(encoded_size(page) <= budget for page in pages)
    assert encoded_size(rows[:21]) > budget


def test_a_small_table_is_one_page_under_its_own_key() -> None:
    rows = _plan_rows(3)
    assert table_pages(rows, PAGE_BUDGET_BYTES) == [rows]
    assert table_pages([], PAGE_BUDGET_BYTES) == [[]]
    assert page_key("duban-plan-7", 1) == "duban-plan-7"
    assert page_key("duban-plan-7", 2) == "duban-plan-7-p2"


def test_the_budget_follows_a_smaller_configured_event_limit() -> None:
    with temporary_settings({PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES: 600_000}):
        assert page_budget() == 400_000
    with temporary_settings({PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES: 10_000_000}):
        assert page_budget() == PAGE_BUDGET_BYTES


def test_a_page_is_encoded_as_prefects_table_artifact_encodes_it() -> None:
    rows: list[dict[str, Any]] = [
        *_plan_rows(3),
        {"任务": "含 NaN 的标题", "值": float("nan"), "列表": [1, float("nan"), {"x": "é"}]},
        {"无穷": float("inf"), "空": None, "真": True, "小数": 0.5},
        {},
    ]
    budget = encoded_size(rows[:2]) + 10
    encoded = encoded_pages(rows, budget)
    pages = table_pages(rows, budget)
    assert [len(page) for page in encoded] == [len(page) for page in pages]
    assert [row for page in pages for row in page] == rows
    for texts, page in zip(encoded, pages, strict=True):
        assert "[" + ", ".join(texts) + "]" == TableArtifact(table=page).format()
    assert encoded_pages([], budget) == [[]]
