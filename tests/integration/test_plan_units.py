"""Unresolved units: map to a department, create departments, re-resolve flagged items."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Department
from models.directory_file import load_directory_file
from models.errors import InputError, NotFoundError
from models.plan_reader.document import parse_plan_text
from models.supervision import Assignment
from tasks.directory import upsert_directory
from tasks.plan_import import digest_bytes, get_plan, import_plan
from tasks.plan_units import create_departments, map_units, resolve_flagged

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2031, 2, 1, tzinfo=UTC)
PLAN = (
    "某市科协2031年工作要点\n1.建设阵地。（牵头部室：宣传处；配合部室：信息科）\n"
    "2.其他。（牵头部室：学会部）\n"
)


def _import(session: Session) -> int:
    directory = load_directory_file(ROOT / "examples" / "departments.yaml")
    upsert_directory(session=session, directory=directory, now=NOW)
    parsed = parse_plan_text(PLAN, source_name="p.txt")
    outcome = import_plan(
        session=session,
        parsed=parsed,
        source_name="p.txt",
        source_sha256=digest_bytes(PLAN.encode()),
        now=NOW,
    )
    return outcome.plan_id


def _open_roles(session: Session, item_id: int) -> set[tuple[str, str]]:
    rows = session.execute(
        select(Department.name, Assignment.role)
        .join(Assignment, Assignment.department_id == Department.id)
        .where(Assignment.item_id == item_id, Assignment.ended_at.is_(None))
    ).all()
    return {(name, role) for name, role in rows}


def test_map_then_resolve_flagged_assigns_and_clears_flags(session: Session) -> None:
    plan_id = _import(session)
    item = get_plan(session=session, plan_ref=plan_id).items[0]
    assert item.needs_assignment
    assert map_units(session=session, mapping={"宣传处": "辦公室"}) == ["宣传处"]
    assert resolve_flagged(session=session, plan_id=plan_id, now=NOW) == 1
    session.expire_all()
    item = get_plan(session=session, plan_ref=plan_id).items[0]
    assert _open_roles(session, item.id) == {("办公室", "lead")}
    assert not item.needs_assignment
    assert [u["name"] for u in item.unresolved_units] == ["信息科"]


def test_create_missing_departments(session: Session) -> None:
    plan_id = _import(session)
    created = create_departments(session=session, names=["信息科", "宣傳處", "学会部"], now=NOW)
    assert created == ["信息科", "宣传处"]
    assert resolve_flagged(session=session, plan_id=plan_id, now=NOW) == 2
    session.expire_all()
    item = get_plan(session=session, plan_ref=plan_id).items[0]
    assert _open_roles(session, item.id) == {("信息科", "support"), ("宣传处", "lead")}
    assert item.unresolved_units == []
    assert not item.needs_assignment


def test_mapping_errors(session: Session) -> None:
    _import(session)
    with pytest.raises(NotFoundError):
        map_units(session=session, mapping={"宣传处": "不存在的部门"})
    with pytest.raises(InputError):
        map_units(session=session, mapping={"学会部": "办公室"})
