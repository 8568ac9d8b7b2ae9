"""The department directory: organisations, departments, their aliases and leader chains."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IntPK, JsonList, Timestamp


class Department(Base):
    """A department (部室) that leads or supports plan items and receives prompts.

    The leader chain is contact -> 分管领导 (`leader_*`) -> 主要负责人 (`head_*`); a department
    with `is_supervision_office` set receives level-3 escalations for every item. `robots`
    are the group chat robots (`models.robots.robot_rows`: role, kind, url, secret, name).
    """

    __tablename__ = "department"

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_emails: Mapped[JsonList] = mapped_column(default=list)
    leader_name: Mapped[str] = mapped_column(String(100), default="")
    leader_email: Mapped[str] = mapped_column(String(320), default="")
    head_name: Mapped[str] = mapped_column(String(100), default="")
    head_email: Mapped[str] = mapped_column(String(320), default="")
    is_supervision_office: Mapped[bool] = mapped_column(Boolean, default=False)
    robots: Mapped[JsonList] = mapped_column(default=list, server_default="[]")
    created_at: Mapped[Timestamp]

    aliases: Mapped[list[DepartmentAlias]] = relationship(
        back_populates="department", lazy="raise", cascade="all, delete-orphan"
    )


class DepartmentAlias(Base):
    """Another name a document may use for a department (traditional script, old names…)."""

    __tablename__ = "department_alias"
    __table_args__ = (UniqueConstraint("alias"),)

    id: Mapped[IntPK]
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(200))

    department: Mapped[Department] = relationship(back_populates="aliases", lazy="raise")
