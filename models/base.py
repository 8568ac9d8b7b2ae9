"""Declarative base, shared column types and naming conventions for every duban table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from sqlalchemy import JSON, DateTime, Integer, MetaData, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, stored naive-UTC so SQLite and PostgreSQL agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        """Refuse naive datetimes and store the UTC wall time."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class StrEnumColumn(TypeDecorator[Any]):
    """A `StrEnum` stored as its string value in a VARCHAR of `length` (no schema change
    from a plain string column); reads return the enum member, so `Mapped[TheEnum]` holds.
    A stored value the enum does not know raises `ValueError` on read."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        # Reads look the member up by value directly (`enum(value)` costs several times
        # that, and a pass reads tens of thousands of these); an unknown value falls back
        # to `enum(value)`, which raises.
        self._members: dict[str, StrEnum] = {member.value: member for member in enum}

    def process_bind_param(
        self,
        value: Any,
        dialect: Dialect,  # noqa: ARG002
    ) -> str | None:
        """Store the member's value; a plain string must be one of the enum's values."""
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(
        self,
        value: Any,
        dialect: Dialect,  # noqa: ARG002
    ) -> StrEnum | None:
        """Return the stored string as the enum member."""
        if value is None:
            return None
        member = self._members.get(value)
        return self.enum(value) if member is None else member


IntPK = Annotated[int, mapped_column(Integer, primary_key=True, autoincrement=True)]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
Name = Annotated[str, mapped_column(String(200))]
JsonDict = Annotated[dict[str, Any], mapped_column(JSON)]
JsonList = Annotated[list[Any], mapped_column(JSON)]


class Base(DeclarativeBase):
    """The one declarative base of duban's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}
