"""The form as `duban portal` runs it under load (issue 16): over an engine, not a test
transaction, on SQLite and PostgreSQL (a database of the module's own, rows committed).

Page reads on PostgreSQL run without a transaction (autocommit), so a page is three
statements and no BEGIN/ROLLBACK round trips; answers still commit in one transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine, event, func, select

from models.db import make_sessionmaker, transaction
from models.supervision import Submission
from portal.app import reading_sessions
from tests.integration.test_portal import Portal, answer
from tests.portal_rows import make_checkin


async def test_pages_and_answers_over_an_engine(own_migrated_engine: Engine) -> None:
    sessions = make_sessionmaker(own_migrated_engine)
    with transaction(sessions) as session:
        rows = make_checkin(session)
    portal = Portal(sessions=sessions, rows=rows)  # the app over the engine's own sessions
    statements: list[str] = []

    def count(*args: object) -> None:
        verb = str(args[2]).split()[0].upper()
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK"}:
            statements.append(verb)

    async with portal.client() as client:
        for version in (1, 2):
            event.listen(own_migrated_engine, "before_cursor_execute", count)
            try:
                page = await client.get(portal.url())
            finally:
                event.remove(own_migrated_engine, "before_cursor_execute", count)
            assert page.status_code == 200
            assert statements.count("SELECT") == 3, statements
            statements.clear()
            data = answer(portal, page.text, narrative=f"第{version}版进展")
            reply = await client.post(portal.url(), data=data)
            assert reply.status_code == 200 and f"第{version}版" in reply.text
        page = await client.get(portal.url())
    assert "第2版进展" in page.text  # the autocommit read sees the committed answer
    with sessions() as session:
        stored = session.scalar(
            select(func.count()).where(Submission.checkin_id == rows.checkin.id)
        )
    assert stored == 2


def test_page_reads_skip_the_transaction_only_on_postgresql(own_migrated_engine: Engine) -> None:
    sessions = make_sessionmaker(own_migrated_engine)
    with reading_sessions(sessions)() as session:
        dbapi_connection = session.connection().connection.dbapi_connection
        autocommit = getattr(dbapi_connection, "autocommit", None)
    if own_migrated_engine.dialect.name == "postgresql":
        assert autocommit is True  # psycopg sends no BEGIN
    else:
        assert reading_sessions(sessions) is sessions  # SQLite keeps BEGIN IMMEDIATE
