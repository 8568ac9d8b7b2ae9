"""Storing a parsed plan (repository functions; the caller owns the transaction).

`import_plan` is idempotent by `Plan.source_sha256`; a changed version of a plan with the
same title and year yields a `PlanDiff` that is applied only with `confirm=True`. Open
Assignment rows are created for every unit resolved to a department; an item without a
resolved lead gets `needs_assignment` and its `unresolved_units`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from models.department_match import DepartmentMatcher, Resolution
from models.directory import Department
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan, Section, Target
from models.plan_schema import ParsedItem, ParsedPlan
from models.supervision import Assignment
from tasks.directory import list_departments
from tasks.events import record_event, related

ItemKey = tuple[str | None, str, int]
_COMPARED = ("title", "body", "lead", "support", "targets")


def digest_bytes(data: bytes) -> str:
    """SHA-256 hex digest of a source document's bytes (the idempotency key)."""
    return hashlib.sha256(data).hexdigest()


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


@dataclass(frozen=True)
class ImportOutcome:
    """What `import_plan` did: `created`, `unchanged`, `updated` or `pending` (diff not applied)."""

    status: str
    plan_id: int
    diff: PlanDiff = field(default_factory=PlanDiff)
    unresolved: list[Resolution] = field(default_factory=list)


def matcher_from_session(*, session: Session) -> DepartmentMatcher:
    """A department matcher over the stored directory (names and aliases)."""
    return DepartmentMatcher.from_directory(
        (dept.name, [alias.alias for alias in dept.aliases])
        for dept in list_departments(session=session)
    )


def _load_plan(session: Session, plan_id: int) -> Plan:
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


def _keyed(items: list[tuple[str | None, str]]) -> list[ItemKey]:
    """(section, number, n-th occurrence): numbers repeat across grouped lists."""
    seen: dict[tuple[str | None, str], int] = {}
    keys: list[ItemKey] = []
    for section, number in items:
        count = seen.get((section, number), 0)
        seen[(section, number)] = count + 1
        keys.append((section, number, count))
    return keys


def _stored_units(session: Session, plan_id: int) -> dict[int, dict[str, list[str]]]:
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
    *, title: str, body: str, lead: list[str], support: list[str], targets: list[Any]
) -> dict[str, Any]:
    return {
        "title": title,
        "body": body,
        "lead": sorted(lead),
        "support": sorted(support),
        "targets": [(t.text, t.comparator, float(t.value), t.unit) for t in targets],
    }


def diff_plan(
    *, session: Session, plan_id: int, parsed: ParsedPlan, matcher: DepartmentMatcher
) -> PlanDiff:
    """Compare the stored plan `plan_id` with `parsed`, item by item (reads only).

    Units are compared as departments (resolved with `matcher`) plus unresolved names.
    """
    plan = _load_plan(session, plan_id)
    sections = {s.id: s.number for s in plan.sections}
    stored_items = list(plan.items)
    stored = dict(
        zip(
            _keyed([(sections.get(i.section_id or 0), i.number) for i in stored_items]),
            stored_items,
            strict=True,
        )
    )
    incoming = dict(
        zip(_keyed([(i.section, i.number) for i in parsed.items]), parsed.items, strict=True)
    )
    units = _stored_units(session, plan_id)
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
        )
        roles, now_flagged = _resolve_item(new, matcher, [])
        after = _fields(
            title=new.title,
            body=new.body,
            lead=roles["lead"] + [u["name"] for u in now_flagged if u["role"] == "lead"],
            support=roles["support"] + [u["name"] for u in now_flagged if u["role"] == "support"],
            targets=list(new.targets),
        )
        changed = tuple(name for name in _COMPARED if before[name] != after[name])
        if changed:
            diff.changed.append(ItemChange(new.number, new.section, new.title, changed))
    for key, old in stored.items():
        if key not in incoming:
            diff.removed.append(ItemChange(old.number, key[0], old.title))
    return diff


