"""The form runs a fixed, small number of SQL statements per request (issue 16, load).

Counts the data statements (SELECT, INSERT, UPDATE) the database receives while the form is
opened and answered over HTTP, on SQLite and PostgreSQL: the page is three reads however
many versions were sent before, and an answer stores its version, event and receipt in the
same number of statements the second time and the fifth (the first also marks the
check-in submitted).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select

from models.outbox import OutboxMessage
from tests.integration.test_portal import Portal, answer, portal, rows, sessions

__all__ = ["portal", "rows", "sessions"]  # the fixtures of test_portal, used here

DATA_STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE")
# The check-in with its item, plan, department, phase and targets; versions; extension
# requests (leader instructions and evidence files are read only where the first two
# statements say there are some).
FIRST_PAGE_STATEMENTS = 3
PAGE_STATEMENTS = 3
FIRST_ANSWER_STATEMENTS = 10  # the first one also marks the check-in submitted
ANSWER_STATEMENTS = 9


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """The data statements sent through `engine` while the block runs (savepoints of the
    test's rolled-back transaction are not counted)."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        verb = str(args[2]).split()[0].upper()
        if verb in DATA_STATEMENTS:
            statements.append(verb)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_page_and_answer_statements_stay_fixed(
    portal: Portal, migrated_engine: Engine
) -> None:
    url = portal.url()
    pages: list[int] = []
    answers: list[list[str]] = []
    async with portal.client() as client:
        for version in range(1, 6):
            with counting(migrated_engine) as page_statements:
                page = await client.get(url)
            assert page.status_code == 200
            pages.append(len(page_statements))
            data = answer(portal, page.text, narrative=f"第{version}版进展")
            with counting(migrated_engine) as answer_statements:
                reply = await client.post(url, data=data)
            assert reply.status_code == 200 and f"第{version}版" in reply.text
            answers.append(answer_statements)
    assert pages == [FIRST_PAGE_STATEMENTS] + [PAGE_STATEMENTS] * 4
    assert [len(statements) for statements in answers] == [FIRST_ANSWER_STATEMENTS] + [
        ANSWER_STATEMENTS
    ] * 4
    # what an answer writes: the version, its event and its receipt; the first one also
    # marks the check-in submitted
    assert [statements.count("INSERT") for statements in answers] == [3] * 5
    assert [statements.count("UPDATE") for statements in answers] == [1, 0, 0, 0, 0]
    with portal.sessions() as session:
        receipts = session.scalars(
            select(OutboxMessage.subject).where(OutboxMessage.kind == "receipt")
        ).all()
    assert len(receipts) == 5 and all("回执" in subject for subject in receipts)
