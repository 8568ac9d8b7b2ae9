"""考核: each department's score for a quarter or a year, every point traceable to its facts.

The rule (documented with its reasoning in `docs/scoring.md`; every number is a policy setting,
`scoring:` in the policy file):

- A department's *tasks* are the items it leads (weight 1) or supports (weight
  `support_weight`, 0.5).
- Each task starts at `base` (100) and loses points for what happened to it in the period:
  a check-in reported late `late_points` (1) plus `late_points_per_workday` (0.2) per working
  day late, at most `late_cap` (3) a check-in; a check-in due and not reported by the as-of date
  `missing_points` (3); an escalation, by the highest level it reached per check-in,
  `escalation_points` (1级 0.5, 2级 1 = 黄牌, 3级 2 = 红牌); a report returned (退回)
  `returned_points` (0.5); a leader's instruction on an item it leads left unanswered
  `instruction_points` (2); an item it leads 欠序时进度 on the as-of date `behind_points` (1).
  A task never goes below `floor` (0).
- The department's mean is the weighted mean of its task scores, so carrying many tasks does
  not by itself cost points; the load factor K (`load_factors`: 1.0 from 6 weighted tasks,
  0.97 from 3, else 0.95) then rewards carrying load, as peers' 考核 rules do. Score = mean × K,
  rounded to two decimals half up (四舍五入); grade by `grades` (优秀 ≥ 95, 良好 ≥ 85,
  合格 ≥ 70, else 不合格).
- Rank by score, then on-time rate, then name; equal scores and rates share a rank.

Pure: the caller loads the facts (`tasks.scoring`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.calendar import WorkCalendar
from models.progress import PaceVerdict
from models.vocabulary import AssignmentRole, DeductionKind, ItemProgress

_CENT = Decimal("0.01")


class ScoringRule(BaseModel):
    """The 考核 rule's settings (`scoring:` in the policy; defaults documented above)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: float = Field(default=100.0, gt=0)
    floor: float = Field(default=0.0, ge=0)
    support_weight: float = Field(default=0.5, ge=0, le=1)
    late_points: float = Field(default=1.0, ge=0)
    late_points_per_workday: float = Field(default=0.2, ge=0)
    late_cap: float = Field(default=3.0, ge=0)
    missing_points: float = Field(default=3.0, ge=0)
    escalation_points: dict[int, float] = Field(default_factory=lambda: {1: 0.5, 2: 1.0, 3: 2.0})
    returned_points: float = Field(default=0.5, ge=0)
    instruction_points: float = Field(default=2.0, ge=0)
    behind_points: float = Field(default=1.0, ge=0)
    load_factors: tuple[tuple[float, float], ...] = ((6.0, 1.0), (3.0, 0.97), (0.0, 0.95))
    grades: tuple[tuple[float, str], ...] = (
        (95.0, "优秀"),
        (85.0, "良好"),
        (70.0, "合格"),
        (0.0, "不合格"),
    )

    @field_validator("load_factors", "grades")
    @classmethod
    def _descending(
        cls, steps: tuple[tuple[float, object], ...]
    ) -> tuple[tuple[float, object], ...]:
        thresholds = [step[0] for step in steps]
        if not steps or thresholds != sorted(thresholds, reverse=True) or thresholds[-1] != 0:
            raise ValueError("分档应按下限从高到低排列，最后一档下限为0")
        return steps

    def escalation_for(self, level: int) -> float:
        """Points for an escalation that reached `level` (the highest level listed beyond it)."""
        if level in self.escalation_points:
            return self.escalation_points[level]
        known = [lvl for lvl in self.escalation_points if lvl <= level]
        return self.escalation_points[max(known)] if known else 0.0

    def load_factor(self, weighted_tasks: float) -> float:
        """K for a department carrying `weighted_tasks`."""
        return next(k for minimum, k in self.load_factors if weighted_tasks >= minimum)

    def grade(self, score: float) -> str:
        """The grade word of `score`."""
        return next(name for minimum, name in self.grades if score >= minimum)


@dataclass(frozen=True, slots=True)
class TaskFact:
    """A department's part in an item: it leads or supports it."""

    item_id: int
    number: str
    title: str
    department_id: int
    role: str


@dataclass(frozen=True, slots=True)
class CheckinFact:
    """A check-in due in the period; `submitted_on` is the local date first reported, if any."""

    checkin_id: int
    item_id: int
    department_id: int
    due_date: date
    submitted_on: date | None


@dataclass(frozen=True, slots=True)
class EscalationFact:
    """An escalation notice sent in the period."""

    item_id: int
    department_id: int
    checkin_id: int | None
    level: int
    on: date


