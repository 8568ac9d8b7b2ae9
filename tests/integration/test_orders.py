"""督办单 issued with level-2 and level-3 escalations, on SQLite and PostgreSQL: numbered per
year from one counter, coloured by level, attached to the escalation email as a Word document
in the official layout, and issued once however often the day is re-run."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import resolve
from models.orders import OrderRule, SupervisionOrder
from models.outbox import OutboxMessage
from models.plan import Item
from models.policy import default_policy
from models.supervision import Checkin
from tasks.assignment import start_supervision
from tasks.orders import allocate_numbers
from tasks.reconcile import reconcile_item
from tasks.reporting.order_docx import render_order_docx
from tests.builders import make_department, make_plan

CALENDAR = WorkCalendar()


def _started(session: Session, policy: object = None) -> tuple[int, Checkin]:
    make_department(session, office=True)
    lead = make_department(session, name="学会部")
    built = make_plan(session, items=[("搭建高水平科技开放交流平台", [lead], [])])
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=policy or default_policy(),  # type: ignore[arg-type]
        calendar=CALENDAR,
    )
    item_id = built.items[0].id
    first = session.scalars(
        select(Checkin).where(Checkin.item_id == item_id).order_by(Checkin.due_date)
    ).first()
    assert first is not None and first.due_date == date(2021, 6, 30)
    return item_id, first


def _pass(session: Session, item_id: int, day: date, policy: object = None) -> list[str]:
    return reconcile_item(
        session=session,
        item_id=item_id,
        as_of=resolve(day),
        policy=policy or default_policy(),  # type: ignore[arg-type]
        calendar=CALENDAR,
    ).notices


def test_level_two_and_three_issue_numbered_orders_once(session: Session) -> None:
    # Reserving no number tells the next one (other tests on this database may have used some).
    year_start = allocate_numbers(session, kind="order", year=2021, count=0)
    item_id, _ = _started(session)
    for day in (date(2021, 6, 30), date(2021, 7, 1)):  # reminder, level 1: no order
        _pass(session, item_id, day)
    # this item's orders only: other tests commit orders to the same database
    assert (
        session.scalars(select(SupervisionOrder).where(SupervisionOrder.item_id == item_id)).all()
        == []
    )
    level2 = _pass(session, item_id, date(2021, 7, 5))
    level3 = _pass(session, item_id, date(2021, 7, 7))
    orders = session.scalars(
        select(SupervisionOrder)
        .where(SupervisionOrder.item_id == item_id)
        .order_by(SupervisionOrder.seq)
    ).all()
    assert [(o.notice_key, o.level, o.colour) for o in orders] == [
        (level2[0], 2, "yellow"),
        (level3[0], 3, "red"),
    ]
    first = orders[0]
    assert first.seq == year_start and first.number == f"督办〔2021〕第{year_start}号"
    assert orders[1].seq == year_start + 1
    assert first.overdue_since == date(2021, 6, 30)
    assert first.reply_by == date(2021, 7, 8)  # three working days after Mon 5 Jul
    assert "应于2021年6月30日报送进展情况，截至2021年7月5日已逾期3个工作日未报送" in first.matter
    assert "分管领导督办" in first.matter and "2021年7月8日前" in first.requirement
    # The escalation email carries the order's Word document and names it.
    mail = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key == f"notice:{level2[0]}")
    ).one()
    [attachment] = mail.attachments
    assert attachment["filename"] == f"{first.number}督办单.docx"
    assert f"随附督办单：{first.number}督办单.docx" in mail.text_body
    document = zipfile.ZipFile(Path(attachment["path"])).read("word/document.xml").decode()
    assert first.number in document and "黄色督办单" in document and 'w:val="C98A00"' in document
    assert "逾期3个工作日未报送" in document
    # The document is the one python-docx lays out for the stored order.
    assert Path(attachment["path"]).read_bytes() == render_order_docx(
        first, level_label="分管领导督办", issuer="测试科协", recipient="学会部"
    )
    styles = zipfile.ZipFile(Path(attachment["path"])).read("word/styles.xml").decode()
    assert 'w:eastAsia="仿宋_GB2312"' in styles
    # Re-running the days issues nothing new and keeps the numbers.
    for day in (date(2021, 7, 5), date(2021, 7, 7)):
        assert _pass(session, item_id, day) == []
    assert (
        session.scalars(select(SupervisionOrder).where(SupervisionOrder.item_id == item_id)).all()
        == orders
    )


def test_numbers_continue_across_plans_and_the_policy_can_turn_orders_off(session: Session) -> None:
    start = allocate_numbers(session, kind="order", year=2021, count=2)
    assert allocate_numbers(session, kind="order", year=2021, count=1) == start + 2
    other_year = allocate_numbers(session, kind="order", year=2031, count=0)
    assert allocate_numbers(session, kind="order", year=2031, count=1) == other_year
    quiet = default_policy().model_copy(update={"orders": OrderRule(from_level=0)})
    item_id, _ = _started(session, quiet)
    for day in (date(2021, 6, 30), date(2021, 7, 1), date(2021, 7, 5), date(2021, 7, 7)):
        _pass(session, item_id, day, quiet)
    assert (
        session.scalars(select(SupervisionOrder).where(SupervisionOrder.item_id == item_id)).all()
        == []
    )


def test_orders_are_on_the_item_card_and_counted_in_the_report(
    session: Session, tmp_path: Path
) -> None:
    from tasks.reporting.store import generate_report
    from tasks.status_card import status_card

    item_id, _ = _started(session)
    for day in (date(2021, 6, 30), date(2021, 7, 1), date(2021, 7, 5), date(2021, 7, 7)):
        _pass(session, item_id, day)
    orders = session.scalars(
        select(SupervisionOrder)
        .where(SupervisionOrder.item_id == item_id)
        .order_by(SupervisionOrder.seq)
    ).all()
    card = status_card(session=session, item_id=item_id, state="Escalated", today=date(2021, 7, 7))
    assert "**督办单：**" in card
    assert f"- {orders[0].number}（黄色，2021-07-05）→ 学会部，限2021-07-08前书面回复" in card
    assert f"- {orders[1].number}（红色，2021-07-07）" in card
    item = session.get_one(Item, item_id)
    result = generate_report(
        session=session,
        plan_id=item.plan_id,
        as_of=resolve(date(2021, 7, 7)),
        generated_at=resolve(date(2021, 7, 7)),
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["md"],
        email=False,
    )
    assert "印发督办单2份（黄色1份、红色1份）" in result.markdown
    assert result.review.summary["orders"] == {"yellow": 1, "red": 1}
