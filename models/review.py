"""Review reports (通报 / 总结评估): the period, the plain input rows and the report's data.

Pure: no I/O. `tasks.reporting.data` loads `ReviewInputs` from the database and
`models.review_figures.build_review` turns them into a `Review` that every renderer reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from models.errors import InputError
from models.instruction import InstructionFact
from models.scoring import DepartmentScore
from models.vocabulary import ItemProgress

COLOURS = ("green", "amber", "red", "none")
COLOUR_NAMES = {"green": "绿灯", "amber": "黄灯", "red": "红灯", "none": "未评定"}
QUARTER_NAMES = {1: "第一季度", 2: "第二季度", 3: "第三季度", 4: "第四季度"}
GRACE_DAYS_AFTER_QUARTER = 7

_PERIOD = re.compile(r"^\s*(\d{4})\s*(?:[Qq]\s*([1-4]))?\s*$")


@dataclass(frozen=True)
class Period:
    """A reporting period: quarter `2021Q3` or year `2021`, with inclusive local dates."""

    label: str
    kind: str
    year: int
    quarter: int | None
    start: date
    end: date

    @property
    def title(self) -> str:
        """The period in words, e.g. `2021年第三季度` or `2021年度`."""
        if self.quarter is None:
            return f"{self.year}年度"
        return f"{self.year}年{QUARTER_NAMES[self.quarter]}"


def quarter_period(year: int, quarter: int) -> Period:
    """The period of quarter `quarter` (1-4) of `year`."""
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(f"{year}Q{quarter}", "quarter", year, quarter, start, end - timedelta(days=1))


def year_period(year: int) -> Period:
    """The period of the whole year `year`."""
    return Period(str(year), "year", year, None, date(year, 1, 1), date(year, 12, 31))


def parse_period(text: str, *, plan_year: int) -> Period:
    """Parse `2021Q3` (or `2021` for the year) and check it lies in the plan's year.

    Raises `InputError` with a Chinese reason for bad syntax or another year.
    """
    match = _PERIOD.match(text)
    if match is None:
        raise InputError(f"无法识别的报告期“{text}”，应形如 2021Q3 或 2021。")
    year = int(match.group(1))
    if year != plan_year:
        raise InputError(f"报告期“{text.strip()}”不在计划年度 {plan_year} 年内。")
    if match.group(2) is None:
        return year_period(year)
    return quarter_period(year, int(match.group(2)))


def default_quarter(as_of_local: date, *, plan_year: int) -> Period:
    """The quarter containing `as_of_local`, or the one just ended in its first week.

    A date after the plan's year gives its fourth quarter; a date before it is an error.
    """
    if as_of_local.year < plan_year:
        raise InputError(f"数据截止日 {as_of_local.isoformat()} 早于计划年度 {plan_year} 年。")
    if as_of_local.year > plan_year:
        return quarter_period(plan_year, 4)
    quarter = (as_of_local.month - 1) // 3 + 1
    period = quarter_period(plan_year, quarter)
    if quarter > 1 and (as_of_local - period.start).days < GRACE_DAYS_AFTER_QUARTER:
        return quarter_period(plan_year, quarter - 1)
    return period


@dataclass(frozen=True)
class PlanRow:
    """The plan being reported on."""

    id: int
    title: str
    organisation: str
    year: int
    document_number: str = ""


@dataclass(frozen=True)
class SectionRow:
    """A plan section (一、二、…)."""

    id: int
    position: int
    number: str
    title: str


@dataclass(frozen=True)
class ItemRow:
    """A plan item with its stored colour (used when no status event exists)."""

    id: int
    section_id: int | None
    position: int
    number: str
    title: str
    colour: str
    needs_assignment: bool


@dataclass(frozen=True)
class TargetRow:
    """A quantitative target of an item."""

    id: int
    item_id: int
    position: int
    text: str
    comparator: str
    value: float
    unit: str


@dataclass(frozen=True)
class DepartmentRow:
    """A department that leads or supports at least one item of the plan."""

    id: int
    name: str


@dataclass(frozen=True)
class AssignmentRow:
    """An open assignment of an item to a department as `lead` or `support`."""

    item_id: int
    department_id: int
    role: str


@dataclass(frozen=True)
class CheckinRow:
    """A check-in; `submitted_at` is None unless first submitted at or before `as_of`."""

    id: int
    item_id: int
    department_id: int
    due_date: date
    status: str
    submitted_at: datetime | None
    asks: str = ""


@dataclass(frozen=True)
class SubmissionRow:
    """The latest submission of an item at or before `as_of`."""

    item_id: int
    department_id: int
    submitted_at: datetime
    status: str
    narrative: str
    problems: str
    next_steps: str
    values: Mapping[str, float]
    submission_id: int = 0


@dataclass(frozen=True)
class ExtensionRow:
    """An extension decision on a check-in."""

    checkin_id: int
    department_id: int
    decision: str
    decided_at: datetime | None


@dataclass(frozen=True)
class EscalationRow:
    """An escalation notice (督办) decided at `decided_at`."""

    item_id: int
    department_id: int | None
    checkin_id: int | None
    level: int
    decided_at: datetime


@dataclass(frozen=True)
class StatusChange:
    """An item's colour change, from a `duban.item.status_changed` domain event."""

    item_id: int
    occurred_at: datetime
    colour: str