@dataclass(frozen=True, slots=True)
class ReturnFact:
    """A report returned (退回) in the period."""

    item_id: int
    department_id: int
    checkin_id: int
    on: date


@dataclass(frozen=True, slots=True)
class InstructionFact:
    """A leader's instruction on an item, given in or before the period, and its answer."""

    item_id: int
    given_on: date
    answered_on: date | None


@dataclass(frozen=True)
class ScoreInputs:
    """Everything the rule reads for one period."""

    start: date
    until: date  # the last day counted: the period's end or the as-of date, the earlier
    as_of: date
    departments: Mapping[int, str]
    tasks: Sequence[TaskFact]
    checkins: Sequence[CheckinFact] = ()
    escalations: Sequence[EscalationFact] = ()
    returns: Sequence[ReturnFact] = ()
    instructions: Sequence[InstructionFact] = ()
    progress: Mapping[int, PaceVerdict] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deduction:
    """Points lost on one task, with the fact that cost them (Chinese `detail`)."""

    kind: DeductionKind
    item_number: str
    detail: str
    points: float


@dataclass(frozen=True)
class TaskScore:
    """One task's score: base minus its deductions, not below the floor."""

    item_number: str
    title: str
    role: str
    weight: float
    deductions: tuple[Deduction, ...]
    score: float


@dataclass(frozen=True)
class DepartmentScore:
    """A department's score, grade and rank, with every task and deduction behind them."""

    department_id: int
    name: str
    tasks: tuple[TaskScore, ...]
    weighted_tasks: float
    mean: float
    load_factor: float
    score: float
    grade: str
    rank: int
    on_time: int
    late: int
    missing: int

    @property
    def deductions(self) -> tuple[Deduction, ...]:
        """Every deduction of every task, in task order."""
        return tuple(d for task in self.tasks for d in task.deductions)

    def lost(self, kind: DeductionKind) -> float:
        """Points lost for `kind` across all tasks (before weighting)."""
        return _points(sum(d.points for d in self.deductions if d.kind == kind))

    @property
    def on_time_rate(self) -> float | None:
        """On-time check-ins as a percentage of those settled, or None."""
        settled = self.on_time + self.late + self.missing
        return None if settled == 0 else 100.0 * self.on_time / settled


def _points(value: float) -> float:
    """`value` to two decimals, halves rounded up (四舍五入) as an office's spreadsheet does.

    Python's `round` works on the binary value: (700 + 95.4) / 8 is stored as 99.42499…, which
    `round` makes 99.42 where an office writes 99.43. The shortest decimal that reads back as
    the same float (`repr`) is the number the arithmetic meant, so that is what is rounded.
    """
    return float(Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP))


def _checkin_deductions(
    checkin: CheckinFact, *, rule: ScoringRule, as_of: date, calendar: WorkCalendar, number: str
) -> tuple[str, Deduction | None]:
    """`on_time`/`late`/`missing`/`open` and the deduction it costs."""
    due = checkin.due_date.isoformat()
    if checkin.submitted_on is not None:
        if checkin.submitted_on <= checkin.due_date:
            return "on_time", None
        days = max(1, calendar.workdays_between(checkin.due_date, checkin.submitted_on))
        points = min(rule.late_cap, rule.late_points + rule.late_points_per_workday * days)
        detail = f"{due}应报，{checkin.submitted_on.isoformat()}报送，逾期{days}个工作日"
        return "late", Deduction(DeductionKind.LATE, number, detail, _points(points))
    if checkin.due_date < as_of:
        detail = f"{due}应报，截至{as_of.isoformat()}未报送"
        return "missing", Deduction(
            DeductionKind.MISSING, number, detail, _points(rule.missing_points)
        )
    return "open", None


