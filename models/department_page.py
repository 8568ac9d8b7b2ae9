"""A department's own page (本部门督办事项) as pure content: rows in, sections out.

What one department owes across all plans on one local day, from rows its loader read
(`tasks.department_page`), with every concept taken from where it is defined:

- 待报送 — its pending check-ins on items not closed, earliest due first, each with its due
  date, whether it is overdue (`models.ladder.is_overdue`) and by how many calendar days, the
  item's colour (`models.vocabulary.Colour`, stored by the daily pass from `models.rag`) and
  the check-in's escalation level with the policy's name for it.
- 被退回 — its check-ins the office returned and it has not answered again
  (`models.report_review.review_state` is `returned`), with the reason and the new due date.
  A returned check-in is listed here, not again under 待报送.
- 待落实批示 — leader instructions on items it leads that no report has answered yet
  (`models.instruction.InstructionFact`), linked to the check-in whose form answers them.
- 已办结 — items it took part in that are closed now (`models.closure.closed_as_of`).
- 报送记录 — its on-time record: check-ins due by the day, classified as the reports do
  (`models.review_figures.classify` / `count_checkins`, 按时报送率 included).

Every row names the check-in whose form it links to (`checkin_id`, `due_date`); the portal
signs those links. Nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from models.closure import closed_as_of
from models.instruction import InstructionFact
from models.ladder import is_overdue
from models.policy import ReviewRule
from models.report_review import review_state
from models.review import CheckinCounts, CheckinRow
from models.review_figures import classify, count_checkins
from models.vocabulary import (
    AssignmentRole,
    CheckinKind,
    CheckinStatus,
    Colour,
    ReviewDecision,
)

__all__ = [
    "DepartmentCheckin",
    "DepartmentClosure",
    "DepartmentPage",
    "PageRow",
    "assemble_page",
]

NOT_ESCALATED = "未升级"


@dataclass(frozen=True, slots=True)
class DepartmentCheckin:
    """One check-in of the department, with its item and plan, as the loader read it."""

    checkin_id: int
    item_id: int
    plan_id: int
    plan_title: str
    item_number: str
    item_position: int
    item_title: str
    colour: str
    kind: str
    role: str
    phase_key: str
    due_date: date
    status: str
    submitted_at: datetime | None
    escalation_level: int
    review: str | None
    return_reason: str


@dataclass(frozen=True, slots=True)
class DepartmentClosure:
    """One closure of an item the department has check-ins on."""

    item_id: int
    closed_at: datetime
    reopened_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class PageRow:
    """One row of a section: the item, what is owed and the check-in whose form it opens.

    `detail` is the return reason, the instruction's text or the closure's reason; `by` the
    leader who gave an instruction; `since` when it was given or the item closed.
    """

    checkin_id: int
    due_date: date
    plan_title: str
    item_label: str
    kind_label: str
    role_label: str
    colour: str
    colour_label: str
    colour_badge: str
    level: int
    level_label: str
    overdue_days: int | None
    detail: str = ""
    by: str = ""
    since: datetime | None = None


@dataclass(frozen=True)
class DepartmentPage:
    """The sections of one department's page on `today`."""

    department_id: int
    department_name: str
    today: date
    open: tuple[PageRow, ...]
    returned: tuple[PageRow, ...]
    instructions: tuple[PageRow, ...]
    closed: tuple[PageRow, ...]
    record: CheckinCounts

    @property
    def overdue(self) -> int:
        """How many owed check-ins (pending or returned) are overdue."""
        return sum(1 for row in (*self.open, *self.returned) if row.overdue_days is not None)


def _label(row: DepartmentCheckin) -> str:
    number = f"第{row.item_number}项" if row.item_number.isdigit() else row.item_number
    return f"{number} {row.item_title}".strip()


@cache
def _labels(kind: str, role: str, colour: str) -> tuple[str, str, str, str, str]:
    """The labels of a row's kind and role, and its colour's value, label and badge (an
    unknown colour is `none`), computed once per combination (a page has hundreds of rows
    and a handful of these; enum properties per row were a third of assembling a page)."""
    member = Colour.of(colour) or Colour.NONE
    return (
        CheckinKind.label_of(kind),
        AssignmentRole.label_of(role),
        member.value,
        member.label,
        member.badge,
    )


def _page_row(
    row: DepartmentCheckin,
    *,
    today: date,
    level_labels: Mapping[tuple[int, int], str],
    detail: str = "",
    by: str = "",
    since: datetime | None = None,
) -> PageRow:
    kind_label, role_label, colour, colour_label, colour_badge = _labels(
        row.kind, row.role, row.colour
    )
    owed = row.status == CheckinStatus.PENDING
    overdue = is_overdue(row.due_date, today, answered=not owed)
    level = row.escalation_level
    return PageRow(
        checkin_id=row.checkin_id,
        due_date=row.due_date,
        plan_title=row.plan_title,
        item_label=_label(row),
        kind_label=kind_label,
        role_label=role_label,
        colour=colour,
        colour_label=colour_label,
        colour_badge=colour_badge,
        level=level,
        level_label=level_labels.get((row.plan_id, level), f"第{level}级督办")
        if level > 0
        else NOT_ESCALATED,
        overdue_days=(today - row.due_date).days if overdue else None,
        detail=detail,
        by=by,
        since=since,
    )


