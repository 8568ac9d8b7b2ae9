"""Engines, sessions and schema migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
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

    Creates nothing: a SQLite file's directory is created by `upgrade` (`duban db upgrade`,
    `duban init`), so a mistyped path is reported (`database_problem`) instead of silently
    becoming a new, empty database. Raises `DatabaseError` on a malformed URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"数据库地址格式不正确：{url!r}。请检查 DUBAN_DATABASE_URL。") from exc
    if parsed.get_backend_name() == "sqlite":
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
        raise database_problem(exc, engine.url) from exc


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def database_problem(exc: OperationalError, url: URL | str) -> DatabaseError:
    """One Chinese line naming the real cause of a database error and how to fix it.

    On SQLite it tells a missing directory (a mistyped path: check the setting, or create
    the database with `duban db upgrade`), a read-only file or directory (permissions, or
    point `DUBAN_DATA_DIR` at a writable directory), a locked database and a full disk
    apart; on PostgreSQL it says the server is unreachable or refused the connection.
    """
    url = make_url(url)
    where = url.render_as_string(hide_password=True)
    detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    path = _sqlite_file(url)
    if path is None:
        return DatabaseError(
            f"无法连接数据库 {where}：{detail}。请检查数据库服务是否已启动、"
            "DUBAN_DATABASE_URL 中的地址、端口、用户和密码是否正确。"
        )
    folder = path.parent
    lowered = detail.lower()
    if not folder.is_dir():
        return DatabaseError(
            f"SQLite 数据库所在目录 {folder} 不存在（数据库 {path}）。请检查 DUBAN_DATA_DIR 或 "
            "DUBAN_DATABASE_URL 中的路径是否写错；如确实要在此新建数据库，请运行：duban db upgrade"
        )
    if "readonly" in lowered or "read-only" in lowered or not os.access(folder, os.W_OK):
        return DatabaseError(
            f"SQLite 数据库 {path} 或其所在目录 {folder} 是只读的（{detail}）。SQLite 需要写入"
            "该文件及同目录下的 -wal/-shm 文件：请修改文件和目录的权限，"
            "或把 DUBAN_DATA_DIR 指向一个可写的目录。"
        )
    if "locked" in lowered or "busy" in lowered:
        return DatabaseError(
            f"SQLite 数据库 {path} 被其他进程锁定（{detail}）。请等待其他 duban 命令结束后重试。"
        )
    if "full" in lowered or "disk i/o" in lowered:
        return DatabaseError(
            f"写入 SQLite 数据库 {path} 失败（{detail}）：请检查磁盘空间和磁盘是否可用。"
        )
    if "unable to open" in lowered:
        return DatabaseError(
            f"无法打开 SQLite 数据库 {path}（{detail}）：请检查该路径是否为文件、"
            "当前用户是否有读写权限。"
        )
    return DatabaseError(f"SQLite 数据库 {path} 出错：{detail}。")


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Apply every pending migration; returns (revision before, revision after).

    Creates the directory of a SQLite file first (this is the command that creates a
    database).
    """
    path = _sqlite_file(engine.url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"无法创建数据库目录 {path.parent}：{exc.strerror}。"
                "请检查路径和权限，或把 DUBAN_DATA_DIR 指向一个可写的目录。"
            ) from exc
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
