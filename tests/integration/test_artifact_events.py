"""A province-scale table artifact reaches Prefect's event feed (real Prefect server).

The server drops artifact-collection events over its size limit with only a log line; a
5,000-row plan table as one artifact was one of them. `create_table_artifacts` pages it, and
every page's `prefect.artifact-collection.created` event must be readable in the feed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.events.schemas.events import ResourceSpecification
from prefect.types._datetime import now

from tasks.artifacts import create_table_artifacts, page_key


async def _collection_events(since: object, keys: set[str]) -> set[str]:
    """Keys (resource names) of the artifact-collection events since `since` among `keys`."""
    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=["prefect.artifact-collection."]),
                occurred=EventOccurredFilter(since=since),  # type: ignore[arg-type]
                resource=EventResourceFilter(
                    labels=ResourceSpecification({"prefect.resource.name": sorted(keys)})
                ),
            ),
            limit=50,
        )
    return {
        event.resource.name or "" for event in page.events if (event.resource.name or "") in keys
    }


def _plan_table(items: int) -> list[dict[str, Any]]:
    """Rows shaped like `tasks.status_card.plan_table`'s, with long titles."""
    return [
        {
            "序号": str(n),
            "任务": "推动科技助力企业高质量发展，搭建高水平科技开放交流平台"[:40],
            "红黄绿灯": "黄灯",
            "已报送": 3,
            "待报送": 9,
            "逾期": 2,
            "督办级别": 1,
            "待交办": "",
            "办结": "",
        }
        for n in range(1, items + 1)
    ]


@flow(name="test-plan-table")
async def _leave_tables(items: int, key: str) -> int:
    """One unpaged table artifact `<key>-whole` (as before the fix), then the paged one."""
    table = _plan_table(items)
    await acreate_table_artifact(table=table, key=f"{key}-whole", description="督办概况")
    return await create_table_artifacts(table=table, key=key, description="督办概况")


async def test_every_page_of_a_5000_row_plan_table_is_in_the_event_feed(
    prefect_harness: None,
) -> None:
    since = now("UTC") - timedelta(seconds=5)
    key = f"duban-plan-{uuid4().hex[:8]}"
    pages = await _leave_tables(5000, key)
    assert pages >= 2
    keys = {page_key(key, number) for number in range(1, pages + 1)}
    deadline = time.monotonic() + 60
    watched = {*keys, f"{key}-whole"}
    seen = await _collection_events(since, watched)
    while not keys <= seen and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        seen = await _collection_events(since, watched)
    assert seen == keys  # every page's event arrived; the unpaged table's was dropped
    async with get_client() as client:
        stored = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=sorted(keys)))
        )
    by_key = {artifact.key: json.loads(str(artifact.data)) for artifact in stored}
    table = _plan_table(5000)
    assert [row for number in range(1, pages + 1) for row in by_key[page_key(key, number)]] == table