def _submitted_by(submitted_at: datetime | None, now: datetime) -> datetime | None:
    """The first submission if it happened by `now` (a page at an earlier moment does not
    count later answers)."""
    return submitted_at if submitted_at is not None and submitted_at <= now else None


def _order(row: DepartmentCheckin) -> tuple[date, int, int, int]:
    return (row.due_date, row.plan_id, row.item_position, row.checkin_id)


def _form_checkin(rows: Iterable[DepartmentCheckin]) -> DepartmentCheckin | None:
    """The check-in of one item whose form a row opens: its earliest pending one, else its
    latest answered one (a closed item's pending check-ins are cancelled; the answered ones
    keep the reports), else its latest by due date."""
    ordered = sorted(rows, key=_order)
    pending = [row for row in ordered if row.status == CheckinStatus.PENDING]
    if pending:
        return pending[0]
    answered = [row for row in ordered if row.status == CheckinStatus.SUBMITTED]
    if answered:
        return answered[-1]
    return ordered[-1] if ordered else None


def assemble_page(
    *,
    department_id: int,
    department_name: str,
    now: datetime,
    today: date,
    checkins: Iterable[DepartmentCheckin],
    closures: Iterable[DepartmentClosure],
    instructions: Iterable[InstructionFact],
    review_rules: Mapping[int, ReviewRule],
    level_labels: Mapping[tuple[int, int], str],
) -> DepartmentPage:
    """The department's page at `now` (local day `today`) from its rows (module rules).

    `review_rules` are the plans' review rules by plan id; `level_labels` the policies'
    names of escalation levels by (plan id, level).
    """
    rows = sorted(checkins, key=_order)
    by_item: dict[int, list[DepartmentCheckin]] = {}
    for row in rows:
        by_item.setdefault(row.item_id, []).append(row)
    closed = closed_as_of(
        ((c.item_id, c.closed_at, c.reopened_at) for c in closures if c.item_id in by_item), now
    )
    reasons = {
        c.item_id: c.reason
        for c in sorted(closures, key=lambda c: c.closed_at)
        if c.item_id in closed and c.closed_at == closed[c.item_id]
    }
    open_rows: list[PageRow] = []
    returned: list[PageRow] = []
    for row in rows:
        if row.status != CheckinStatus.PENDING or row.item_id in closed:
            continue
        state = review_state(
            status=row.status,
            review=row.review,
            role=row.role,
            rule=review_rules.get(row.plan_id, ReviewRule()),
        )
        if state is ReviewDecision.RETURNED:
            returned.append(
                _page_row(row, today=today, level_labels=level_labels, detail=row.return_reason)
            )
        else:
            open_rows.append(_page_row(row, today=today, level_labels=level_labels))
    to_answer: list[PageRow] = []
    for fact in sorted(instructions, key=lambda f: (f.given_at, f.id)):
        if fact.answered_at is not None or fact.item_id in closed:
            continue
        target = _form_checkin(
            row for row in by_item.get(fact.item_id, ()) if row.role == AssignmentRole.LEAD
        )
        if target is None:
            continue
        to_answer.append(
            _page_row(
                target,
                today=today,
                level_labels=level_labels,
                detail=fact.text,
                by=fact.leader,
                since=fact.given_at,
            )
        )
    closed_rows: list[PageRow] = []
    for item_id, closed_at in sorted(closed.items(), key=lambda pair: (pair[1], pair[0])):
        target = _form_checkin(by_item[item_id])
        if target is not None:
            closed_rows.append(
                _page_row(
                    target,
                    today=today,
                    level_labels=level_labels,
                    detail=reasons.get(item_id, ""),
                    since=closed_at,
                )
            )
    record = count_checkins(
        [
            classify(
                CheckinRow(
                    id=row.checkin_id,
                    item_id=row.item_id,
                    department_id=department_id,
                    due_date=row.due_date,
                    status=row.status,
                    submitted_at=_submitted_by(row.submitted_at, now),
                ),
                today,
            )
            for row in rows
            if row.status != CheckinStatus.CANCELLED and row.due_date <= today
        ]
    )
    return DepartmentPage(
        department_id=department_id,
        department_name=department_name,
        today=today,
        open=tuple(open_rows),
        returned=tuple(returned),
        instructions=tuple(to_answer),
        closed=tuple(closed_rows),
        record=record,
    )
