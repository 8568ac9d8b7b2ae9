"""A stored plan exported to .xlsx reads back as the same plan: no change in the import diff."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from duban.cli.plan_export import plan_rows, write_workbook
from models.plan_reader.document import read_plan_file
from tasks.plan_diff import assigned_departments
from tasks.plan_import import ImportOutcome, digest_bytes, get_plan, import_plan
from tasks.plan_units import create_departments
from tests.plan_tables import YEAR, write_xlsx

NOW = datetime(2023, 1, 3, 2, 0, tzinfo=UTC)


def _import(session: Session, path: Path) -> ImportOutcome:
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
    return outcome


def test_export_of_a_task_table_with_schedules_reads_back_unchanged(
    session: Session, tmp_path: Path
) -> None:
    created = _import(session, write_xlsx(tmp_path / "table.xlsx"))
    assert created.status == "created"
    plan = get_plan(session=session, plan_ref=created.plan_id)
    assert any(item.milestones for item in plan.items)
    assert any(item.criteria for item in plan.items)
    assert any(item.deadline for item in plan.items)
    exported = tmp_path / "exported.xlsx"
    departments = assigned_departments(session=session, plan_id=plan.id)
    write_workbook(plan_rows(plan, departments), exported)

    again = _import(session, exported)
    assert again.status == "pending" and again.plan_id == plan.id
    assert not again.diff, [(c.number, c.fields) for c in again.diff.changed]
