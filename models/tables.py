"""Every ORM table in one import, so that `Base.metadata` is complete for migrations."""

from models.base import Base
from models.calendar_days import CalendarDay
from models.directory import Department, DepartmentAlias
from models.instruction import Instruction, InstructionAnswer
from models.orders import DocumentCounter, SupervisionOrder
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
    "Base",
    "CalendarDay",
    "Checkin",
    "CheckinReview",
    "Department",
    "DepartmentAlias",
    "DocumentCounter",
    "DomainEvent",
    "Extension",
    "Instruction",
    "InstructionAnswer",
    "Item",
    "Notice",
    "OutboxMessage",
    "Phase",
    "Plan",
    "Report",
    "Section",
    "Submission",
    "SupervisionOrder",
    "Target",
]
