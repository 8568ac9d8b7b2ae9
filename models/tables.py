"""Every ORM table in one import, so that `Base.metadata` is complete for migrations."""

from models.attachment_table import Attachment
from models.base import Base
from models.calendar_days import CalendarDay
from models.completion import CompletionRequest, ItemClosure
from models.digest import DigestEntry
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
    "Attachment",
    "Base",
    "CalendarDay",
    "Checkin",
    "CheckinReview",
    "CompletionRequest",
    "Department",
    "DepartmentAlias",
    "DigestEntry",
    "DocumentCounter",
    "DomainEvent",
    "Extension",
    "Instruction",
    "InstructionAnswer",
    "Item",
    "ItemClosure",
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