@dataclass(frozen=True)
class ClosureRow:
    """One closure (销号) of an item: when it was closed, why, and when it was reopened."""

    item_id: int
    closed_at: datetime
    reason: str
    reopened_at: datetime | None


@dataclass(frozen=True)
class ReviewDecisionRow:
    """One review decision (审核) on a department's report: accepted or returned, when."""

    item_id: int
    department_id: int
    decision: str
    decided_at: datetime


@dataclass(frozen=True)
class AwaitingReviewRow:
    """A report waiting for the office's decision, and whether the office is past its time."""

    item_id: int
    department_id: int
    submitted_at: datetime
    overdue: bool


@dataclass(frozen=True)
class ReviewInputs:
    """Everything a review is computed from, as plain rows (see `tasks.reporting.data`)."""

    plan: PlanRow
    period: Period
    as_of: datetime
    sections: tuple[SectionRow, ...]
    items: tuple[ItemRow, ...]
    targets: tuple[TargetRow, ...]
    departments: tuple[DepartmentRow, ...]
    assignments: tuple[AssignmentRow, ...]
    checkins: tuple[CheckinRow, ...]
    submissions: tuple[SubmissionRow, ...]
    extensions: tuple[ExtensionRow, ...]
    escalations: tuple[EscalationRow, ...]
    status_changes: tuple[StatusChange, ...]
    instructions: tuple[InstructionFact, ...] = ()
    closures: tuple[ClosureRow, ...] = ()
    attachments: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    review_decisions: tuple[ReviewDecisionRow, ...] = ()
    awaiting_review: tuple[AwaitingReviewRow, ...] = ()


@dataclass(frozen=True)
class CheckinCounts:
    """Check-ins due in the period: on time, late, missing (overdue) and open (due today)."""

    due: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    open: int = 0

    @property
    def settled(self) -> int:
        """Check-ins whose outcome is known: on time + late + missing."""
        return self.on_time + self.late + self.missing

    @property
    def on_time_rate(self) -> float | None:
        """On time / settled as a percentage, or None when nothing was due yet."""
        return None if self.settled == 0 else 100.0 * self.on_time / self.settled


@dataclass(frozen=True)
class TargetLine:
    """One target's attainment: reported value against the target, as a percentage."""

    text: str
    target: float
    unit: str
    reported: float | None
    percent: float | None


@dataclass(frozen=True)
class ItemLine:
    """One row of a section's item table."""

    item_id: int
    number: str
    title: str
    leads: tuple[str, ...]
    colour: str
    status: str
    status_date: date | None
    targets: tuple[TargetLine, ...]
    narrative: str
    problems: str
    next_steps: str
    closed_on: date | None = None
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectionBlock:
    """A section's heading, colour counts, mean attainment and item table."""

    number: str
    title: str
    colours: Mapping[str, int]
    attainment: float | None
    items: tuple[ItemLine, ...]


@dataclass(frozen=True)
class DepartmentLine:
    """A department's check-in record in the period and escalations it received."""

    rank: int | None
    name: str
    counts: CheckinCounts
    escalations: int


