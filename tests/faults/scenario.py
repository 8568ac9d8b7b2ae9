"""A committed plan for the fault tests and a supervision pass run the way the batch flow runs it.

`build_plan` writes a supervised plan (items with one lead and two support departments, all
reporting) into a real database and commits; `run_pass` reconciles every item at a day in
chunks, one transaction per chunk, as `flows.supervise` does in batch mode.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.calendar import WorkCalendar
from models.clock import resolve
from models.db import transaction
from models.plan import Item
from models.policy import SupervisionPolicy, default_policy
from tasks.assignment import start_supervision
from tasks.reconcile import reconcile_items
from tests.builders import make_department, make_plan

CALENDAR = WorkCalendar()
POLICY: SupervisionPolicy = default_policy().model_copy(update={"support_departments_report": True})
STARTED = date(2021, 5, 24)
DAY_REQUESTS = date(2021, 6, 23)
DAY_ESCALATION = date(2021, 7, 1)
DAY_LEVEL_TWO = date(2021, 7, 5)
CHUNK = 10


def at(day: date) -> datetime:
    """The aware moment a pass on `day` runs at (local midnight, as the CLI resolves a date)."""
    return resolve(day)


def build_plan(sessions: sessionmaker[Session], *, items: int = 30, departments: int = 6) -> int:
    """Commit a plan of `items` items supervised from `STARTED`; returns its id."""
    with transaction(sessions) as session:
        make_department(session, office=True)
        depts = [make_department(session) for _ in range(departments)]
        entries = [
            (
                f"故障测试任务{n}",
                [depts[n % departments]],
                [depts[(n + 1) % departments], depts[(n + 2) % departments]],
            )
            for n in range(items)
        ]
        built = make_plan(session, items=entries)
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=at(STARTED),
            policy=POLICY,
            calendar=CALENDAR,
        )
        return built.plan.id


def item_ids(sessions: sessionmaker[Session], plan_id: int) -> list[int]:
    """The plan's item ids, ascending."""
    with sessions() as session:
        return sorted(session.scalars(select(Item.id).where(Item.plan_id == plan_id)))


def run_pass(
    sessions: sessionmaker[Session],
    plan_id: int,
    day: date,
    *,
    chunk: int = CHUNK,
    reverse: bool = False,
) -> int:
    """Reconcile every item of the plan at `day`, `chunk` items per transaction (the last
    chunk first if `reverse`). Returns the number of new notices. A failure leaves earlier
    chunks committed.
    """
    ids = item_ids(sessions, plan_id)
    new = 0
    starts = list(range(0, len(ids), chunk))
    for start in reversed(starts) if reverse else starts:
        with transaction(sessions) as session:
            results = reconcile_items(
                session=session,
                plan_id=plan_id,
                item_ids=ids[start : start + chunk],
                as_of=at(day),
                policy=POLICY,
                calendar=CALENDAR,
            )
        new += sum(len(result.notices) for result in results)
    return new
