"""Issuing 督办单 with the escalations that reach the policy's level (`models.orders`).

`issue_orders` runs in the daily pass's transaction, for the escalation notices that pass just
recorded: it allocates the year's numbers from the counter row in one `UPDATE … RETURNING`,
inserts the orders in one statement, writes each Word document under
`<data dir>/orders/` and returns the attachment of each notice's email — so the order, its
number, the escalation and its email commit together, and a re-run (which records no new
notice) issues nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_dict

from models.calendar import WorkCalendar
from models.catch_up import HELD
from models.clock import local_date
from models.directory import Department
from models.orders import (
    ORDER_COUNTER,
    DocumentCounter,
    SupervisionOrder,
    issues_order,
    order_colour,
    order_number,
    order_text,
)
from models.plan import Item
from models.policy import SupervisionPolicy, parse_policy
from models.settings import Settings, get_settings
from models.supervision import Checkin, Notice
from models.vocabulary import NoticeKind
from notifications.compose import escalation_label
from tasks.files import write_documents
from tasks.reporting.order_docx import build_order_docx
from tasks.sql import insert_ignoring, insert_rows, table_of

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def allocate_numbers(session: Session, *, kind: str, year: int, count: int) -> int:
    """Reserve `count` consecutive numbers of `kind` in `year`; returns the first."""
    counters = table_of(DocumentCounter)
    session.execute(insert_ignoring(session, counters).values(kind=kind, year=year, value=0))
    last = session.execute(
        update(counters)
        .where(counters.c.kind == kind, counters.c.year == year)
        .values(value=counters.c.value + count)
        .returning(counters.c.value)
    ).scalar_one()
    return int(last) - count + 1


def orders_dir(settings: Settings) -> Path:
    """Where the orders' Word documents are written."""
    return settings.data_dir / "orders"


def order_attachment(order: SupervisionOrder, directory: Path) -> dict[str, str]:
    """The outbox attachment of `order`'s Word document in `directory` (absolute, resolved:
    `orders_dir(settings).resolve()`)."""
    name = f"{order.number}督办单.docx"
    return {
        "path": str(directory / name),
        "filename": name,
        "mime": DOCX_MIME,
    }


def issue_orders(
    *,
    session: Session,
    notices: Sequence[Notice],
    items: Mapping[int, Item],
    departments: Mapping[int, Department],
    checkins: Mapping[int, Checkin],
    calendar: WorkCalendar,
    now: datetime,
    settings: Settings | None = None,
) -> dict[int, list[dict[str, str]]]:
    """Issue the orders of the new escalation `notices`; returns attachments by notice id.

    `items` need their plan loaded (its policy says the level); notices of other kinds, below
    the level, or without an item or department in the given rows issue nothing.
    """
    settings = settings or get_settings()
    policies: dict[int, SupervisionPolicy] = {}
    chosen: list[tuple[Notice, Item, Department, SupervisionPolicy]] = []
    for notice in notices:
        item = items.get(notice.item_id) if notice.item_id is not None else None
        checkin = checkins.get(notice.checkin_id) if notice.checkin_id else None
        department_id = notice.department_id or (checkin.department_id if checkin else None)
        department = departments.get(department_id) if department_id is not None else None
        if notice.kind != NoticeKind.ESCALATION or item is None or department is None:
            continue
        if notice.recipients and all(r.get(HELD) for r in notice.recipients):
            continue  # held back by the catch-up cap: listed in a summary, not issued
        if item.plan_id not in policies:
            policies[item.plan_id] = parse_policy(item.plan.policy or None)
        policy = policies[item.plan_id]
        if issues_order(policy.orders, notice.level):
            chosen.append((notice, item, department, policy))
    if not chosen:
        return {}
    today = local_date(now)
    first = allocate_numbers(session, kind=ORDER_COUNTER, year=today.year, count=len(chosen))
    rows: list[dict[str, object]] = []
    for offset, (notice, item, department, policy) in enumerate(chosen):
        checkin = checkins.get(notice.checkin_id) if notice.checkin_id else None
        due = checkin.due_date if checkin is not None else None
        reply_by = calendar.add_workdays(today, policy.orders.reply_workdays)
        label = escalation_label(policy, notice.level)
        text = order_text(
            item_number=item.number,
            item_title=item.title,
            department=department.name,
            due_date=due,
            today=today,
            workdays_late=0 if due is None else max(1, calendar.workdays_between(due, today)),
            level_label=label,
            reply_by=reply_by,
        )
        seq = first + offset
        rows.append(
            {
                "notice_key": notice.key,
                "year": today.year,
                "seq": seq,
                "number": order_number(policy.orders.prefix, today.year, seq),
                "level": notice.level,
                "colour": order_colour(notice.level, len(policy.escalation)),
                "item_id": item.id,
                "department_id": department.id,
                "checkin_id": notice.checkin_id,
                "overdue_since": due,
                "reply_by": reply_by,
                "matter": text.matter,
                "requirement": text.requirement,
                "issued_at": now,
            }
        )
    insert_rows(session=session, table=table_of(SupervisionOrder), rows=rows)
    keys = {notice.key: notice for notice, *_ in chosen}
    directory = orders_dir(settings).resolve()
    attachments: dict[int, list[dict[str, str]]] = {}
    documents: list[tuple[Path, bytes]] = []
    for row in rows:
        # The row just inserted, `issued_at` in UTC as the column reads it back.
        order = _transient_order(row | {"issued_at": now.astimezone(UTC)})
        notice = keys[order.notice_key]
        policy = policies[items[order.item_id].plan_id]
        data = build_order_docx(
            order,
            level_label=escalation_label(policy, order.level),
            issuer=items[order.item_id].plan.organisation or "督查室",
            recipient=departments[order.department_id].name,
        )
        attachment = order_attachment(order, directory)
        documents.append((Path(attachment["path"]), data))
        attachments[notice.id] = [attachment]
    write_documents(directory, documents)
    return attachments


def _transient_order(values: dict[str, object]) -> SupervisionOrder:
    """A transient `SupervisionOrder` holding `values` as its loaded state, as the ORM builds
    a row it reads (`SupervisionOrder(**values)` runs an attribute event per column). Never
    added to a session."""
    order: SupervisionOrder = SupervisionOrder.__mapper__.class_manager.new_instance()
    instance_dict(order).update(values)
    return order


def orders_in_period(
    session: Session, *, plan_id: int, start: datetime, until: datetime
) -> dict[str, int]:
    """督办单 of the plan issued in [`start`, `until`], counted by colour."""
    counts: dict[str, int] = {}
    for colour in session.scalars(
        select(SupervisionOrder.colour)
        .join(Item, Item.id == SupervisionOrder.item_id)
        .where(
            Item.plan_id == plan_id,
            SupervisionOrder.issued_at >= start,
            SupervisionOrder.issued_at <= until,
        )
    ):
        counts[colour] = counts.get(colour, 0) + 1
    return counts
