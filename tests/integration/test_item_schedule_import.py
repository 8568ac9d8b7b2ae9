"""An item's 完成时限, 时序进度 and 考核要点 are stored at import and compared in the diff
(SQLite and PostgreSQL), from the 32-item task-division table of tests/plan_tables.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory_file import load_directory_file
from models.plan import Item
from models.plan_reader.document import read_plan_file
from models.plan_schema import ParsedDeadline
from tasks.directory import upsert_directory
from tasks.plan_import import digest_bytes, import_plan
from tests.plan_tables import write_xlsx

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2023, 2, 1, 2, 0, tzinfo=UTC)


def test_schedule_fields_are_stored_and_a_changed_deadline_is_a_change(
    session: Session, tmp_path: Path
) -> None:
    upsert_directory(
        session=session,
        directory=load_directory_file(ROOT / "examples" / "departments.yaml"),
        now=NOW,
    )
    path = write_xlsx(tmp_path / "plan")
    parsed = read_plan_file(path)
    outcome = import_plan(
        session=session,
        parsed=parsed,
        source_name=path.name,
        source_sha256=digest_bytes(path.read_bytes()),
        now=NOW,
    )
    assert outcome.status == "created"
    items = {
        item.number: item
        for item in session.scalars(select(Item).where(Item.plan_id == outcome.plan_id))
    }
    assert items["1.1"].deadline == {
        "kind": "date",
        "text": "2023年12月底前",
        "due": "2023-12-31",
        "rule": None,
    }
    assert [m["text"] for m in items["1.1"].milestones] == ["3月", "4月—6月", "12月"]
    assert items["1.1"].criteria == "宣讲不少于20场次"
    assert items["1.4"].deadline == {
        "kind": "recurring",
        "text": "每季度末",
        "due": None,
        "rule": "quarterly",
    }
    assert items["1.3"].milestones == []

    same = import_plan(
        session=session,
        parsed=parsed,
        source_name=path.name,
        source_sha256="another digest, same content",
        now=NOW,
    )
    assert same.status == "pending"
    assert same.diff is not None and same.diff.changed == []

    moved = parsed.model_copy(deep=True)
    moved.items[0].deadline = ParsedDeadline(
        kind="date", text="6月底前", due=NOW.date().replace(month=6, day=30)
    )
    changed = import_plan(
        session=session,
        parsed=moved,
        source_name=path.name,
        source_sha256="moved deadline",
        now=NOW,
    )
    assert changed.diff is not None
    assert [(c.number, c.fields) for c in changed.diff.changed] == [("1.1", ("schedule",))]