def score_departments(
    inputs: ScoreInputs, rule: ScoringRule, calendar: WorkCalendar
) -> list[DepartmentScore]:
    """Every department with a task, scored and ranked (module rules)."""
    in_period = [c for c in inputs.checkins if inputs.start <= c.due_date <= inputs.until]
    by_task: dict[tuple[int, int], list[Deduction]] = defaultdict(list)
    outcomes: dict[int, list[str]] = defaultdict(list)
    numbers = {task.item_id: task.number for task in inputs.tasks}
    for checkin in sorted(in_period, key=lambda c: (c.due_date, c.checkin_id)):
        number = numbers.get(checkin.item_id, "")
        outcome, deduction = _checkin_deductions(
            checkin, rule=rule, as_of=inputs.as_of, calendar=calendar, number=number
        )
        outcomes[checkin.department_id].append(outcome)
        if deduction is not None:
            by_task[(checkin.department_id, checkin.item_id)].append(deduction)
    highest: dict[tuple[int, int, int | None], EscalationFact] = {}
    for escalation in inputs.escalations:
        if not inputs.start <= escalation.on <= inputs.until:
            continue
        reached = (escalation.department_id, escalation.item_id, escalation.checkin_id)
        if reached not in highest or escalation.level > highest[reached].level:
            highest[reached] = escalation
    for (department_id, item_id, _), escalation in sorted(highest.items(), key=lambda kv: kv[1].on):
        detail = f"{escalation.on.isoformat()}被{escalation.level}级督办"
        by_task[(department_id, item_id)].append(
            Deduction(
                DeductionKind.ESCALATION,
                numbers.get(item_id, ""),
                detail,
                _points(rule.escalation_for(escalation.level)),
            )
        )
    for returned in sorted(inputs.returns, key=lambda r: (r.on, r.checkin_id)):
        if inputs.start <= returned.on <= inputs.until:
            by_task[(returned.department_id, returned.item_id)].append(
                Deduction(
                    DeductionKind.RETURNED,
                    numbers.get(returned.item_id, ""),
                    f"{returned.on.isoformat()}报告被退回",
                    _points(rule.returned_points),
                )
            )
    leads = [task for task in inputs.tasks if task.role == AssignmentRole.LEAD]
    for task in leads:
        key = (task.department_id, task.item_id)
        for instruction in inputs.instructions:
            answered = (
                instruction.answered_on is not None and instruction.answered_on <= inputs.until
            )
            if (
                instruction.item_id == task.item_id
                and instruction.given_on <= inputs.until
                and not answered
            ):
                given, until = instruction.given_on.isoformat(), inputs.until.isoformat()
                detail = f"{given}领导批示，截至{until}未报落实情况"
                by_task[key].append(
                    Deduction(
                        DeductionKind.INSTRUCTION,
                        task.number,
                        detail,
                        _points(rule.instruction_points),
                    )
                )
        verdict = inputs.progress.get(task.item_id)
        if verdict is not None and verdict.progress == ItemProgress.BEHIND:
            ratio = "" if verdict.ratio is None else f"（完成序时进度的{verdict.ratio * 100:.0f}%）"
            by_task[key].append(
                Deduction(
                    DeductionKind.BEHIND,
                    task.number,
                    f"截至{inputs.as_of.isoformat()}欠序时进度{ratio}",
                    _points(rule.behind_points),
                )
            )
    tasks_of: dict[int, list[TaskScore]] = defaultdict(list)
    for task in sorted(
        inputs.tasks, key=lambda t: (t.department_id, t.role != AssignmentRole.LEAD, t.item_id)
    ):
        if task.department_id not in inputs.departments:
            continue
        deductions = tuple(by_task.get((task.department_id, task.item_id), ()))
        weight = 1.0 if task.role == AssignmentRole.LEAD else rule.support_weight
        score = max(rule.floor, rule.base - sum(d.points for d in deductions))
        tasks_of[task.department_id].append(
            TaskScore(task.number, task.title, task.role, weight, deductions, _points(score))
        )
    unranked: list[DepartmentScore] = []
    for department_id, tasks in tasks_of.items():
        weighted = sum(t.weight for t in tasks)
        mean = sum(t.weight * t.score for t in tasks) / weighted if weighted else rule.base
        k = rule.load_factor(weighted)
        score = _points(mean * k)
        counts = outcomes.get(department_id, [])
        unranked.append(
            DepartmentScore(
                department_id=department_id,
                name=inputs.departments[department_id],
                tasks=tuple(tasks),
                weighted_tasks=weighted,
                mean=_points(mean),
                load_factor=k,
                score=score,
                grade=rule.grade(score),
                rank=0,
                on_time=counts.count("on_time"),
                late=counts.count("late"),
                missing=counts.count("missing"),
            )
        )
    return _ranked(unranked)


def _ranked(scores: list[DepartmentScore]) -> list[DepartmentScore]:
    """Sorted by score, on-time rate, name; equal score and rate share a rank."""

    def order(line: DepartmentScore) -> tuple[float, float, str]:
        rate = line.on_time_rate
        return (-line.score, -(rate if rate is not None else -1.0), line.name)

    ranked: list[DepartmentScore] = []
    previous: tuple[float, float] | None = None
    rank = 0
    for position, line in enumerate(sorted(scores, key=order), start=1):
        key = order(line)[:2]
        if key != previous:
            rank, previous = position, key
        ranked.append(replace(line, rank=rank))
    return ranked
