"""The closing numbers of a demo run, read back from the database and the mail store."""

from __future__ import annotations

import mailbox
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import clock
from models.directory import Department
from models.plan import Item
from models.supervision import Checkin, Notice

COLOUR_NAMES = {"green": "绿灯", "amber": "黄灯", "red": "红灯", "none": "未评定"}
KIND_NAMES = {
    "assignment": "交办通知",
    "request": "报送提醒",
    "reminder": "到期提醒",
    "escalation": "催办/督办",
    "receipt": "回执",
    "report": "通报",
}


@dataclass(frozen=True)
class DepartmentLine:
    """One department's check-ins due by the end date and how many came on time."""

    name: str
    due: int
    on_time: int
    late: int
    missing: int

    @property
    def on_time_rate(self) -> float | None:
        """On-time share of the check-ins due, or None when none was due."""
        return self.on_time / self.due if self.due else None


@dataclass(frozen=True)
class DemoSummary:
    """Items by colour, notices by kind and level, and departments' punctuality."""

    colours: dict[str, int]
    notices: dict[tuple[str, int], int]
    departments: list[DepartmentLine]
    mail_count: int


def notice_counts(*, session: Session, plan_id: int) -> dict[tuple[str, int], int]:
    """Notices of the plan so far by (kind, level), in one query."""
    return {
        (kind, level): count
        for kind, level, count in session.execute(
            select(Notice.kind, Notice.level, func.count())
            .join(Item, Item.id == Notice.item_id)
            .where(Item.plan_id == plan_id)
            .group_by(Notice.kind, Notice.level)
        ).all()
    }


def summarise(*, session: Session, plan_id: int, until: date, mail_store: Path) -> DemoSummary:
    """Count what the run left: a check-in is on time when first submitted by its due date."""
    colour_query = (
        select(Item.colour, func.count()).where(Item.plan_id == plan_id).group_by(Item.colour)
    )
    colours: dict[str, int] = {row[0]: row[1] for row in session.execute(colour_query)}
    notices = notice_counts(session=session, plan_id=plan_id)
    rows = session.execute(
        select(Department.name, Checkin.due_date, Checkin.submitted_at)
        .join(Department, Department.id == Checkin.department_id)
        .join(Item, Item.id == Checkin.item_id)
        .where(Item.plan_id == plan_id, Checkin.status != "cancelled", Checkin.due_date <= until)
    ).all()
    tally: dict[str, Counter[str]] = {}
    for name, due_date, submitted_at in rows:
        counter = tally.setdefault(name, Counter())
        counter["due"] += 1
        if submitted_at is None:
            counter["missing"] += 1
        elif clock.local_date(submitted_at) <= due_date:
            counter["on_time"] += 1
        else:
            counter["late"] += 1
    departments = [
        DepartmentLine(name, c["due"], c["on_time"], c["late"], c["missing"])
        for name, c in sorted(tally.items())
    ]
    mail_count = len(list(mailbox.Maildir(mail_store, create=True).iterkeys()))
    return DemoSummary(
        colours=colours, notices=notices, departments=departments, mail_count=mail_count
    )
