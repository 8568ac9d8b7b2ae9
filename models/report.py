"""Generated review reports (通报 / 总结评估) and where their files are."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, JsonDict, Timestamp


class Report(Base):
    """One generated report for a plan and period (`2021Q3`, or `2021` for the year review).

    `files` maps a format (`html`, `docx`, `md`) to its path; `summary` keeps the headline
    figures; `as_of` is the moment the data was read at.
    """

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("plan_id", "period"),)

    id: Mapped[IntPK]
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(10))
    as_of: Mapped[Timestamp]
    generated_at: Mapped[Timestamp]
    files: Mapped[JsonDict] = mapped_column(default=dict)
    summary: Mapped[JsonDict] = mapped_column(default=dict)
