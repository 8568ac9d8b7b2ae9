"""The review flows on a real Prefect server: files, Report row, artifacts, published events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import select

from flows.review import quarter_review, year_review
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.outbox import DomainEvent
from models.settings import get_settings
from tests.report_builders import AS_OF, seed_plan

# Any async flow run against Prefect's test harness leaves the API client's keep-alive
# sockets to be closed by the garbage collector (reproduced with a one-line flow), which
# pytest reports as an unraisable ResourceWarning; only that warning is ignored here.
pytestmark = [
    pytest.mark.prefect,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture
def seeded_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    url = f"sqlite:///{tmp_path / 'flows.db'}"
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        plan_id = seed_plan(session).plan_id
    engine.dispose()
    yield url, plan_id
    get_settings.cache_clear()


async def test_quarter_review_leaves_artifacts_and_publishes(
    prefect_harness: None, seeded_database: tuple[str, int], tmp_path: Path
) -> None:
    url, plan_id = seeded_database
    out = tmp_path / "out"
    result = await quarter_review(plan_id, as_of=AS_OF, out_dir=str(out))
    assert result["period"] == "2021Q3"
    assert result["summary"]["checkins_due"] == 8
    assert sorted(p.suffix for p in out.iterdir()) == [".docx", ".html", ".md"]
    key = f"review-plan{plan_id}-2021q3"
    async with get_client() as client:
        markdown = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
        table = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"{key}-departments"]))
        )
    assert markdown and markdown[0].type == "markdown"
    assert "督办落实情况通报" in str(markdown[0].data)
    assert "按时报送率为57.1%" in str(markdown[0].data)
    assert table and table[0].type == "table"
    rows = json.loads(str(table[0].data))
    assert rows[0]["部室"].startswith("普及部") and rows[0]["按时报送率"] == "100.0%"
    assert [row["排名"] for row in rows] == [1, 2, 3, "—"]
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        event = session.scalars(
            select(DomainEvent).where(DomainEvent.type == "duban.report.generated")
        ).one()
        assert event.published_at is not None
    engine.dispose()


async def test_year_review_reports_the_whole_year(
    prefect_harness: None, seeded_database: tuple[str, int], tmp_path: Path
) -> None:
    _, plan_id = seeded_database
    result = await year_review(plan_id, as_of=AS_OF, out_dir=str(tmp_path / "year"))
    assert result["period"] == "2021"
    # the Jun 15 check-in falls in the year (and is missing), on top of the quarter's 8
    assert result["summary"]["checkins_due"] == 9
    assert result["summary"]["missing"] == 3
    assert Path(result["files"]["docx"]).is_file()
