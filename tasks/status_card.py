"""What a supervisor reads in the Prefect UI: an item's status card and a plan's summary table.

Read-only queries; the flows turn the results into Prefect artifacts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.closure import closed_label
from models.daily_pass import item_label
from models.directory import Department
from models.ladder import is_overdue
from models.orders import COLOURS, SupervisionOrder
from models.plan import Item, Section
from models.supervision import Assignment, Checkin, Notice
from models.vocabulary import (
    AssignmentRole,
    CheckinKind,
    CheckinStatus,
    Colour,
    ItemState,
    NoticeKind,
)
from tasks.instructions import instruction_card_lines

COLOUR_LABELS = {colour.value: colour.badge for colour in Colour}
KIND_LABELS = CheckinKind.labels()
CHECKIN_STATUS_LABELS = CheckinStatus.labels()
"""Check-in statuses (kept under this name for the CLI; the labels live in the vocabulary)."""


@dataclass(frozen=True)
class ItemTags:
    """The Prefect tags and run name of one item's flow run."""

    label: str
    tags: list[str]


def item_tags(*, session: Session, item_ids: list[int], phase_key: str) -> dict[int, ItemTags]:
    """Run name and tags (plan, section, lead departments, phase) for each item."""
    rows = session.execute(
        select(Item, Section.number)
        .outerjoin(Section, Section.id == Item.section_id)
        .where(Item.id.in_(item_ids))
    ).all()
    leads: defaultdict[int, list[str]] = defaultdict(list)
    for item_id, name in session.execute(
        select(Assignment.item_id, Department.name)
        .join(Department, Department.id == Assignment.department_id)
        .where(
            Assignment.item_id.in_(item_ids),
            Assignment.ended_at.is_(None),
            Assignment.role == AssignmentRole.LEAD,
        )
        .order_by(Assignment.id)
    ):
        leads[item_id].append(name)
    found: dict[int, ItemTags] = {}
    for item, section_number in rows:
        tags = [f"plan:{item.plan_id}", f"item:{item.id}", f"phase:{phase_key}"]
        if section_number:
            tags.append(f"section:{section_number}")
        tags.extend(f"dept:{name}" for name in leads[item.id])
        found[item.id] = ItemTags(label=item_label(item), tags=tags)
    return found


def status_card(*, session: Session, item_id: int, state: str, today: date) -> str:
    """The markdown status card of one item: colour, state, check-ins and recent notices."""
    item = session.get(Item, item_id)
    if item is None:
        return f"任务 {item_id} 不存在"
    rows = session.execute(
        select(Checkin, Department.name)
        .join(Department, Department.id == Checkin.department_id)
        .where(Checkin.item_id == item_id, Checkin.status != CheckinStatus.CANCELLED)
        .order_by(Checkin.due_date, Department.name)
    ).all()
    assignments = session.execute(
        select(Assignment.role, Department.name)
        .join(Department, Department.id == Assignment.department_id)
        .where(Assignment.item_id == item_id, Assignment.ended_at.is_(None))
        .order_by(Assignment.id)
    ).all()
    lines = [
        f"# {item_label(item)}",
        "",
        f"**状态：** {COLOUR_LABELS.get(item.colour, item.colour)} · "
        f"{ItemState.label_of(state)}（截至 {today.isoformat()}）",
        *(
            ["", f"**办结：** {closed_label(local_date(item.closed_at))}"]
            if item.closed_at is not None
            else []
        ),
        "",
        "**责任部门：** "
        + (
            "、".join(f"{name}（{AssignmentRole.label_of(role)}）" for role, name in assignments)
            or "尚未交办"
        ),
        "",
        "| 部门 | 报送 | 截止日期 | 状态 | 督办级别 |",
        "|---|---|---|---|---|",
    ]
    for checkin, name in rows:
        marker = ""
        if is_overdue(checkin.due_date, today, answered=checkin.status != CheckinStatus.PENDING):
            marker = "（逾期）"
        lines.append(
            f"| {name} | {KIND_LABELS.get(checkin.kind, checkin.kind)} | "
            f"{checkin.due_date.isoformat()} | "
            f"{CHECKIN_STATUS_LABELS.get(checkin.status, checkin.status)}{marker} | "
            f"{checkin.escalation_level or '-'} |"
        )
    lines += instruction_card_lines(session=session, item_id=item_id)
    notices = session.execute(
        select(Notice)
        .where(Notice.item_id == item_id)
        .order_by(Notice.decided_at.desc(), Notice.id.desc())
        .limit(10)
    ).scalars()
    recent = list(notices)
    if recent:
        lines += ["", "**最近的通知：**", ""]
        for notice in recent:
            who = "、".join(str(r.get("name") or r.get("email")) for r in notice.recipients)
            lines.append(
                f"- {notice.decided_at.date().isoformat()} "
                f"{NoticeKind.label_of(notice.kind)}"
                f"{f' L{notice.level}' if notice.level else ''} → {who or '（无收件人）'}"
            )
    orders = session.execute(
        select(SupervisionOrder, Department.name)
        .join(Department, Department.id == SupervisionOrder.department_id)
        .where(SupervisionOrder.item_id == item_id)
        .order_by(SupervisionOrder.year, SupervisionOrder.seq)
    ).all()
    if orders:
        lines += ["", "**督办单：**", ""]
        for order, name in orders:
            lines.append(
                f"- {order.number}（{COLOURS.get(order.colour, order.colour)}，"
                f"{local_date(order.issued_at).isoformat()}）→ {name}，"
                f"限{order.reply_by.isoformat()}前书面回复"
            )
    return "\n".join(lines)


def plan_table(*, session: Session, plan_id: int, today: date) -> list[dict[str, Any]]:
    """One row per item of the plan: number, title, colour, pending/overdue check-ins, level,
    and `已办结（date）` for a closed item."""
    items = session.execute(
        select(Item.id, Item.number, Item.title, Item.colour, Item.needs_assignment, Item.closed_at)
        .where(Item.plan_id == plan_id)
        .order_by(Item.position)
    ).all()
    stats: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for item_id, status, due, level in session.execute(
        select(Checkin.item_id, Checkin.status, Checkin.due_date, Checkin.escalation_level)
        .join(Item, Item.id == Checkin.item_id)
        .where(
            Item.plan_id == plan_id,
            Checkin.status != CheckinStatus.CANCELLED,
            Checkin.due_date <= today,
        )
    ):
        row = stats[item_id]
        if status == CheckinStatus.SUBMITTED:
            row[0] += 1
        else:
            row[1] += 1
            if is_overdue(due, today, answered=False):
                row[2] += 1
            row[3] = max(row[3], level)
    return [
        {
            "序号": item.number,
            "任务": item.title[:40],
            "红黄绿灯": COLOUR_LABELS.get(item.colour, item.colour),
            "已报送": stats[item.id][0],
            "待报送": stats[item.id][1],
            "逾期": stats[item.id][2],
            "督办级别": stats[item.id][3],
            "待交办": "是" if item.needs_assignment else "",
            "办结": closed_label(local_date(item.closed_at) if item.closed_at else None),
        }
        for item in items
    ]
