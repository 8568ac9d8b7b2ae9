"""Set-based SQL shared by the tasks: Core inserts that skip conflicting rows, in one statement.

Core statements on the mapped tables, because the ORM's bulk path does per-row work that
dominates at province scale. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.base import Base
from models.outbox import DomainEvent


def insert_ignoring(session: Session, table: Table) -> pg_dml.Insert | sqlite_dml.Insert:
    """A Core `INSERT … ON CONFLICT DO NOTHING` on `table` in the session's dialect (no
    conflict target: any unique constraint)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def insert_events(*, session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Insert domain event rows (`event_row`) in one Core statement."""
    if rows:
        session.execute(insert(table_of(DomainEvent)), list(rows))


def table_of(entity: type[Base]) -> Table:
    """The Core table of an ORM class (Core statements skip the ORM's per-row work)."""
    table = entity.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{entity.__name__} is not mapped to a table")
    return table
