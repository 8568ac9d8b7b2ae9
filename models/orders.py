"""督办单: the numbered, colour-coded formal notice issued with a level-2 or level-3 escalation.

Several city offices issue one numbered notice per lagging matter, coloured by severity
(宿迁 蓝/黄/红 督办单; see `../shared/reference/tongbao-and-kaohe.md`). duban issues one with each
escalation that reaches `OrderRule.from_level` (default 2): numbered per year of issue
(`督办〔2021〕第12号`, from a counter row so concurrent passes never share a number), coloured by
the level's place on the ladder (the first level 蓝, the middle 黄, the last 红), naming the
item, the department, what is overdue since when, the required action and the date by which a
written reply is due (`reply_workdays` working days after issue). The row is the record; the
Word document is rendered from it (`tasks.orders`) and attached to the escalation email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, Timestamp
from models.formats import cn_day

ORDER_COUNTER = "order"
COLOURS = {"blue": "蓝色", "yellow": "黄色", "red": "红色"}
COLOUR_RGB = {"blue": "1F5FA8", "yellow": "C98A00", "red": "C00000"}


class OrderRule(BaseModel):
    """When a 督办单 is issued (`orders:` in the policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    from_level: int = Field(default=2, ge=0)  # 0: never
    reply_workdays: int = Field(default=3, ge=1, le=30)
    prefix: str = Field(default="督办", min_length=1, max_length=10)


class SupervisionOrder(Base):
    """One issued 督办单; `notice_key` ties it to the escalation notice it came with."""

    __tablename__ = "supervision_order"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_supervision_order_number"),)

    id: Mapped[IntPK]
    notice_key: Mapped[str] = mapped_column(String(200), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    level: Mapped[int] = mapped_column(Integer)
    colour: Mapped[str] = mapped_column(String(10))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkin.id", ondelete="SET NULL"))
    overdue_since: Mapped[date | None] = mapped_column(Date, default=None)
    reply_by: Mapped[date] = mapped_column(Date)
    matter: Mapped[str] = mapped_column(Text)
    requirement: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[Timestamp]


class DocumentCounter(Base):
    """The last number used for a kind of document in a year (UPDATE … RETURNING allocates)."""

    __tablename__ = "document_counter"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def order_number(prefix: str, year: int, seq: int) -> str:
    """`督办〔2021〕第12号`."""
    return f"{prefix}〔{year}〕第{seq}号"


def order_colour(level: int, levels: int) -> str:
    """`blue`, `yellow` or `red`: the first level blue, the last red, those between yellow."""
    if level >= levels:
        return "red"
    return "blue" if level <= 1 else "yellow"


def issues_order(rule: OrderRule, level: int) -> bool:
    """Whether an escalation at `level` comes with a 督办单."""
    return rule.from_level > 0 and level >= rule.from_level


@dataclass(frozen=True, slots=True)
class OrderText:
    """The words of a 督办单 body (Chinese, plain)."""

    matter: str
    requirement: str


def order_text(
    *,
    item_number: str,
    item_title: str,
    department: str,
    due_date: date | None,
    today: date,
    workdays_late: int,
    level_label: str,
    reply_by: date,
) -> OrderText:
    """What is overdue since when, and what the department must do by when."""
    if due_date is None:
        overdue = "有应办事项逾期未办"
    else:
        overdue = (
            f"应于{_day(due_date)}报送进展情况，"
            f"截至{_day(today)}已逾期{workdays_late}个工作日未报送"
        )
    matter = (
        f"第{item_number}项“{item_title}”（责任部室：{department}）{overdue}，现予{level_label}。"
    )
    requirement = (
        f"请{department}于{_day(reply_by)}前通过报送链接报送进展情况，并书面说明逾期原因和整改措施；"
        "逾期仍未报送的，将按程序提级督办并纳入考核。"
    )
    return OrderText(matter, requirement)


_day = cn_day
