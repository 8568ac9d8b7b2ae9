"""The supervisor's choices for unresolved units: map a name to a department, create the
department, or leave the item flagged (repository functions; the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.department_match import DepartmentMatcher, simplified
from models.directory import Department, DepartmentAlias
from models.errors import InputError, NotFoundError
from models.plan import Item
from models.supervision import Assignment
from tasks.assignment import assign_item
from tasks.plan_import import matcher_from_session


def map_units(*, session: Session, mapping: Mapping[str, str]) -> list[str]:
    """Record each written unit name as an alias of a department (given by name or alias).

    Returns the aliases added. Raises `NotFoundError` for an unknown department and
    `InputError` when the name already belongs to another department.
    """
    matcher = matcher_from_session(session=session)
    added: list[str] = []
    for written, target in mapping.items():
        name = matcher.resolve(target).department
        if name is None:
            raise NotFoundError(f"部门名录中没有“{target}”，无法把“{written}”对应过去。")
        current = matcher.resolve(written).department
        if current == name:
            continue
        if current is not None and matcher.resolve(written).how in {"exact", "alias"}:
            raise InputError(f"“{written}”已经是部门“{current}”的名称或别名。")
        department = session.scalars(select(Department).where(Department.name == name)).one()
        session.add(DepartmentAlias(department_id=department.id, alias=written))
        added.append(written)
    session.flush()
    return added


def create_departments(*, session: Session, names: Iterable[str], now: datetime) -> list[str]:
    """Create a department for each unit name: simplified form as its name, the written
    form as an alias when it differs. Returns the names created (existing ones skipped)."""
    matcher = matcher_from_session(session=session)
    created: list[str] = []
    for written in dict.fromkeys(names):
        if matcher.resolve(written).department is not None:
            continue
        name = simplified(written)
        if name in created:
            continue
        aliases = [DepartmentAlias(alias=written)] if written != name else []
        session.add(Department(name=name, created_at=now, aliases=aliases))
        created.append(name)
    session.flush()
    return created


def resolve_flagged(
    *, session: Session, plan_id: int, now: datetime, matcher: DepartmentMatcher | None = None
) -> int:
    """Assign the flagged units of a plan's items that the directory now resolves.

    Uses `tasks.assignment.assign_item` (so a supervised item's notice follows on its next
    reconcile); updates `unresolved_units`. Returns how many units were resolved.
    """
    matcher = matcher or matcher_from_session(session=session)
    ids = {dept.name: dept.id for dept in session.scalars(select(Department))}
    resolved = 0
    items = session.scalars(select(Item).where(Item.plan_id == plan_id).order_by(Item.position))
    for item in items:
        if not item.unresolved_units:
            continue
        still: list[object] = []
        for entry in item.unresolved_units:
            if not isinstance(entry, dict):
                continue
            name = matcher.resolve(str(entry.get("name", ""))).department
            if name is None:
                still.append(entry)
                continue
            role = "support" if entry.get("role") == "support" else "lead"
            open_row = session.scalar(
                select(Assignment.id).where(
                    Assignment.item_id == item.id,
                    Assignment.department_id == ids[name],
                    Assignment.ended_at.is_(None),
                )
            )
            if open_row is None:
                assign_item(
                    session=session,
                    item_id=item.id,
                    department_id=ids[name],
                    role=role,
                    now=now,
                    reason=f"计划单位“{entry.get('name')}”对应部门",
                )
            resolved += 1
        item.unresolved_units = still
    session.flush()
    return resolved
