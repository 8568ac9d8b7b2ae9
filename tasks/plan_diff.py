"""Comparing a stored plan with a new version of it (reads only; no writes).

Items are matched by (section, number, n-th occurrence): numbers repeat across grouped
lists. Units are compared as departments resolved by the matcher plus unresolved names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.department_match import DepartmentMatcher, Resolution
from models.directory import Department
from models.plan import Item, Plan
from models.plan_schema import ParsedItem, ParsedPlan
from models.supervision import Assignment

ItemKey = tuple[str | None, str, int]
COMPARED = ("title", "body", "lead", "support", "targets", "schedule")


@dataclass(frozen=True)
class ItemChange:
    """One item that differs between the stored plan and the new version."""

    number: str
    section: str | None
    title: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanDiff:
    """Items added, removed and changed between the stored plan and a new version."""

    added: list[ItemChange] = field(default_factory=list)
    removed: list[ItemChange] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def load_stored_plan(session: Session, plan_id: int) -> Plan:
    """The plan with sections, items, targets and phases loaded (refreshed from the DB)."""
    return session.scalars(
        select(Plan)
        .where(Plan.id == plan_id)
        .options(
            selectinload(Plan.sections),
            selectinload(Plan.items).selectinload(Item.targets),
            selectinload(Plan.phases),
        )
        .execution_options(populate_existing=True)
    ).one()


def keyed(items: list[tuple[str | None, str]]) -> list[ItemKey]:
    """(section, number, n-th occurrence) for each (section, number), in order."""
    seen: dict[tuple[str | None, str], int] = {}
    keys: list[ItemKey] = []
    for section, number in items:
        count = seen.get((section, number), 0)
        seen[(section, number)] = count + 1
        keys.append((section, number, count))
    return keys


def resolve_item(
    item: ParsedItem, matcher: DepartmentMatcher, unresolved: list[Resolution]
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Departments per role for one item, and its unresolved units as stored on the item.

    Appends each unresolved `Resolution` to `unresolved`.
    """
    roles: dict[str, list[str]] = {"lead": [], "support": []}
    flagged: list[dict[str, Any]] = []
    for role, names in (("lead", item.lead), ("support", item.support)):
        for resolution in matcher.resolve_all(names):
            if resolution.department is None:
                unresolved.append(resolution)
                flagged.append(
                    {
                        "name": resolution.written,
                        "role": role,
                        "suggestions": list(resolution.suggestions),
                    }
                )
            elif resolution.department not in roles[role]:
                roles[role].append(resolution.department)
    return roles, flagged


def assigned_departments(*, session: Session, plan_id: int) -> dict[int, dict[str, list[str]]]:
    """Item id -> {"lead": [...], "support": [...]}: department names of open assignments."""
    units: dict[int, dict[str, list[str]]] = {}
    rows = session.execute(
        select(Assignment.item_id, Assignment.role, Department.name)
        .join(Department, Department.id == Assignment.department_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.plan_id == plan_id, Assignment.ended_at.is_(None))
    ).all()
    for item_id, role, name in rows:
        units.setdefault(item_id, {"lead": [], "support": []})[role].append(name)
    return units


def _fields(
    *,
    title: str,
    body: str,
    lead: list[str],
    support: list[str],
    targets: list[Any],
    schedule: tuple[Any, ...],
) -> dict[str, Any]:
    return {
        "title": title,
        "body": body,
        "lead": sorted(lead),
        "support": sorted(support),
        "targets": [(t.text, t.comparator, float(t.value), t.unit) for t in targets],
        "schedule": schedule,
    }


def _schedule(item: ParsedItem) -> tuple[Any, ...]:
    """An incoming item's deadline, milestones and criteria as stored (JSON values)."""
    deadline = item.deadline.model_dump(mode="json") if item.deadline else None
    milestones = [m.model_dump(mode="json") for m in item.milestones]
    return deadline, _without_lines(milestones), item.criteria


def _without_lines(milestones: list[Any]) -> list[Any]:
    """Milestones as compared: where they stand in the document (`line`) is not a change."""
    return [
        {k: v for k, v in m.items() if k != "line"} if isinstance(m, dict) else m
        for m in milestones
    ]


def diff_plan(
    *, session: Session, plan_id: int, parsed: ParsedPlan, matcher: DepartmentMatcher
) -> PlanDiff:
    """Compare the stored plan `plan_id` with `parsed`, item by item (reads only)."""
    plan = load_stored_plan(session, plan_id)
    sections = {s.id: s.number for s in plan.sections}
    stored_items = list(plan.items)
    stored_keys = keyed([(sections.get(i.section_id or 0), i.number) for i in stored_items])
    stored = dict(zip(stored_keys, stored_items, strict=True))
    incoming_keys = keyed([(i.section, i.number) for i in parsed.items])
    incoming = dict(zip(incoming_keys, parsed.items, strict=True))
    units = assigned_departments(session=session, plan_id=plan_id)
    diff = PlanDiff()
    for key, new in incoming.items():
        old = stored.get(key)
        if old is None:
            diff.added.append(ItemChange(new.number, new.section, new.title))
            continue
        flagged = [u for u in old.unresolved_units if isinstance(u, dict)]
        have = units.get(old.id, {"lead": [], "support": []})
        before = _fields(
            title=old.title,
            body=old.body,
            lead=have["lead"] + [u["name"] for u in flagged if u.get("role") == "lead"],
            support=have["support"] + [u["name"] for u in flagged if u.get("role") == "support"],
            targets=list(old.targets),
            schedule=(old.deadline, _without_lines(list(old.milestones)), old.criteria),
        )
        roles, now_flagged = resolve_item(new, matcher, [])
        after = _fields(
            title=new.title,
            body=new.body,
            lead=roles["lead"] + [u["name"] for u in now_flagged if u["role"] == "lead"],
            support=roles["support"] + [u["name"] for u in now_flagged if u["role"] == "support"],
            targets=list(new.targets),
            schedule=_schedule(new),
        )
        changed = tuple(name for name in COMPARED if before[name] != after[name])
        if changed:
            diff.changed.append(ItemChange(new.number, new.section, new.title, changed))
    for key, old in stored.items():
        if key not in incoming:
            diff.removed.append(ItemChange(old.number, key[0], old.title))
    return diff
