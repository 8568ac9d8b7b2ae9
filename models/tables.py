"""Every ORM table in one import, so that `Base.metadata` is complete for migrations."""

from models.attachment_table import Attachment
from models.base import Base
from models.calendar_days import CalendarDay
from models.directory import Department, DepartmentAlias
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item, Phase, Plan, Section, Target
from models.report import Report
from models.supervision import (
    Assignment,
    Checkin,
    CheckinReview,
    Extension,
    Notice,
    Submission,
)

__all__ = [
    "Assignment",
    "Attachment",
    "Base",
    "CalendarDay",
    "Checkin",
    "CheckinReview",
    "Department",
    "DepartmentAlias",
    "DomainEvent",
    "Extension",
    "Item",
    "Notice",
    "OutboxMessage",
    "Phase",
    "Plan",
    "Report",
    "Section",
    "Submission",
    "Target",
]
