"""The closing numbers of a demo run, read back from the database and the mail store."""

from __future__ import annotations

import mailbox
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import clock
from models.calendar import default_calendar
from models.directory import Department
from models.orders import SupervisionOrder
from models.plan import Item, Plan
from models.supervision import Checkin, Notice
from models.vocabulary import ItemProgress
from tasks.scoring import department_scores

COLOUR_NAMES = {"green": "绿灯", "amber": "黄灯", "red": "红灯", "none": "未评定"}
KIND_NAMES = {
    "assignment": "交办通知",
    "request": "报送提醒",
    "reminder": "到期提醒",
    "escalation": "催办/督办",
    "receipt": "回执",
    "report": "通报",
}
ORDER_COLOURS = {"blue": "蓝", "yellow": "黄", "red": "红"}


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
    notes: tuple[str, ...] = ()


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


def summarise(
    *,
    session: Session,
    plan_id: int,
    until: date,
    mail_store: Path,
    second_plan_id: int | None = None,
) -> DemoSummary:
    """Count what the run left: a check-in is on time when first submitted by its due date.

    Colours, notices and punctuality are the first plan's; `notes` describe the second plan
    (`second_plan_lines`) and the 督办单 issued in both."""
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
    notes = [] if not second_plan_id else second_plan_lines(session, second_plan_id, until)
    notes.append(orders_line(session, second_plan_id))
    return DemoSummary(
        colours=colours,
        notices=notices,
        departments=departments,
        mail_count=mail_count,
        notes=tuple(notes),
    )


def _counts(progress: dict[ItemProgress, int]) -> str:
    return "、".join(f"{kind.label} {n}" for kind, n in progress.items() if n) or "—"


def second_plan_lines(session: Session, plan_id: int, until: date) -> list[str]:
    """The second plan in three lines: what it is, its items against 序时进度 in the Q3 通报
    (when the run got there) and the year's, and its year 考核 scores with where to check them.
    The as-of moments are the reviews' (17:00 on the quarter's last working day, 17:30 on
    `until`), so the figures are the reports'."""
    plan = session.get_one(Plan, plan_id)
    items = session.scalar(select(func.count()).where(Item.plan_id == plan_id)) or 0
    lines = [
        f"第二个计划：种子000的八项行动 {items} 项（原为2023年讲话，演示按{plan.year}年导入，"
        "按季度报送；examples/eight_actions_2021.yaml）"
    ]
    periods: list[tuple[str, datetime, bool]] = []
    q3_day = default_calendar().last_workday_of_quarter(plan.year, 3)
    if until >= q3_day:
        q3_review = datetime.combine(q3_day, time(17), clock.LOCAL_TZ)
        periods.append((f"{plan.year}Q3", q3_review, False))
    year_end = datetime.combine(until, time(17, 30), clock.LOCAL_TZ)
    periods.append((f"{plan.year}年度", year_end, True))
    parts, year_sheet = [], None
    for label, moment, year in periods:
        sheet = department_scores(
            session=session,
            plan_id=plan_id,
            as_of=moment,
            quarter=None if year else label,
            year=year,
        )
        tally = dict.fromkeys(ItemProgress, 0)
        for verdict in sheet.progress.values():
            tally[verdict.progress] += 1
        parts.append(f"{label} {_counts(tally)}")
        year_sheet = sheet
    lines.append("八项行动对照序时进度：" + "；".join(parts))
    if year_sheet is not None and year_sheet.scores:
        scores = "、".join(f"{line.name} {line.score:.2f}" for line in year_sheet.scores)
        lowest = year_sheet.scores[-1].name
        lines.append(
            f"八项行动{plan.year}年度考核：{scores}"
            f"（扣分明细：duban score --plan {plan_id} --year {plan.year} --detail {lowest}）"
        )
    return lines


def orders_line(session: Session, second_plan_id: int | None) -> str:
    """How many 督办单 were issued, by colour, and how many of them in the second plan."""
    rows = session.execute(
        select(SupervisionOrder.colour, Item.plan_id, func.count())
        .join(Item, Item.id == SupervisionOrder.item_id)
        .group_by(SupervisionOrder.colour, Item.plan_id)
    ).all()
    by_colour: Counter[str] = Counter()
    second = 0
    for colour, plan, count in rows:
        by_colour[colour] += count
        second += count if plan == second_plan_id else 0
    colours = "、".join(
        f"{name} {by_colour[colour]}" for colour, name in ORDER_COLOURS.items() if by_colour[colour]
    )
    line = f"督办单：共 {sum(by_colour.values())} 份" + (f"（{colours}）" if colours else "")
    return line + (f"，其中八项行动 {second} 份" if second_plan_id else "")
