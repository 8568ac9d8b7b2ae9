"""A stored plan exported to .xlsx reads back as the same plan: no change in the import diff."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from duban.cli.plan_export import plan_rows, write_workbook
from models.plan_reader.document import read_plan_file
from tasks.plan_diff import assigned_departments
from tasks.plan_import import digest_bytes, get_plan, import_plan
from tasks.plan_units import create_departments
from tests.plan_tables import YEAR, write_xlsx

NOW = datetime(2023, 1, 3, 2, 0, tzinfo=UTC)


def _import(session: Session, path: Path) -> tuple[str, int]:
    parsed = read_plan_file(path, default_year=YEAR)
    units = sorted({u for item in parsed.items for u in [*item.lead, *item.support]})
    create_departments(session=session, names=units, now=NOW)
    outcome = import_plan(
        session=session,
        parsed=parsed,
        source_name=path.name,
        source_sha256=digest_bytes(path.read_bytes()),
        now=NOW,
    )
    session.flush()
    return outcome.status, outcome.plan_id


def test_export_of_a_task_table_with_schedules_reads_back_unchanged(
    session: Session, tmp_path: Path
) -> None:
    status, plan_id = _import(session, write_xlsx(tmp_path / "table.xlsx"))
    assert status == "created"
    plan = get_plan(session=session, plan_ref=plan_id)
    assert any(item.milestones for item in plan.items)
    assert any(item.criteria for item in plan.items)
    exported = tmp_path / "exported.xlsx"
    write_workbook(
        plan_rows(plan, assigned_departments(session=session, plan_id=plan_id)), exported
    )

    parsed = read_plan_file(exported, default_year=YEAR)
    outcome = import_plan(
        session=session,
        parsed=parsed,
        source_name=exported.name,
        source_sha256=digest_bytes(exported.read_bytes()),
        now=NOW,
    )
    assert outcome.status == "pending" and outcome.plan_id == plan_id
    assert not outcome.diff, [(c.number, c.fields) for c in outcome.diff.changed]
    by_number = {item.number: item for item in plan.items}
    for item in parsed.items:
        stored = by_number[item.number]
        assert [m.model_dump(mode="json") for m in item.milestones] == [
            {**m, "line": item.milestones[i].line} for i, m in enumerate(stored.milestones)
        ]
        assert item.criteria == stored.criteria