@dataclass(frozen=True)
class OverdueLine:
    """An item with overdue check-ins: who, since when, and the highest escalation level."""

    number: str
    title: str
    departments: tuple[str, ...]
    oldest_due: date
    days_overdue: int
    level: int


@dataclass(frozen=True)
class BlockedLine:
    """An item its department reports as blocked, with the stated problems."""

    number: str
    title: str
    departments: tuple[str, ...]
    problems: str


@dataclass(frozen=True)
class MilestoneLine:
    """A check-in asking for a milestone's output (时序进度) that was reported late or not yet:
    `submitted_on` is None while it is missing."""

    number: str
    title: str
    department: str
    asks: str
    due_date: date
    submitted_on: date | None


@dataclass(frozen=True)
class ClosedLine:
    """An item closed (销号) in the period: its lead departments, the day and the reason."""

    number: str
    title: str
    departments: tuple[str, ...]
    closed_on: date
    reason: str


@dataclass(frozen=True)
class ReturnLine:
    """A department's review record in the period: reports accepted and returned (退回)."""

    name: str
    accepted: int
    returned: int


@dataclass(frozen=True)
class AwaitingLine:
    """A report waiting for review (待审核) at the report's data date."""

    number: str
    title: str
    department: str
    submitted_on: date
    overdue: bool


@dataclass(frozen=True)
class WeekPoint:
    """Colour counts of the plan's items at the end of one week."""

    day: date
    colours: Mapping[str, int]


@dataclass(frozen=True)
class PaceLine:
    """An item against 序时进度 (`models.progress`): its class, figures and units."""

    number: str
    title: str
    leads: tuple[str, ...]
    supports: tuple[str, ...]
    progress: ItemProgress
    targets: tuple[TargetLine, ...]
    ratio: float | None


@dataclass(frozen=True)
class Review:
    """The computed review report: every figure every renderer shows."""

    plan: PlanRow
    period: Period
    as_of: datetime
    data_until: date
    colours: Mapping[str, int]
    checkins: CheckinCounts
    escalations_by_level: Mapping[int, int]
    extensions_granted: int
    sections: tuple[SectionBlock, ...]
    departments: tuple[DepartmentLine, ...]
    overdue: tuple[OverdueLine, ...]
    unassigned: tuple[tuple[str, str], ...]
    blocked: tuple[BlockedLine, ...]
    weeks: tuple[WeekPoint, ...]
    item_count: int = field(default=0)
    missed_milestones: tuple[MilestoneLine, ...] = field(default=())
    instructions: tuple[InstructionFact, ...] = field(default=())
    instructions_answered: int = 0
    pace: tuple[PaceLine, ...] = field(default=())
    scores: tuple[DepartmentScore, ...] = field(default=())
    orders: Mapping[str, int] = field(default_factory=dict)  # 督办单 issued, by colour

    @property
    def progress_counts(self) -> dict[ItemProgress, int]:
        """Items per 序时进度 class (every class present, vocabulary order)."""
        counts = dict.fromkeys(ItemProgress, 0)
        for line in self.pace:
            counts[line.progress] += 1
        return counts

    closed: tuple[ClosedLine, ...] = field(default=())
    review_returns: tuple[ReturnLine, ...] = field(default=())
    awaiting_review: tuple[AwaitingLine, ...] = field(default=())

    @property
    def summary(self) -> dict[str, object]:
        """Headline figures as JSON-able values (stored on the Report row)."""
        rate = self.checkins.on_time_rate
        return {
            "items": self.item_count,
            "colours": dict(self.colours),
            "checkins_due": self.checkins.due,
            "on_time": self.checkins.on_time,
            "late": self.checkins.late,
            "missing": self.checkins.missing,
            "open": self.checkins.open,
            "on_time_rate": None if rate is None else round(rate, 1),
            "escalations": {str(k): v for k, v in sorted(self.escalations_by_level.items())},
            "extensions_granted": self.extensions_granted,
            "overdue_items": len(self.overdue),
            "unassigned_items": len(self.unassigned),
            "blocked_items": len(self.blocked),
            "instructions": len(self.instructions),
            "instructions_answered": self.instructions_answered,
            "progress": {k.value: v for k, v in self.progress_counts.items()} if self.pace else {},
            "orders": dict(self.orders),
            "closed_items": len(self.closed),
        }
