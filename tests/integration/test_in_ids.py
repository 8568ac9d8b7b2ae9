"""`tasks.sql.in_ids` selects exactly the rows `IN` selects, on SQLite and PostgreSQL:
unsorted and repeated ids, ids outside the table, one id and none."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Department
from tasks.sql import in_ids
from tests.builders import make_department


@pytest.mark.parametrize(
    ("positions", "outside"),
    [((3, 0, 3, 5), ()), ((2,), ()), ((0, 1, 2, 3, 4, 5), (1000, -5)), ((), ())],
    ids=["unsorted-repeated", "one", "outside", "none"],
)
def test_the_same_rows_as_in(
    session: Session, positions: tuple[int, ...], outside: tuple[int, ...]
) -> None:
    ids = [make_department(session).id for _ in range(6)]
    session.flush()
    wanted = [ids[n] for n in positions] + [ids[-1] + n for n in outside]
    plain = session.scalars(select(Department.id).where(Department.id.in_(wanted))).all()
    ranged = session.scalars(select(Department.id).where(in_ids(Department.id, wanted))).all()
    assert sorted(ranged) == sorted(plain)
    assert {ids[n] for n in positions} <= set(ranged)


def test_a_cached_statement_binds_each_executions_ids(session: Session) -> None:
    """The same statement shape with other ids (a compiled-cache hit) selects the new ids."""
    ids = [make_department(session).id for _ in range(6)]
    session.flush()
    for wanted in ([ids[0], ids[2]], [ids[1], ids[5]], [ids[3], ids[4]]):
        selected = session.scalars(select(Department.id).where(in_ids(Department.id, wanted)))
        assert sorted(selected) == wanted
