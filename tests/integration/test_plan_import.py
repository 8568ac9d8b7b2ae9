"""Storing parsed plans on SQLite and PostgreSQL: create, no-op re-import, diff, flags."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.department_match import DepartmentMatcher
from models.directory_file import load_directory_file
from models.errors import NotFoundError
from models.outbox import DomainEvent
from models.plan import Item, Phase, Plan, Target
from models.plan_reader.document import parse_plan_text
from models.supervision import Assignment
from tasks.directory import upsert_directory
from tasks.plan_import import ImportOutcome, digest_bytes, get_plan, import_plan, list_plans

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2021, 6, 1, 2, 0, tzinfo=UTC)

PLAN_V1 = """某市科协2031年工作要点

一、加强党的建设
1.深入学习党的创新理论。组织专题学习不少于12次。（牵头部室：機關黨支部；配合部室：辦公室）
2.推进学会改革。指导学会换届。（牵头部室：学会部）
二、提升科普能力
3.举办科普活动。开展活动50场次以上。（牵头部室：普及部）
4.建设宣传阵地。（牵头部室：宣传处）
"""


def _directory(session: Session) -> None:
    directory = load_directory_file(ROOT / "examples" / "departments.yaml")
    upsert_directory(session=session, directory=directory, now=NOW)
    session.flush()


def _import(session: Session, text: str, *, confirm: bool = False) -> ImportOutcome:
    parsed = parse_plan_text(text, source_name="plan.txt")
    return import_plan(
        session=session,
        parsed=parsed,
        source_name="plan.txt",
        source_sha256=digest_bytes(text.encode()),
        now=NOW,
        confirm=confirm,
    )


def _count(session: Session, model: type[object], plan_id: int) -> int:
    if model is Item:
        query = select(func.count()).select_from(Item).where(Item.plan_id == plan_id)
    elif model is Target:
        query = select(func.count()).select_from(Target).join(Item).where(Item.plan_id == plan_id)
    else:
        query = (
            select(func.count())
            .select_from(Assignment)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.plan_id == plan_id, Assignment.ended_at.is_(None))
        )
    return int(session.scalar(query) or 0)


def test_import_creates_plan_items_targets_phases_and_assignments(session: Session) -> None:
    _directory(session)
    outcome = _import(session, PLAN_V1)
    assert outcome.status == "created"
    plan = get_plan(session=session, plan_ref=outcome.plan_id)
    assert (plan.title, plan.year) == ("某市科协2031年工作要点", 2031)
    assert [s.number for s in plan.sections] == ["一", "二"]
    assert [i.number for i in plan.items] == ["1", "2", "3", "4"]
    assert [(t.text, t.comparator, t.value) for t in plan.items[0].targets] == [
        ("不少于12次", "ge", 12.0)
    ]
    assert _count(session, Assignment, plan.id) == 4
    assert [p.key for p in plan.phases] == ["mobilize", "implement", "review"]
    event = session.scalars(
        select(DomainEvent).where(DomainEvent.resource_id == f"duban.plan.{plan.id}")
    ).one()
    assert event.type == "duban.plan.imported"
    assert event.payload["unresolved_units"] == ["宣传处"]


def test_unresolved_unit_flags_item_with_suggestions(session: Session) -> None:
    _directory(session)
    outcome = _import(session, PLAN_V1)
    plan = get_plan(session=session, plan_ref=outcome.plan_id)
    flagged = plan.items[3]
    assert flagged.needs_assignment is True
    assert flagged.unresolved_units[0]["name"] == "宣传处"
    assert flagged.unresolved_units[0]["role"] == "lead"
    assert all(not item.needs_assignment for item in plan.items[:3])
    assert [r.written for r in outcome.unresolved] == ["宣传处"]


def test_same_document_twice_changes_nothing(session: Session) -> None:
    _directory(session)
    first = _import(session, PLAN_V1)
    plan_id = first.plan_id
    before = [_count(session, model, plan_id) for model in (Item, Target, Assignment)]
    events = session.scalar(select(func.count()).select_from(DomainEvent))
    again = _import(session, PLAN_V1)
    assert again.status == "unchanged"
    assert again.plan_id == plan_id
    assert [_count(session, model, plan_id) for model in (Item, Target, Assignment)] == before
    assert session.scalar(select(func.count()).select_from(DomainEvent)) == events
    assert session.scalar(select(func.count()).select_from(Plan).where(Plan.id == plan_id)) == 1


def test_changed_version_shows_diff_and_applies_only_when_confirmed(session: Session) -> None:
    _directory(session)
    plan_id = _import(session, PLAN_V1).plan_id
    v2 = (
        PLAN_V1.replace("（牵头部室：学会部）", "（牵头部室：普及部）")
        .replace("4.建设宣传阵地。（牵头部室：宣传处）\n", "")
        .replace("开展活动50场次以上", "开展活动60场次以上")
        + "5.开展科技志愿服务。（牵头部室：学会部）\n"
    )
    pending = _import(session, v2)
    assert pending.status == "pending"
    diff = pending.diff
    assert [c.number for c in diff.added] == ["5"]
    assert [c.number for c in diff.removed] == ["4"]
    assert {c.number: c.fields for c in diff.changed} == {"2": ("lead",), "3": ("body", "targets")}
    assert _count(session, Item, plan_id) == 4
    applied = _import(session, v2, confirm=True)
    assert applied.status == "updated"
    assert applied.plan_id == plan_id
    session.expire_all()
    plan = get_plan(session=session, plan_ref=plan_id)
    assert [i.number for i in plan.items] == ["1", "2", "3", "5"]
    assert plan.items[2].targets[0].value == 60.0
    ended = session.scalars(
        select(Assignment).where(
            Assignment.item_id == plan.items[1].id, Assignment.ended_at.is_not(None)
        )
    ).all()
    assert len(ended) == 1
    assert _import(session, v2).status == "unchanged"


def test_failure_midway_leaves_nothing(session: Session) -> None:
    _directory(session)
    ghost = DepartmentMatcher.from_directory([("不存在的部门", ["普及部"])])
    parsed = parse_plan_text(PLAN_V1, source_name="plan.txt")
    counts = [session.scalar(select(func.count()).select_from(m)) for m in (Item, Phase, Target)]
    savepoint = session.begin_nested()
    with pytest.raises(KeyError):
        import_plan(
            session=session,
            parsed=parsed,
            source_name="plan.txt",
            source_sha256="f" * 64,
            now=NOW,
            matcher=ghost,
        )
    savepoint.rollback()
    assert session.scalar(select(Plan).where(Plan.source_sha256 == "f" * 64)) is None
    after = [session.scalar(select(func.count()).select_from(m)) for m in (Item, Phase, Target)]
    assert after == counts


def test_list_and_get_plan_by_title_or_id(session: Session) -> None:
    _directory(session)
    plan_id = _import(session, PLAN_V1).plan_id
    assert plan_id in [plan.id for plan in list_plans(session=session)]
    assert get_plan(session=session, plan_ref="某市科协2031年工作要点").id == plan_id
    assert get_plan(session=session, plan_ref=str(plan_id)).id == plan_id
    with pytest.raises(NotFoundError):
        get_plan(session=session, plan_ref="没有这个计划")
