"""The check-in schedule: which reports a department owes in each phase, and when.

Callers turn ORM `Phase` rows into `PhaseWindow` values (`PhaseWindow.of(row)`), validate
them with `validate_phases`, and call `plan_checkins`. Every due date is a working day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Literal, Protocol

from models.calendar import WorkCalendar
from models.errors import InputError
from models.policy import PhaseRule, SupervisionPolicy

__all__ = [
    "CheckinSpec",
    "PhaseWindow",
    "default_phase_windows",
    "plan_checkins",
    "validate_phases",
]

Role = Literal["lead", "support"]


class _PhaseLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def start_date(self) -> date: ...
    @property
    def end_date(self) -> date: ...


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    """A phase as a plain value: key (`mobilize`/`implement`/`review`) and inclusive dates."""

    key: str
    start_date: date
    end_date: date

    @classmethod
    def of(cls, phase: _PhaseLike) -> PhaseWindow:
        """Copy any object with `key`, `start_date` and `end_date` (an ORM `Phase` row)."""
        return cls(key=phase.key, start_date=phase.start_date, end_date=phase.end_date)


@dataclass(frozen=True, slots=True)
class CheckinSpec:
    """One check-in a department owes: `seq` numbers them from 1 within a phase."""

    phase_key: str
    seq: int
    kind: str
    due_date: date


def validate_phases(phases: list[PhaseWindow]) -> None:
    """Raise InputError (Chinese) if a phase ends before it starts, phases repeat a key,
    are out of date order, or overlap. Returns None for a valid (possibly empty) list."""
    seen: set[str] = set()
    for phase in phases:
        if phase.end_date < phase.start_date:
            raise InputError(
                f"阶段 {phase.key} 的结束日期 {phase.end_date} 早于开始日期 {phase.start_date}"
            )
        if phase.key in seen:
            raise InputError(f"阶段 {phase.key} 重复出现")
        seen.add(phase.key)
    for before, after in pairwise(phases):
        if after.start_date < before.start_date:
            raise InputError(f"阶段顺序错误：{after.key} 开始于 {before.key} 之前")
        if after.start_date <= before.end_date:
            raise InputError(
                f"阶段 {before.key}（至 {before.end_date}）与 {after.key}"
                f"（自 {after.start_date}）的日期重叠"
            )


def default_phase_windows(policy: SupervisionPolicy, year: int) -> list[PhaseWindow]:
    """The policy's default phases placed in `year`, for a plan that names none."""
    windows = []
    for template in policy.default_phases:
        start, end = template.dates(year)
        windows.append(PhaseWindow(key=template.key, start_date=start, end_date=end))
    return windows


def plan_checkins(
    phases: list[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
    *,
    role: Role,
    not_before: date | None = None,
) -> list[CheckinSpec]:
    """The check-ins one department in `role` owes over `phases`, in due-date order.

    Support departments owe none unless `policy.support_departments_report`. Phases without a
    rule in the policy ask for nothing. `not_before` drops check-ins due before that date
    (for a plan whose supervision starts mid-year); `seq` still counts them, so numbering is
    stable. Raises InputError for invalid phases (see `validate_phases`).
    """
    validate_phases(phases)
    if role == "support" and not policy.support_departments_report:
        return []
    specs: list[CheckinSpec] = []
    for phase in phases:
        rule = policy.rule_for(phase.key)
        if rule is None:
            continue
        for seq, due in enumerate(_due_dates(phase, rule, calendar), start=1):
            if not_before is None or due >= not_before:
                specs.append(CheckinSpec(phase.key, seq, rule.kind, due))
    return specs


def _due_dates(phase: PhaseWindow, rule: PhaseRule, calendar: WorkCalendar) -> list[date]:
    if rule.cadence == "once":
        return [_on_workday(phase.end_date, phase, calendar)]
    step = 1 if rule.cadence == "monthly" else 3
    dues: list[date] = []
    year, month = phase.start_date.year, phase.start_date.month
    while (year, month) <= (phase.end_date.year, phase.end_date.month):
        if step == 1 or month % 3 == 0:
            nominal = _day_in_month(year, month, rule.day)
            if phase.start_date <= nominal <= phase.end_date:
                due = _on_workday(nominal, phase, calendar)
                if not dues or due > dues[-1]:
                    dues.append(due)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dues


def _on_workday(nominal: date, phase: PhaseWindow, calendar: WorkCalendar) -> date:
    """The last workday on or before `nominal`, or the next one if that leaves the phase."""
    due = calendar.previous_workday_on_or_before(nominal)
    if due < phase.start_date:
        due = calendar.next_workday_on_or_after(nominal)
    return due


def _day_in_month(year: int, month: int, day: int) -> date:
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1
