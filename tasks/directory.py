"""Storing the department directory (repository functions; the caller owns the transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.directory import Department, DepartmentAlias
from models.directory_file import DirectoryFile
from models.robots import robot_rows


@dataclass(frozen=True)
class DirectoryImportSummary:
    """What an import did: department names created and updated."""

    created: list[str]
    updated: list[str]


def upsert_directory(
    *, session: Session, directory: DirectoryFile, now: datetime
) -> DirectoryImportSummary:
    """Create or update every department of `directory` by canonical name; aliases are replaced.

    Departments not in the file are kept (they may be referenced by assignments). Does not
    commit. Raises nothing for valid input: the file was validated on load.
    """
    existing = {
        dept.name: dept
        for dept in session.scalars(select(Department).options(selectinload(Department.aliases)))
    }
    created: list[str] = []
    updated: list[str] = []
    new_aliases = {alias for entry in directory.departments for alias in entry.aliases}
    for dept in existing.values():
        for alias in list(dept.aliases):
            if alias.alias in new_aliases:
                dept.aliases.remove(alias)
    session.flush()
    for entry in directory.departments:
        found = existing.get(entry.name)
        if found is None:
            dept = Department(name=entry.name, created_at=now, aliases=[])
            session.add(dept)
            created.append(entry.name)
        else:
            dept = found
            updated.append(entry.name)
        dept.contact_name = entry.contact.name if entry.contact else ""
        dept.contact_emails = [person.email for person in entry.all_contacts()]
        dept.leader_name = entry.leader.name if entry.leader else ""
        dept.leader_email = entry.leader.email if entry.leader else ""
        dept.head_name = entry.head.name if entry.head else ""
        dept.head_email = entry.head.email if entry.head else ""
        dept.is_supervision_office = entry.supervision_office
        dept.robots = robot_rows(
            department=[
                *entry.robots,
                *(robot for person in entry.all_contacts() for robot in person.robots),
            ],
            leader=entry.leader.robots if entry.leader else (),
            head=entry.head.robots if entry.head else (),
        )
        dept.aliases = [DepartmentAlias(alias=alias) for alias in dict.fromkeys(entry.aliases)]
    session.flush()
    return DirectoryImportSummary(created=created, updated=updated)


def list_departments(*, session: Session) -> list[Department]:
    """Every department with its aliases loaded, by name."""
    return list(
        session.scalars(
            select(Department).options(selectinload(Department.aliases)).order_by(Department.name)
        )
    )
