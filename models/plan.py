"""A yearly work plan as stored: plan, sections, items, targets and phases."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IntPK, JsonDict, JsonList, StrEnumColumn, Timestamp
from models.vocabulary import Colour


class Plan(Base):
    """One imported plan document (工作要点 / 实施方案) for one organisation and year.

    `status` is `imported` until supervision starts, then `supervising`. `policy` holds the
    check-in and escalation policy (see `models.policy`) as JSON; `report_recipients` the
    addresses that receive quarter and year reports. `original_title` / `original_organisation`
    keep the document's own wording when the shown text was converted to another script
    (see `models.script`); None means the shown text is the original.
    """

    __tablename__ = "plan"
    __table_args__ = (UniqueConstraint("source_sha256"),)

    id: Mapped[IntPK]
    title: Mapped[str] = mapped_column(String(300))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    year: Mapped[int] = mapped_column(Integer)
    issued: Mapped[date | None] = mapped_column(Date, default=None)
    document_number: Mapped[str | None] = mapped_column(String(60), default=None)
    source_name: Mapped[str] = mapped_column(String(500), default="")
    source_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="imported")
    policy: Mapped[JsonDict] = mapped_column(default=dict)
    report_recipients: Mapped[JsonList] = mapped_column(default=list)
    created_at: Mapped[Timestamp]
    started_at: Mapped[Timestamp | None] = mapped_column(default=None)
    original_title: Mapped[str | None] = mapped_column(String(300), default=None)
    original_organisation: Mapped[str | None] = mapped_column(String(200), default=None)

    sections: Mapped[list[Section]] = relationship(
        back_populates="plan", lazy="raise", order_by="Section.position"
    )
    items: Mapped[list[Item]] = relationship(
        back_populates="plan", lazy="raise", order_by="Item.position"
    )
    phases: Mapped[list[Phase]] = relationship(
        back_populates="plan", lazy="raise", order_by="Phase.start_date"
    )


class Section(Base):
    """A numbered section of a plan (一、二、…); `original_title` as in `Plan`."""

    __tablename__ = "section"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)

    id: Mapped[IntPK]
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    original_title: Mapped[str | None] = mapped_column(Text, default=None)

    plan: Mapped[Plan] = relationship(back_populates="sections", lazy="raise")


class Item(Base):
    """One numbered plan item (任务): the unit of supervision.

    `colour` is the current RAG status (`green`, `amber`, `red`, or `none` before supervision);
    `needs_assignment` flags an item that no department leads yet. `deadline` and
    `milestones` are the item's own 完成时限 and 时序进度 as the reader gave them
    (`ParsedDeadline` / `ParsedMilestone` in JSON), `criteria` its 考核要点.
    `original_title` / `original_body` as in `Plan`. `closed_at` is set while the item is
    closed (已办结, `models.completion.ItemClosure`), None while it is supervised.
    """

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)

    id: Mapped[IntPK]
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"), index=True)
    section_id: Mapped[int | None] = mapped_column(
        ForeignKey("section.id", ondelete="SET NULL"), default=None
    )
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    line: Mapped[int] = mapped_column(Integer, default=0)
    colour: Mapped[Colour] = mapped_column(StrEnumColumn(Colour, 10), default=Colour.NONE)
    needs_assignment: Mapped[bool] = mapped_column(default=False)
    unresolved_units: Mapped[JsonList] = mapped_column(default=list)
    deadline: Mapped[JsonDict | None] = mapped_column(default=None)
    milestones: Mapped[JsonList] = mapped_column(default=list)
    criteria: Mapped[str] = mapped_column(Text, default="")
    original_title: Mapped[str | None] = mapped_column(Text, default=None)
    original_body: Mapped[str | None] = mapped_column(Text, default=None)
    closed_at: Mapped[Timestamp | None] = mapped_column(default=None)

    plan: Mapped[Plan] = relationship(back_populates="items", lazy="raise")
    section: Mapped[Section | None] = relationship(lazy="raise")
    targets: Mapped[list[Target]] = relationship(
        back_populates="item", lazy="raise", order_by="Target.position"
    )


class Target(Base):
    """A quantitative target of an item: `不少于200场次` is comparator `ge`, 200, `场次`."""

    __tablename__ = "target"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[IntPK]
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(200))
    comparator: Mapped[str] = mapped_column(String(10))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(40), default="")

    item: Mapped[Item] = relationship(back_populates="targets", lazy="raise")


class Phase(Base):
    """A phase of the plan: key `mobilize`, `implement` or `review`, with inclusive dates."""

    __tablename__ = "phase"
    __table_args__ = (UniqueConstraint("plan_id", "key"),)

    id: Mapped[IntPK]
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    start_text: Mapped[str] = mapped_column(String(40), default="")
    end_text: Mapped[str] = mapped_column(String(40), default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)

    plan: Mapped[Plan] = relationship(back_populates="phases", lazy="raise")
