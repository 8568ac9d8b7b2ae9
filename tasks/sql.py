"""Set-based SQL shared by the tasks: Core inserts that skip conflicting rows, in one statement.

Core statements on the mapped tables, because the ORM's bulk path does per-row work that
dominates at province scale. The caller owns the transaction.

On PostgreSQL `insert_rows` binds a chunk of rows as ONE JSON text parameter
(`INSERT … SELECT … FROM jsonb_to_recordset(…)`): psycopg prepares (caches) only statements
with few parameters and dumps every value of a multi-row `VALUES` one by one, which cost
seconds per province pass; one text parameter is parsed by the server in one go. The
parameter goes untyped and is cast to `jsonb`, so the server parses the text once, on
binding it, and walks the parsed value: `json_to_recordset` parses its `json` argument again
(and `CAST(text AS JSON)` was parsed once more when folded at planning: 25 ms for the 8 MB of
a request day's chunk of emails). On SQLite the values go as positional parameters of
driver SQL, each column's bind processor run once per distinct value.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Integer,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    cast,
    column,
    false,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import dml as pg_dml
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.visitors import InternalTraversal

from models.base import Base
from models.outbox import DomainEvent

# Rows bound per `jsonb_to_recordset` statement (a few MB of JSON text at most).
JSON_INSERT_CHUNK = 5000
# Parameters per SQLite statement (SQLITE_MAX_VARIABLE_NUMBER is 32,766 since 3.32).
SQLITE_VARIABLES = 32000


class IdsIn(ColumnElement[bool]):
    """`column IN (ids)`, compiled per dialect: on PostgreSQL `column = ANY(:ids)` with the
    ids as ONE integer array parameter, elsewhere the expanding `IN (…)`.

    The same rows. A 500-id `IN` is 500 parameters that SQLAlchemy expands and psycopg
    rewrites (a statement that long is not in its query cache) and dumps one by one, ~3 ms
    of the process per statement; an array is one value. Both parameters are part of the
    statement's cache key, so a cached statement binds each execution's ids."""

    __visit_name__ = "ids_in"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy declares it a list)
        ("column", InternalTraversal.dp_clauseelement),
        ("expanding", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
    ]

    def __init__(
        self,
        column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
        ids: list[int],
    ) -> None:
        self.column = column
        self.expanding = bindparam(None, ids, type_=Integer(), expanding=True)
        self.array = bindparam(None, ids, type_=postgresql.ARRAY(Integer()))


@compiles(IdsIn)
def _ids_in(element: IdsIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.expanding), **kw)


@compiles(IdsIn, "postgresql")
def _ids_in_postgresql(element: IdsIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column == any_(element.array), **kw)


def in_ids(
    column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None], ids: Collection[int]
) -> ColumnElement[bool]:
    """`column IN (ids)` (`IdsIn`: one array parameter on PostgreSQL), with the redundant
    bound `column BETWEEN min(ids) AND max(ids)`.

    The same rows. Without statistics (autovacuum off, or tables just filled in bulk, as at
    the start of supervision) PostgreSQL estimates an `IN` list of 500 values to match nine
    rows in ten and scans the whole table, once per chunk of a pass: a pass then grows with
    the square of the plan. The range, estimated at 0.5 % without statistics and exact with
    them, lets it read the chunk's ids through the column's index. Empty `ids` match
    nothing."""
    if not ids:
        return false()
    values = sorted(set(ids))
    return IdsIn(column, values) & column.between(values[0], values[-1])


def insert_ignoring(session: Session, table: Table) -> pg_dml.Insert | sqlite_dml.Insert:
    """A Core `INSERT … ON CONFLICT DO NOTHING` on `table` in the session's dialect (no
    conflict target: any unique constraint)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def insert_rows(
    *,
    session: Session,
    table: Table,
    rows: Sequence[dict[str, object]],
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys) into `table`; returns the `returning` columns
    of the inserted rows (in no particular order on PostgreSQL).

    `ignore_conflicts` skips a row that violates any unique constraint
    (`ON CONFLICT DO NOTHING`). On PostgreSQL one `INSERT … SELECT … FROM
    jsonb_to_recordset(:rows)` per `JSON_INSERT_CHUNK` rows, the rows bound as one JSON text
    (`bound_json`), columns absent from the rows given their Python-side defaults as Core
    would; on SQLite driver SQL with the values bound by the columns' processors
    (`_insert_rows_sqlite`); elsewhere the dialect's multi-row `INSERT` with the rows as
    parameters. All store the same values (types bound by the columns' own types).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        return _insert_rows_sqlite(
            session=session,
            table=table,
            rows=rows,
            ignore_conflicts=ignore_conflicts,
            returning=returning,
        )
    if dialect.name != "postgresql":
        values = insert_ignoring(session, table) if ignore_conflicts else insert(table)
        if not returning:
            session.execute(values, list(rows))
            return []
        returned = values.returning(*(table.c[name] for name in returning))
        return [tuple(row) for row in session.execute(returned, list(rows))]
    defaults = python_defaults(table, rows[0])
    names = [*rows[0], *defaults]
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    source = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=NullType()), postgresql.JSONB))
        .table_valued(
            *(column(name, Text if name in json_columns else table.c[name].type) for name in names)
        )
        .render_derived(name="rows", with_types=True)
    )
    selected = select(
        *(
            cast(source.c[name], table.c[name].type) if name in json_columns else source.c[name]
            for name in names
        )
    )
    from_select = pg_insert(table).from_select(names, selected)
    plain_statement = from_select.on_conflict_do_nothing() if ignore_conflicts else from_select
    statement: pg_dml.Insert | ReturningInsert[Any] = plain_statement
    if returning:
        statement = plain_statement.returning(*(table.c[name] for name in returning))
    result: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), JSON_INSERT_CHUNK):
        batch = [row | defaults for row in rows[start : start + JSON_INSERT_CHUNK]]
        executed = session.execute(statement, {"rows": bound_json(table, names, batch, dialect)})
        if returning:
            result.extend(tuple(row) for row in executed)
    return result


