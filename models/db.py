"""Engines, sessions and schema migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.errors import DubanError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class DatabaseError(DubanError):
    """A database problem a user can fix; the message says what to do (in Chinese)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite begins transactions lazily and treats SAVEPOINT as the start of one, so a
    # RELEASE could commit the outer transaction; SQLAlchemy emits BEGIN itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
    # transaction that reads and then writes fails at once when another writer got in first.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and working
    SAVEPOINTs (SQLAlchemy, not pysqlite, begins its transactions, as BEGIN IMMEDIATE).

    On SQLite every transaction, a reading one too, holds the write lock until it ends: keep
    sessions short and never hold one open while waiting on work that writes elsewhere.

    Creates the parent directory of a SQLite file. Raises `DatabaseError` on a malformed URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"数据库地址格式不正确：{url!r}。请检查 DUBAN_DATABASE_URL。") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to `engine`; objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit when the block ends normally, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that runs duban's migrations on `engine`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    """The newest migration revision shipped with this version of duban."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at, or None for an empty database.

    Raises `DatabaseError` with one clear line when the database cannot be reached.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(
            f"无法连接数据库 {engine.url.render_as_string(hide_password=True)}："
            f"{str(exc.orig).strip().splitlines()[0]}。请检查数据库是否已启动、地址是否正确。"
        ) from exc


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def ensure_migrated(engine: Engine) -> None:
    """Raise `DatabaseError` unless the database is at the newest migration."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "尚未初始化" if current is None else f"处于旧版本 {current}"
        raise DatabaseError(f"数据库{state}（需要 {head}）。请先运行：duban db upgrade")