def _resolve_item(
    item: ParsedItem, matcher: DepartmentMatcher, unresolved: list[Resolution]
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
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


def _write_item(
    *,
    session: Session,
    row: Item,
    parsed: ParsedItem,
    matcher: DepartmentMatcher,
    departments: dict[str, Department],
    unresolved: list[Resolution],
    now: datetime,
) -> None:
    roles, flagged = _resolve_item(parsed, matcher, unresolved)
    row.title = parsed.title
    row.body = parsed.body
    row.line = parsed.line
    row.unresolved_units = flagged
    row.needs_assignment = not roles["lead"]
    session.execute(delete(Target).where(Target.item_id == row.id))
    for position, target in enumerate(parsed.targets, start=1):
        session.add(
            Target(
                item_id=row.id,
                position=position,
                text=target.text,
                comparator=target.comparator,
                value=target.value,
                unit=target.unit,
            )
        )
    open_rows = list(
        session.scalars(
            select(Assignment).where(Assignment.item_id == row.id, Assignment.ended_at.is_(None))
        )
    )
    wanted = {(departments[name].id, role) for role, names in roles.items() for name in names}
    have = {(a.department_id, a.role) for a in open_rows}
    for assignment in open_rows:
        if (assignment.department_id, assignment.role) not in wanted:
            assignment.ended_at = now
            assignment.reason = "计划更新"
    for role, names in roles.items():
        for name in names:
            if (departments[name].id, role) not in have:
                session.add(
                    Assignment(
                        item_id=row.id,
                        department_id=departments[name].id,
                        role=role,
                        assigned_at=now,
                        reason="计划导入",
                    )
                )


def unresolved_units(*, parsed: ParsedPlan, matcher: DepartmentMatcher) -> list[Resolution]:
    """Every unit name in `parsed` that `matcher` cannot resolve, once each, in order."""
    seen: dict[str, Resolution] = {}
    for item in parsed.items:
        for resolution in matcher.resolve_all([*item.lead, *item.support]):
            if resolution.department is None:
                seen.setdefault(resolution.written, resolution)
    return list(seen.values())


def _sync_sections(session: Session, plan: Plan, parsed: ParsedPlan) -> dict[str, int]:
    existing = {section.number: section for section in plan.sections}
    for section in plan.sections:
        section.position = -section.id
    session.flush()
    ids: dict[str, int] = {}
    for position, incoming in enumerate(parsed.sections, start=1):
        row = existing.pop(incoming.number, None)
        if row is None:
            row = Section(plan_id=plan.id, number=incoming.number, title=incoming.title)
            session.add(row)
        row.position = position
        row.title = incoming.title
        session.flush()
        ids[incoming.number] = row.id
    if existing:
        stale = [row.id for row in existing.values()]
        session.execute(
            update(Item)
            .where(Item.section_id.in_(stale))
            .values(section_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(Section).where(Section.id.in_(stale)))
    return ids


def _write_plan(
    *,
    session: Session,
    plan: Plan,
    parsed: ParsedPlan,
    matcher: DepartmentMatcher,
    unresolved: list[Resolution],
    now: datetime,
) -> None:
    departments = {dept.name: dept for dept in list_departments(session=session)}
    section_ids = _sync_sections(session, plan, parsed)
    stored_items = list(plan.items)
    section_numbers = section_ids
    by_id = {sid: number for number, sid in section_ids.items()}
    stored = dict(
        zip(
            _keyed([(by_id.get(i.section_id or 0), i.number) for i in stored_items]),
            stored_items,
            strict=True,
        )
    )
    for stale in stored_items:
        stale.position = -stale.id
    session.flush()
    keys = _keyed([(item.section, item.number) for item in parsed.items])
    for position, (key, incoming) in enumerate(zip(keys, parsed.items, strict=True), start=1):
        row: Item | None = stored.pop(key) if key in stored else None
        if row is None:
            row = Item(plan_id=plan.id, number=incoming.number, title=incoming.title)
            session.add(row)
        row.position = position
        row.number = incoming.number
        row.section_id = section_numbers.get(incoming.section) if incoming.section else None
        session.flush()
        _write_item(
            session=session,
            row=row,
            parsed=incoming,
            matcher=matcher,
            departments=departments,
            unresolved=unresolved,
            now=now,
        )
    if stored:
        removed = [row.id for row in stored.values()]
        session.execute(delete(Target).where(Target.item_id.in_(removed)))
        session.execute(delete(Assignment).where(Assignment.item_id.in_(removed)))
        session.execute(delete(Item).where(Item.id.in_(removed)))
    session.execute(delete(Phase).where(Phase.plan_id == plan.id))
    for phase in parsed.phases:
        session.add(
            Phase(
                plan_id=plan.id,
                key=phase.key,
                name=phase.name,
                start_text=phase.start,
                end_text=phase.end,
                start_date=phase.start_date,
                end_date=phase.end_date,
            )
        )
    session.flush()


def import_plan(
    *,
    session: Session,
    parsed: ParsedPlan,
    source_name: str,
    source_sha256: str,
    now: datetime,
    matcher: DepartmentMatcher | None = None,
    confirm: bool = False,
) -> ImportOutcome:
    """Store `parsed` in the caller's transaction (no commit); all-or-nothing with it.

    Same `source_sha256` as a stored plan: nothing changes (`unchanged`). Same title and year
    as a stored plan: the diff is returned (`pending`) and applied only with `confirm`
    (`updated`). Otherwise the plan is created (`created`). Writes a `duban.plan.imported`
    event whenever it writes.
    """
    found = session.scalar(select(Plan.id).where(Plan.source_sha256 == source_sha256))
    if found is not None:
        return ImportOutcome(status="unchanged", plan_id=found)
    matcher = matcher or matcher_from_session(session=session)
    previous = session.scalars(
        select(Plan)
        .where(Plan.title == parsed.title, Plan.year == parsed.year)
        .order_by(Plan.id.desc())
    ).first()
    unresolved: list[Resolution] = []
    if previous is not None:
        diff = diff_plan(session=session, plan_id=previous.id, parsed=parsed, matcher=matcher)
        if not confirm:
            return ImportOutcome(
                status="pending",
                plan_id=previous.id,
                diff=diff,
                unresolved=unresolved_units(parsed=parsed, matcher=matcher),
            )
        plan = _load_plan(session, previous.id)
        status = "updated"
    else:
        diff = PlanDiff()
        plan = Plan(title=parsed.title, year=parsed.year, created_at=now)
        status = "created"
    plan.organisation = parsed.organisation
    plan.issued = parsed.issued
    plan.source_name = source_name[:500]
    plan.source_sha256 = source_sha256
    if previous is None:
        session.add(plan)
        session.flush()
        plan = _load_plan(session, plan.id)
    _write_plan(
        session=session, plan=plan, parsed=parsed, matcher=matcher, unresolved=unresolved, now=now
    )
    seen: dict[str, Resolution] = {}
    for resolution in unresolved:
        seen.setdefault(resolution.written, resolution)
    record_event(
        session=session,
        event_type="duban.plan.imported",
        resource_id=f"duban.plan.{plan.id}",
        occurred_at=now,
        now=now,
        related_resources=[related("plan", plan.id, plan.title)],
        payload={
            "plan_id": plan.id,
            "status": status,
            "items": len(parsed.items),
            "added": len(diff.added),
            "removed": len(diff.removed),
            "changed": len(diff.changed),
            "unresolved_units": list(seen),
        },
    )
    return ImportOutcome(status=status, plan_id=plan.id, diff=diff, unresolved=list(seen.values()))


def list_plans(*, session: Session) -> list[Plan]:
    """Every stored plan, newest year first."""
    return list(session.scalars(select(Plan).order_by(Plan.year.desc(), Plan.id.desc())))


def get_plan(*, session: Session, plan_ref: int | str) -> Plan:
    """A plan by id or exact title (the newest if titles repeat), with sections, items,
    targets and phases loaded; raises `NotFoundError` when there is none."""
    ref = str(plan_ref).strip()
    if ref.isdigit():
        plan_id = session.scalar(select(Plan.id).where(Plan.id == int(ref)))
    else:
        plan_id = session.scalar(
            select(Plan.id).where(Plan.title == ref).order_by(Plan.year.desc(), Plan.id.desc())
        )
    if plan_id is None:
        raise NotFoundError(f"找不到计划：{ref}（可用 duban plan list 查看编号）")
    return _load_plan(session, plan_id)
