"""Storing a parsed plan (repository functions; the caller owns the transaction).

`import_plan` is idempotent by `Plan.source_sha256`; a changed version of a plan with the
same title and year yields a `PlanDiff` (see `tasks.plan_diff`) that is applied only with
`confirm=True`. Open Assignment rows are created for every unit resolved to a department;
an item without a resolved lead gets `needs_assignment` and its `unresolved_units`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from models.department_match import DepartmentMatcher, Resolution
from models.directory import Department, DepartmentAlias
from models.errors import InputError, NotFoundError
from models.plan import Item, Phase, Plan, Section, Target
from models.plan_reader.phases import default_phases
from models.plan_schema import ParsedItem, ParsedPlan
from models.script import original_if_changed, plan_for_readers
from models.supervision import Assignment
from tasks.events import record_event, related
from tasks.plan_diff import ItemChange, PlanDiff, diff_plan, keyed, load_stored_plan, resolve_item

__all__ = [
    "ImportOutcome",
    "ItemChange",
    "PlanDiff",
    "digest_bytes",
    "get_plan",
    "import_plan",
    "list_plans",
    "matcher_from_session",
    "unresolved_units",
]

_CHUNK = 500


def digest_bytes(data: bytes) -> str:
    """SHA-256 hex digest of a source document's bytes (the idempotency key)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImportOutcome:
    """What `import_plan` did: `created`, `unchanged`, `updated` or `pending` (diff not applied).

    `title` is the plan's title as stored and shown (in the readers' script).
    """

    status: str
    plan_id: int
    title: str = ""
    diff: PlanDiff = field(default_factory=PlanDiff)
    unresolved: list[Resolution] = field(default_factory=list)


def matcher_from_session(*, session: Session) -> DepartmentMatcher:
    """A department matcher over the stored directory (names and aliases)."""
    aliases: dict[str, list[str]] = {}
    rows = session.execute(
        select(Department.name, DepartmentAlias.alias)
        .outerjoin(DepartmentAlias, DepartmentAlias.department_id == Department.id)
        .order_by(Department.name, DepartmentAlias.id)
    )
    for name, alias in rows:
        aliases.setdefault(name, []).extend([alias] if alias else [])
    return DepartmentMatcher.from_directory(aliases.items())


def unresolved_units(*, parsed: ParsedPlan, matcher: DepartmentMatcher) -> list[Resolution]:
    """Every unit name in `parsed` that `matcher` cannot resolve, once each, in order."""
    seen: dict[str, Resolution] = {}
    for item in parsed.items:
        for resolution in matcher.resolve_all([*item.lead, *item.support]):
            if resolution.department is None:
                seen.setdefault(resolution.written, resolution)
    return list(seen.values())


def _sync_sections(
    session: Session, plan: Plan, parsed: ParsedPlan, original: ParsedPlan
) -> dict[str, int]:
    existing = {section.number: section for section in plan.sections}
    for section in plan.sections:
        section.position = -section.id
    session.flush()
    ids: dict[str, int] = {}
    pairs = zip(parsed.sections, original.sections, strict=True)
    for position, (incoming, written) in enumerate(pairs, start=1):
        row = existing.pop(incoming.number, None)
        if row is None:
            row = Section(plan_id=plan.id, number=incoming.number, title=incoming.title)
            session.add(row)
        row.position = position
        row.title = incoming.title
        row.original_title = original_if_changed(written.title, incoming.title)
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


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _place_items(
    session: Session, plan: Plan, parsed: ParsedPlan, section_ids: dict[str, int]
) -> tuple[list[tuple[Item, ParsedItem]], list[int], list[int]]:
    """Match incoming items to stored rows; returns pairs, kept ids and removed ids."""
    by_id = {sid: number for number, sid in section_ids.items()}
    stored_items = list(plan.items)
    stored = dict(
        zip(
            keyed([(by_id.get(i.section_id or 0), i.number) for i in stored_items]),
            stored_items,
            strict=True,
        )
    )
    for stale in stored_items:
        stale.position = -stale.id
    if stored_items:
        session.flush()
    pairs: list[tuple[Item, ParsedItem]] = []
    kept: list[int] = []
    keys = keyed([(item.section, item.number) for item in parsed.items])
    for position, (key, incoming) in enumerate(zip(keys, parsed.items, strict=True), start=1):
        row = stored.pop(key) if key in stored else None
        if row is None:
            row = Item(plan_id=plan.id, number=incoming.number, title=incoming.title)
            session.add(row)
        else:
            kept.append(row.id)
        row.position = position
        row.number = incoming.number
        row.section_id = section_ids.get(incoming.section) if incoming.section else None
        pairs.append((row, incoming))
    return pairs, kept, [row.id for row in stored.values()]


