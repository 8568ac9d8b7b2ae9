"""考核 scores from the database: load the period's facts, score them, export the table.

`load_score_inputs` reads what `models.scoring` needs through the report's loader
(`tasks.reporting.data.load_review_inputs`, the same rows the 通报 counts), adds each item's
序时进度 (`models.progress`), and `department_scores` applies the plan's `scoring:` rule.
`write_xlsx` writes the table offices finish 考核 in: a 考核得分 sheet (one row per department,
ranked) and a 扣分明细 sheet with every deduction behind every point.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.item_schedule import stored_schedule
from models.plan import Item, Plan
from models.policy import default_policy, parse_policy
from models.progress import ItemPaceFacts, PaceVerdict, TargetFigure, item_pace
from models.review import Period, ReviewInputs
from models.review_figures import classify
from models.scoring import (
    CheckinFact,
    DepartmentScore,
    EscalationFact,
    InstructionFact,
    ReturnFact,
    ScoreInputs,
    ScoringRule,
    TaskFact,
    score_departments,
)
from models.supervision import Checkin, CheckinReview
from models.vocabulary import DeductionKind, ReviewDecision
from tasks.calendar_store import work_calendar
from tasks.reporting.data import choose_period, load_plan_row, load_review_inputs


@dataclass(frozen=True)
class ScoreSheet:
    """A period's scores with what they were computed from."""

    plan_title: str
    period: Period
    as_of: datetime
    rule: ScoringRule
    scores: list[DepartmentScore]
    progress: dict[int, PaceVerdict]


def item_progress(
    inputs: ReviewInputs, *, start: date, ends: dict[int, date]
) -> dict[int, PaceVerdict]:
    """Each item's 序时进度 class on the as-of date (`models.progress.item_pace`)."""
    as_of_day = local_date(inputs.as_of)
    latest = {s.item_id: s for s in inputs.submissions if s.submitted_at <= inputs.as_of}
    targets: dict[int, list[TargetFigure]] = defaultdict(list)
    for target in inputs.targets:
        submission = latest.get(target.item_id)
        raw = None if submission is None else submission.values.get(str(target.id))
        reported = (
            float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        )
        targets[target.item_id].append(TargetFigure(target.comparator, target.value, reported))
    missed: dict[int, int] = defaultdict(int)
    for checkin in inputs.checkins:
        if classify(checkin, as_of_day) == "missing":
            missed[checkin.item_id] += 1
    year_end = date(inputs.plan.year, 12, 31)
    verdicts: dict[int, PaceVerdict] = {}
    for item in inputs.items:
        submission = latest.get(item.id)
        facts = ItemPaceFacts(
            targets=tuple(targets.get(item.id, ())),
            latest_status=None if submission is None else submission.status,
            missed=missed.get(item.id, 0),
            reported=submission is not None,
        )
        end = ends.get(item.id, year_end)
        verdicts[item.id] = item_pace(facts, start=min(start, end), end=end, as_of=as_of_day)
    return verdicts


def _plan_facts(session: Session, plan_id: int) -> tuple[Plan, dict[int, date]]:
    """The plan and each item's own dated deadline (完成时限), where it has one."""
    plan = session.get_one(Plan, plan_id)  # load_plan_row refused a missing plan already
    ends: dict[int, date] = {}
    for item_id, deadline in session.execute(
        select(Item.id, Item.deadline).where(Item.plan_id == plan_id)
    ):
        parsed, _ = stored_schedule(deadline, ())
        if parsed is not None and parsed.due is not None:
            ends[item_id] = parsed.due
    return plan, ends


def _returns(session: Session, inputs: ReviewInputs) -> list[ReturnFact]:
    """The reports the office returned (退回) up to the as-of moment."""
    rows = session.execute(
        select(Checkin.item_id, Checkin.department_id, Checkin.id, CheckinReview.decided_at)
        .join(CheckinReview, CheckinReview.checkin_id == Checkin.id)
        .join(Item, Checkin.item_id == Item.id)
        .where(
            Item.plan_id == inputs.plan.id,
            CheckinReview.decision == ReviewDecision.RETURNED,
            CheckinReview.decided_at <= inputs.as_of,
        )
    )
    return [ReturnFact(item, dept, checkin, local_date(at)) for item, dept, checkin, at in rows]


@dataclass(frozen=True)
class Accountability:
    """Each item's 序时进度, each department's score, and the rule that scored them."""

    progress: dict[int, PaceVerdict]
    scores: list[DepartmentScore]
    rule: ScoringRule