def _insert_rows_sqlite(
    *,
    session: Session,
    table: Table,
    rows: Sequence[dict[str, object]],
    ignore_conflicts: bool,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """`insert_rows` on SQLite: the rows' values bound as the columns' own types bind them,
    sent as positional parameters of driver SQL (`Connection.exec_driver_sql`, so statement
    events still see it).

    The same rows as Core's multi-row `INSERT`, without its per-row work (a dict of bound
    parameters and a processor call per value: about half of a request day's insert time):
    each column's bind processor runs once per distinct value of a hashable column (the
    pass's rows share their timestamps, kinds and most texts) and once per row of a JSON
    column. Without `returning`, one `executemany` of a one-row statement; with it,
    multi-row `VALUES … RETURNING` statements of up to `SQLITE_VARIABLES` parameters, their
    returned values read through the columns' result processors.
    """
    dialect = session.get_bind().dialect
    defaults = python_defaults(table, rows[0])
    names = [*rows[0], *defaults]
    columns: list[list[object]] = []
    for name in names:
        column_type = table.c[name].type.dialect_impl(dialect)
        process = column_type.bind_processor(dialect)
        if name in defaults:
            value = defaults[name]
            columns.append([process(value) if process else value] * len(rows))
        elif process is None:
            columns.append([row[name] for row in rows])
        elif isinstance(table.c[name].type, JSON):
            columns.append([process(row[name]) for row in rows])
        else:
            seen: dict[object, object] = {}
            values: list[object] = []
            for row in rows:
                value = row[name]
                key = (type(value), value)
                if key not in seen:
                    seen[key] = process(value)
                values.append(seen[key])
            columns.append(values)
    bound = list(zip(*columns, strict=True))
    preparer = dialect.identifier_preparer
    head = (
        f"INSERT INTO {preparer.format_table(table)} "  # noqa: S608 - quoted names, bound values
        f"({', '.join(preparer.quote(name) for name in names)}) VALUES "
    )
    one_row = "(" + ", ".join("?" * len(names)) + ")"
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    connection = session.connection()
    if not returning:
        connection.exec_driver_sql(head + one_row + tail, bound)
        return []
    tail += " RETURNING " + ", ".join(preparer.quote(name) for name in returning)
    results = [
        table.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
        for name in returning
    ]
    per_statement = max(1, SQLITE_VARIABLES // len(names))
    returned: list[tuple[Any, ...]] = []
    for start in range(0, len(bound), per_statement):
        batch = bound[start : start + per_statement]
        sql_text = head + ", ".join([one_row] * len(batch)) + tail
        flat = tuple(value for row in batch for value in row)
        for stored in connection.exec_driver_sql(sql_text, flat):
            returned.append(
                tuple(
                    process(value) if process else value
                    for process, value in zip(results, stored, strict=True)
                )
            )
    return returned


def python_defaults(table: Table, given: dict[str, object]) -> dict[str, object]:
    """The Python-side scalar or callable defaults of `table`'s columns not in `given` (what a
    Core `INSERT` would bind for them); server defaults and autoincrement keys are left to
    the database."""
    defaults: dict[str, object] = {}
    for table_column in table.columns:
        default = table_column.default
        if table_column.name in given or default is None:
            continue
        if default.is_scalar:
            defaults[table_column.name] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            defaults[table_column.name] = default.arg(None)  # type: ignore[attr-defined]
        else:
            raise TypeError(f"{table.name}.{table_column.name}: unsupported default {default!r}")
    return defaults


def _json_value(value: object) -> str:
    """A date or (stored, naive-UTC) datetime as JSON: its ISO text."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value for a JSON recordset")


def bound_json(
    table: Table, names: Sequence[str], rows: Sequence[dict[str, object]], dialect: Dialect
) -> str:
    """`rows` as a JSON array of objects, each value as its column's type binds it: a
    `TypeDecorator` runs once per distinct value (enums checked, timestamps made naive UTC),
    a JSON column's value is its JSON text exactly as the dialect's serializer writes it
    (Python `None` as JSON `null` unless the column says `none_as_null`)."""
    serialize = getattr(dialect, "_json_serializer", None) or json.dumps
    converted: dict[str, dict[object, object]] = {}
    json_columns: list[tuple[str, bool]] = []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            json_columns.append((name, bool(column_type.none_as_null)))
        elif isinstance(column_type, TypeDecorator):
            converted[name] = {
                value: column_type.process_bind_param(value, dialect)
                for value in {row[name] for row in rows}
            }
    json_names = {name for name, _ in json_columns}
    plain = [name for name in names if name not in converted and name not in json_names]
    return json.dumps(
        [
            {name: row[name] for name in plain}
            | {name: values[row[name]] for name, values in converted.items()}
            | {
                name: None if row[name] is None and none_as_null else serialize(row[name])
                for name, none_as_null in json_columns
            }
            for row in rows
        ],
        default=_json_value,
        ensure_ascii=False,
    )


def insert_events(*, session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Insert domain event rows (`event_row`) in one Core statement (`insert_rows`)."""
    insert_rows(session=session, table=table_of(DomainEvent), rows=rows)


def table_of(entity: type[Base]) -> Table:
    """The Core table of an ORM class (Core statements skip the ORM's per-row work)."""
    table = entity.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{entity.__name__} is not mapped to a table")
    return table