def _write_plan(
    *,
    session: Session,
    plan: Plan,
    parsed: ParsedPlan,
    original: ParsedPlan,
    matcher: DepartmentMatcher,
    unresolved: list[Resolution],
    now: datetime,
    keep_phases: bool = False,
) -> None:
    departments = dict(session.execute(select(Department.name, Department.id)).tuples().all())
    section_ids = _sync_sections(session, plan, parsed, original)
    pairs, kept, removed = _place_items(session, plan, parsed, section_ids)
    wanted: dict[int, set[tuple[int, str]]] = {}
    roles_of: list[dict[str, list[str]]] = []
    for (row, incoming), written in zip(pairs, original.items, strict=True):
        roles, flagged = resolve_item(incoming, matcher, unresolved)
        row.title = incoming.title
        row.body = incoming.body
        row.original_title = original_if_changed(written.title, incoming.title)
        row.original_body = original_if_changed(written.body, incoming.body)
        row.line = incoming.line
        row.unresolved_units = flagged
        row.needs_assignment = not roles["lead"]
        row.deadline = incoming.deadline.model_dump(mode="json") if incoming.deadline else None
        row.milestones = [m.model_dump(mode="json") for m in incoming.milestones]
        row.criteria = incoming.criteria
        roles_of.append(roles)
    for chunk in _chunks(removed):
        session.execute(delete(Target).where(Target.item_id.in_(chunk)))
        session.execute(delete(Assignment).where(Assignment.item_id.in_(chunk)))
        session.execute(delete(Item).where(Item.id.in_(chunk)))
    for chunk in _chunks(kept):
        session.execute(delete(Target).where(Target.item_id.in_(chunk)))
    session.flush()
    open_rows: dict[int, list[Assignment]] = {}
    if kept:
        for assignment in session.scalars(
            select(Assignment)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.plan_id == plan.id, Assignment.ended_at.is_(None))
        ):
            open_rows.setdefault(assignment.item_id, []).append(assignment)
    targets: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    for (row, incoming), roles in zip(pairs, roles_of, strict=True):
        targets.extend(
            {
                "item_id": row.id,
                "position": position,
                "text": target.text,
                "comparator": target.comparator,
                "value": target.value,
                "unit": target.unit,
            }
            for position, target in enumerate(incoming.targets, start=1)
        )
        wanted[row.id] = {
            (departments[name], role) for role, names in roles.items() for name in names
        }
        have = set()
        for assignment in open_rows.get(row.id, []):
            have.add((assignment.department_id, assignment.role))
            if (assignment.department_id, assignment.role) not in wanted[row.id]:
                assignment.ended_at = now
                assignment.reason = "计划更新"
        assignments.extend(
            {
                "item_id": row.id,
                "department_id": departments[name],
                "role": role,
                "assigned_at": now,
                "ended_at": None,
                "reason": "计划导入",
            }
            for role, names in roles.items()
            for name in names
            if (departments[name], role) not in have
        )
    session.flush()
    if targets:
        session.execute(insert(Target), targets)
    if assignments:
        session.execute(insert(Assignment), assignments)
    if keep_phases:
        session.flush()
        return
    session.execute(delete(Phase).where(Phase.plan_id == plan.id))
    session.add_all(
        Phase(
            plan_id=plan.id,
            key=phase.key,
            name=phase.name,
            start_text=phase.start,
            end_text=phase.end,
            start_date=phase.start_date,
            end_date=phase.end_date,
        )
        for phase in parsed.phases
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
    keep_script: bool = False,
) -> ImportOutcome:
    """Store `parsed` in the caller's transaction (no commit); all-or-nothing with it.

    Readers see one script: unless `keep_script`, every text is stored in Simplified Chinese
    (`models.script.plan_for_readers`) and the document's own wording, where it differs, in
    the `original_*` columns.

    Same `source_sha256` as a stored plan: nothing changes (`unchanged`). Same title and year
    as a stored plan: the diff is returned (`pending`) and applied only with `confirm`
    (`updated`); a new version that names no organisation, issue date or phases (a
    task table such as `duban plan export`'s) keeps the stored ones. Otherwise the plan is
    created (`created`). Writes a `duban.plan.imported`
    event whenever it writes.
    """
    found = session.scalar(select(Plan.id).where(Plan.source_sha256 == source_sha256))
    if found is not None:
        return ImportOutcome(status="unchanged", plan_id=found)
    original = parsed
    parsed = parsed if keep_script else plan_for_readers(parsed)
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
        plan = load_stored_plan(session, previous.id)
        status = "updated"
    else:
        diff = PlanDiff()
        plan = Plan(title=parsed.title, year=parsed.year, created_at=now)
        status = "created"
    named_phases = parsed.phases != default_phases(parsed.year)
    keep_phases = previous is not None and not named_phases and bool(plan.phases)
    if previous is not None and not parsed.organisation:
        parsed = parsed.model_copy(update={"organisation": plan.organisation})
        original = original.model_copy(
            update={"organisation": plan.original_organisation or plan.organisation}
        )
    plan.organisation = parsed.organisation
    plan.original_title = original_if_changed(original.title, parsed.title)
    plan.original_organisation = original_if_changed(original.organisation, parsed.organisation)
    plan.issued = parsed.issued or (plan.issued if previous is not None else None)
    plan.document_number = parsed.document_number or (
        plan.document_number if previous is not None else None
    )
    plan.source_name = source_name[:500]
    plan.source_sha256 = source_sha256
    if previous is None:
        session.add(plan)
        session.flush()
        plan = load_stored_plan(session, plan.id)
    _write_plan(
        session=session,
        plan=plan,
        parsed=parsed,
        original=original,
        matcher=matcher,
        unresolved=unresolved,
        now=now,
        keep_phases=keep_phases,
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
    return ImportOutcome(
        status=status,
        plan_id=plan.id,
        title=plan.title,
        diff=diff,
        unresolved=list(seen.values()),
    )


def list_plans(*, session: Session) -> list[Plan]:
    """Every stored plan, newest year first."""
    return list(session.scalars(select(Plan).order_by(Plan.year.desc(), Plan.id.desc())))


def get_plan(*, session: Session, plan_ref: int | str | None, option: str = "--plan") -> Plan:
    """A plan by id or exact title, shown or original (the newest if titles repeat), with
    sections, items, targets and phases loaded; raises `NotFoundError` when there is none.

    `plan_ref` None means the only stored plan; with none stored, or several, it raises
    `NotFoundError` / `InputError` naming the plans and how to choose one (`option`).
    """
    if plan_ref is None:
        plans = session.execute(select(Plan.id, Plan.title, Plan.year).order_by(Plan.id)).all()
        if not plans:
            raise NotFoundError("还没有导入任何计划：请先运行 duban plan import 计划文件")
        if len(plans) > 1:
            listing = "；".join(f"{pid} 《{title}》（{year}年）" for pid, title, year in plans)
            raise InputError(f"共有 {len(plans)} 个计划，请用 {option} 指定编号：{listing}")
        return load_stored_plan(session, plans[0].id)
    ref = str(plan_ref).strip()
    if ref.isdigit():
        plan_id = session.scalar(select(Plan.id).where(Plan.id == int(ref)))
    else:
        plan_id = session.scalar(
            select(Plan.id)
            .where(or_(Plan.title == ref, Plan.original_title == ref))
            .order_by(Plan.year.desc(), Plan.id.desc())
        )
    if plan_id is None:
        raise NotFoundError(f"找不到计划：{ref}（可用 duban plan list 查看编号）")
    return load_stored_plan(session, plan_id)
