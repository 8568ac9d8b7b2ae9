"""Test rows for the check-in portal: one item with two targets and a department's check-in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.directory import Department
from models.plan import Item, Target
from models.supervision import Checkin
from tests.builders import BUILT_AT, make_department, make_plan

DUE = date(2021, 9, 30)


@dataclass
class CheckinRows:
    """What `make_checkin` built."""

    department: Department
    item: Item
    targets: list[Target]
    checkin: Checkin


def make_checkin(
    session: Session, *, due: date = DUE, title: str = "搭建高水平科技开放交流平台"
) -> CheckinRows:
    """A lead department's pending progress check-in on a two-target item (flushed only)."""
    department = make_department(session, f"学会部{uuid.uuid4().hex[:6]}")
    built = make_plan(session, items=[(title, [department], [])])
    item = built.items[0]
    item.body = "举办学术交流活动，<b>重点</b>打造品牌。"
    targets = [
        Target(
            item_id=item.id,
            position=1,
            text="不少于200场次",
            comparator="ge",
            value=200,
            unit="场次",
        ),
        Target(item_id=item.id, position=2, text="5家以上", comparator="ge", value=5, unit="家"),
    ]
    session.add_all(targets)
    checkin = Checkin(
        item_id=item.id,
        department_id=department.id,
        phase_key="implement",
        seq=1,
        kind="progress",
        due_date=due,
        original_due_date=due,
        created_at=BUILT_AT,
    )
    session.add(checkin)
    session.flush()
    return CheckinRows(department=department, item=item, targets=targets, checkin=checkin)


@contextmanager
def rolled_back_sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions joined (by savepoints) to an outer transaction rolled back at the end: the
    app's commits are real inside the block and leave nothing behind.
    """
    with engine.connect() as connection:
        outer = connection.begin()
        factory = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield factory
        finally:
            outer.rollback()
