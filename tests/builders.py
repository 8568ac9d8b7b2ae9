"""Small ORM builders for tests: departments, a plan with phases, items and assignments.

Every builder adds rows to the given session and flushes; nothing is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from models.directory import Department
from models.plan import Item, Phase, Plan, Section, Target
from models.supervision import Assignment

BUILT_AT = datetime(2021, 5, 20, 1, 0, tzinfo=UTC)


def make_department(
    session: Session, name: str | None = None, *, office: bool = False
) -> Department:
    """A department with a contact, a 分管领导 and a 主要负责人, all under example.org."""
    name = name or f"部门{uuid.uuid4().hex[:6]}"
    slug = uuid.uuid4().hex[:8]
    dept = Department(
        name=name,
        contact_name=f"{name}联系人",
        contact_emails=[f"contact-{slug}@example.org"],
        leader_name=f"{name}分管领导",
        leader_email=f"leader-{slug}@example.org",
        head_name="主要负责人",
        head_email=f"head-{slug}@example.org",
        is_supervision_office=office,
        created_at=BUILT_AT,
    )
    session.add(dept)
    session.flush()
    return dept


@dataclass
class BuiltPlan:
    """What `make_plan` built."""

    plan: Plan
    items: list[Item] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)


DEFAULT_PHASES: tuple[tuple[str, str, date, date], ...] = (
    ("mobilize", "动员部署", date(2021, 5, 24), date(2021, 6, 30)),
    ("implement", "组织实施", date(2021, 7, 1), date(2021, 12, 15)),
    ("review", "总结验收", date(2021, 12, 16), date(2021, 12, 31)),
)


def make_plan(
    session: Session,
    *,
    items: Sequence[tuple[str, Sequence[Department], Sequence[Department]]],
    year: int = 2021,
    phases: Sequence[tuple[str, str, date, date]] = DEFAULT_PHASES,
    title: str | None = None,
) -> BuiltPlan:
    """A plan in status `imported` with one section, the given phases, and one item per entry.

    Each entry is (title, lead departments, support departments); an item with no lead is
    flagged `needs_assignment`. Open Assignment rows are created as plan import does.
    """
    plan = Plan(
        title=title or f"测试工作要点{uuid.uuid4().hex[:6]}",
        organisation="测试科协",
        year=year,
        source_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        created_at=BUILT_AT,
    )
    session.add(plan)
    session.flush()
    section = Section(plan_id=plan.id, position=1, number="一", title="测试部分")
    session.add(section)
    built = BuiltPlan(plan=plan)
    for key, name, start, end in phases:
        phase = Phase(plan_id=plan.id, key=key, name=name, start_date=start, end_date=end)
        session.add(phase)
        built.phases.append(phase)
    session.flush()
    for position, (item_title, leads, supports) in enumerate(items, start=1):
        item = Item(
            plan_id=plan.id,
            section_id=section.id,
            position=position,
            number=str(position),
            title=item_title,
            needs_assignment=not leads,
        )
        session.add(item)
        session.flush()
        for role, depts in (("lead", leads), ("support", supports)):
            for dept in depts:
                session.add(
                    Assignment(
                        item_id=item.id, department_id=dept.id, role=role, assigned_at=BUILT_AT
                    )
                )
        built.items.append(item)
    session.flush()
    return built


def add_target(session: Session, item: Item, *, value: float, unit: str = "场次") -> Target:
    """Add a `不少于{value}{unit}` target to `item`."""
    target = Target(
        item_id=item.id,
        position=1,
        text=f"不少于{value:g}{unit}",
        comparator="ge",
        value=value,
        unit=unit,
    )
    session.add(target)
    session.flush()
    return target