def accountability(*, session: Session, inputs: ReviewInputs) -> Accountability:
    """Each item's 序时进度 and each department's score for the rows the report loaded."""
    plan, ends = _plan_facts(session, inputs.plan.id)
    policy = parse_policy(plan.policy) if plan.policy else default_policy()
    start = local_date(plan.started_at) if plan.started_at else date(inputs.plan.year, 1, 1)
    progress = item_progress(inputs, start=start, ends=ends)
    as_of_day = local_date(inputs.as_of)
    items = {item.id: item for item in inputs.items}
    score_inputs = ScoreInputs(
        start=inputs.period.start,
        until=min(inputs.period.end, as_of_day),
        as_of=as_of_day,
        departments={d.id: d.name for d in inputs.departments},
        tasks=[
            TaskFact(
                a.item_id, items[a.item_id].number, items[a.item_id].title, a.department_id, a.role
            )
            for a in inputs.assignments
            if a.item_id in items
        ],
        checkins=[
            CheckinFact(
                c.id,
                c.item_id,
                c.department_id,
                c.due_date,
                None if c.submitted_at is None else local_date(c.submitted_at),
            )
            for c in inputs.checkins
        ],
        escalations=[
            EscalationFact(
                e.item_id, e.department_id, e.checkin_id, e.level, local_date(e.decided_at)
            )
            for e in inputs.escalations
            if e.department_id is not None
        ],
        returns=_returns(session, inputs),
        instructions=[
            InstructionFact(
                i.item_id,
                local_date(i.given_at),
                None if i.answered_at is None else local_date(i.answered_at),
            )
            for i in inputs.instructions
        ],
        progress=progress,
    )
    scores = score_departments(score_inputs, policy.scoring, work_calendar(session=session))
    return Accountability(progress, scores, policy.scoring)


def department_scores(
    *,
    session: Session,
    plan_id: int,
    as_of: datetime,
    quarter: str | None = None,
    year: bool = False,
) -> ScoreSheet:
    """Score every department of the plan for the quarter (default: the current one) or year."""
    plan_row = load_plan_row(session=session, plan_id=plan_id)
    period = choose_period(plan=plan_row, as_of=as_of, quarter=quarter, year=year)
    inputs = load_review_inputs(session=session, plan=plan_row, period=period, as_of=as_of)
    found = accountability(session=session, inputs=inputs)
    return ScoreSheet(plan_row.title, period, as_of, found.rule, found.scores, found.progress)


SCORE_COLUMNS = (
    "排名",
    "部门",
    "得分",
    "等次",
    "任务数（加权）",
    "任务平均分",
    "负荷系数",
    "按时",
    "逾期",
    "未报",
    *(kind.label + "扣分" for kind in DeductionKind),
)


def score_rows(sheet: ScoreSheet) -> list[list[str | float | int]]:
    """The 考核得分 table: one row per department in rank order (`SCORE_COLUMNS`)."""
    return [
        [
            line.rank,
            line.name,
            line.score,
            line.grade,
            line.weighted_tasks,
            line.mean,
            line.load_factor,
            line.on_time,
            line.late,
            line.missing,
            *(line.lost(kind) for kind in DeductionKind),
        ]
        for line in sheet.scores
    ]


DETAIL_COLUMNS = ("部门", "任务序号", "任务", "角色", "扣分项", "情况", "扣分", "任务得分")


def detail_rows(sheet: ScoreSheet) -> list[list[str | float]]:
    """The 扣分明细 table: every deduction of every task (a task without any shows once)."""
    rows: list[list[str | float]] = []
    for line in sheet.scores:
        for task in line.tasks:
            role = "牵头" if task.role == "lead" else "配合"
            if not task.deductions:
                rows.append(
                    [line.name, task.item_number, task.title, role, "无", "", 0.0, task.score]
                )
            for deduction in task.deductions:
                rows.append(
                    [
                        line.name,
                        task.item_number,
                        task.title,
                        role,
                        deduction.kind.label,
                        deduction.detail,
                        deduction.points,
                        task.score,
                    ]
                )
    return rows


def write_xlsx(sheet: ScoreSheet, path: Path) -> Path:
    """Write the two sheets to `path` (an .xlsx) and return it."""
    book = Workbook()
    summary = book.create_sheet("考核得分", 0)
    book.remove(book.worksheets[1])
    day = local_date(sheet.as_of).isoformat()
    title = f"{sheet.plan_title} {sheet.period.title}部门考核得分（截至{day}）"
    summary.append([title])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(list(SCORE_COLUMNS))
    for row in score_rows(sheet):
        summary.append(row)
    details = book.create_sheet("扣分明细")
    details.append(list(DETAIL_COLUMNS))
    for detail in detail_rows(sheet):
        details.append(detail)
    for worksheet, header_row in ((summary, 2), (details, 1)):
        for cell in worksheet[header_row]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center", wrap_text=True)
        worksheet.freeze_panes = worksheet.cell(row=header_row + 1, column=1)
    summary.column_dimensions["B"].width = 18
    details.column_dimensions["C"].width = 40
    details.column_dimensions["F"].width = 48
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
