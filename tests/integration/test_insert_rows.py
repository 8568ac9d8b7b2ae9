"""`insert_rows` stores exactly what the dialect's multi-row Core `INSERT` stores.

On PostgreSQL it binds a chunk as one JSON recordset; on SQLite it binds the values through
the columns' own processors as positional parameters of driver SQL. Rows are written both
ways (different keys) and read back field by field: JSON columns (also their stored text on
PostgreSQL), UTC timestamps from other zones and with microseconds, enums given as members or
strings, NULLs, Python-side defaults, and `ON CONFLICT DO NOTHING RETURNING`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Table, Text, cast, event, insert, select
from sqlalchemy.orm import Session

from models.outbox import DomainEvent, OutboxMessage
from models.supervision import Notice
from models.vocabulary import Channel, NoticeKind
from tasks import sql
from tasks.sql import insert_ignoring, insert_rows, table_of

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 17, 9, 30, 15, 123456, tzinfo=BEIJING)


def _notice(key: str, n: int) -> dict[str, object]:
    return {
        "key": f"{key}-{n}",
        "kind": NoticeKind.REQUEST if n % 2 else NoticeKind.ASSIGNMENT.value,
        "level": n,
        "item_id": None,
        "department_id": None,
        "checkin_id": None,
        "recipients": [f"办公室{n}@例子.cn", {"名": "张三", "n": n, "x": None}] if n % 3 else [],
        "reason": '逾期 "引号" \\ 换行\n' if n % 2 else "",
        "decided_at": NOW + timedelta(minutes=n) if n % 2 else NOW.astimezone(UTC),
    }


def _message(key: str, n: int) -> dict[str, object]:
    return {
        "id": f"{key}{n:030d}",
        "key": f"{key}-{n}",
        "kind": "notice",
        "notice_id": None,
        "to_addrs": [f"a{n}@例子.cn"],
        "cc_addrs": [],
        "subject": f"督办提醒 {n}",
        "text_body": "您好：\n\t请于三日内反馈。😀",
        "html_body": "<p>您好</p>" if n % 2 else "",
        "attachments": [{"filename": "附件.pdf", "path": f"/x/{n}"}] if n % 2 else [],
        "next_attempt_at": NOW,
        "created_at": NOW,
        "channel": Channel.WECOM.value if n % 2 else Channel.EMAIL,
    }


def _event(key: str, n: int) -> dict[str, object]:
    return {
        "type": f"{key}.test",
        "resource_id": str(n),
        "related": [f"item:{n}"],
        "payload": {"说明": "中文", "n": n, "nested": {"list": [1, 2.5, None, True]}},
        "occurred_at": NOW,
        "created_at": NOW + timedelta(seconds=n),
    }


CASES = [
    (Notice, "key", _notice),
    (OutboxMessage, "key", _message),
    (DomainEvent, "type", _event),
]


def _stored(session: Session, table: Table, key_column: str, key: str) -> list[dict[str, Any]]:
    """Rows of `key` without ids and keys, in key order; on PostgreSQL JSON columns also as
    their stored text."""
    skip = {"id", key_column}
    columns = [column for column in table.columns if column.name not in skip]
    texts = []
    if session.get_bind().dialect.name == "postgresql":
        texts = [
            cast(column, Text).label(f"{column.name}_text")
            for column in columns
            if isinstance(column.type, JSON)
        ]
    key_of = table.c[key_column]
    order = table.c["resource_id"] if key_column == "type" else key_of
    query = select(*columns, *texts).where(key_of.like(f"{key}%")).order_by(order)
    return [dict(row._mapping) for row in session.execute(query)]


@pytest.mark.parametrize(("entity", "key_column", "build"), CASES)
def test_insert_rows_stores_what_core_insert_stores(
    session: Session, entity: Any, key_column: str, build: Any
) -> None:
    table = table_of(entity)
    count = 7
    session.execute(insert(table), [build("old", n) for n in range(count)])
    insert_rows(session=session, table=table, rows=[build("new", n) for n in range(count)])
    old = _stored(session, table, key_column, "old")
    new = _stored(session, table, key_column, "new")
    assert len(old) == count
    for old_row, new_row in zip(old, new, strict=True):
        for name, value in old_row.items():
            assert new_row[name] == value, name
            assert type(new_row[name]) is type(value), name


@pytest.mark.parametrize("chunk", [2, 5000])
def test_ignored_conflicts_return_only_inserted_rows(
    session: Session, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(sql, "JSON_INSERT_CHUNK", chunk)
    # On SQLite, one row per statement (too few parameters for two) or all five in one.
    monkeypatch.setattr(sql, "SQLITE_VARIABLES", 1 if chunk == 2 else sql.SQLITE_VARIABLES)
    notices = table_of(Notice)
    session.execute(insert_ignoring(session, notices), [_notice("dup", 1), _notice("dup", 3)])
    statements: list[str] = []
    connection = session.connection()

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(connection, "before_cursor_execute", record)
    try:
        returned = insert_rows(
            session=session,
            table=notices,
            rows=[_notice("dup", n) for n in range(5)],
            ignore_conflicts=True,
            returning=("key", "level"),
        )
    finally:
        event.remove(connection, "before_cursor_execute", record)
    if session.get_bind().dialect.name == "postgresql":
        assert len(statements) == -(-5 // chunk)
        assert all("jsonb_to_recordset" in statement for statement in statements)
    else:
        assert len(statements) == (5 if chunk == 2 else 1)
    assert sorted(returned) == [("dup-0", 0), ("dup-2", 2), ("dup-4", 4)]
    stored = session.scalars(select(Notice).where(Notice.key.like("dup-%"))).all()
    assert sorted(notice.level for notice in stored) == [0, 1, 2, 3, 4]
    assert all(notice.decided_at.tzinfo is UTC for notice in stored)


def test_no_rows_run_no_statement(session: Session) -> None:
    assert insert_rows(session=session, table=table_of(Notice), rows=[], returning=("id",)) == []
