"""Migrations and the department directory, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db import (
    DatabaseError,
    current_revision,
    ensure_migrated,
    head_revision,
    make_engine,
    make_sessionmaker,
)
from models.directory import Department
from models.directory_file import load_directory_file
from models.supervision import Notice
from tasks.directory import list_departments, upsert_directory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2021, 5, 24, 1, 0, tzinfo=UTC)


def test_migrations_reach_head_and_create_every_table(migrated_engine: Engine) -> None:
    assert current_revision(migrated_engine) == head_revision()
    tables = set(inspect(migrated_engine).get_table_names())
    assert {"plan", "item", "checkin", "submission", "notice", "outbox_message"} <= tables
    ensure_migrated(migrated_engine)


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseError, match="duban db upgrade"):
        ensure_migrated(engine)


def test_unreachable_database_gives_one_clear_line() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(DatabaseError, match="无法连接数据库") as info:
        current_revision(engine)
    assert "\n" not in str(info.value)


def test_directory_import_is_idempotent(session: Session) -> None:
    directory = load_directory_file(EXAMPLES / "departments.yaml")
    first = upsert_directory(session=session, directory=directory, now=NOW)
    second = upsert_directory(session=session, directory=directory, now=NOW)
    assert len(first.created) == 6 and not first.updated
    assert not second.created and len(second.updated) == 6
    departments = list_departments(session=session)
    assert [d.name for d in departments].count("学会部") == 1
    xuehui = next(d for d in departments if d.name == "学会部")
    assert [a.alias for a in xuehui.aliases] == ["學會部"]
    assert xuehui.leader_email == "liu.weidong@example.org"


def test_timestamps_come_back_aware_utc(session: Session) -> None:
    session.add(Department(name="测试部", created_at=NOW))
    session.flush()
    session.expire_all()
    stored = session.scalars(select(Department).where(Department.name == "测试部")).one()
    assert stored.created_at == NOW and stored.created_at.tzinfo is not None


def test_notice_business_key_is_unique(session: Session) -> None:
    session.add(Notice(key="checkin:1:escalation:1", kind="escalation", level=1, decided_at=NOW))
    session.flush()
    session.add(Notice(key="checkin:1:escalation:1", kind="escalation", level=1, decided_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()


def test_a_released_savepoint_does_not_commit_the_outer_transaction(
    migrated_engine: Engine,
) -> None:
    sessions = make_sessionmaker(migrated_engine)
    with sessions() as session, session.begin():
        with session.begin_nested():
            session.add(Notice(key="savepoint-probe", kind="request", decided_at=NOW))
        session.rollback()
    with sessions() as session:
        assert (
            session.scalars(select(Notice).where(Notice.key == "savepoint-probe")).first() is None
        )
