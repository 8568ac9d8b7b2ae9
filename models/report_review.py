"""The office's review of reports (审核/退回) as pure rules: no session, no Prefect.

A report (the latest version of a check-in's answer) waits for the supervision office when
the policy's `review` section says its check-in needs review (`needs_review`). The office
accepts it (通过: the check-in is closed) or returns it with a reason (退回: the check-in is
pending again, due `return_due_date`, and its ladder restarts under a new epoch,
`ladder_epoch`). A report left unreviewed past the office's time (`review_due_date`,
`review_overdue`) escalates once to the office's own 主要负责人 (`review_notice_key`).
`refusal` says, in Chinese, why a decision cannot be taken; `select_candidates` is the bulk
filter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from models.calendar import WorkCalendar
from models.clock import local_date
from models.ladder import is_overdue
from models.policy import ReviewRule
from models.review import AwaitingLine, AwaitingReviewRow, ReturnLine, ReviewDecisionRow
from models.vocabulary import AssignmentRole, CheckinStatus, ReviewDecision, SelfStatusValue

__all__ = [
    "ReviewCandidate",
    "ReviewSelection",
    "ladder_epoch",
    "needs_review",
    "refusal",
    "return_due_date",
    "review_due_date",
    "review_notice_key",
    "review_overdue",
    "review_report_lines",
    "review_state",
    "select_candidates",
]

MAX_REASON = 2000
"""The longest return reason kept (characters)."""


def needs_review(rule: ReviewRule, role: str) -> bool:
    """True if a check-in of a department in `role` (lead/support) needs the office's review."""
    if rule.checkins == "none":
        return False
    return rule.checkins == "all" or role == AssignmentRole.LEAD


def review_state(
    *, status: str, review: str | None, role: str, rule: ReviewRule
) -> ReviewDecision | None:
    """Where a check-in stands with the office: `accepted`, `returned` (pending again, not
    yet answered), `pending` (a report arrived and waits for a decision), or None (nothing
    to review: not answered yet, or the policy does not review it)."""
    if not needs_review(rule, role):
        return None
    if review == ReviewDecision.ACCEPTED:
        return ReviewDecision.ACCEPTED
    if status == CheckinStatus.SUBMITTED:
        return ReviewDecision.PENDING
    if review == ReviewDecision.RETURNED and status == CheckinStatus.PENDING:
        return ReviewDecision.RETURNED
    return None


def ladder_epoch(extensions: int, returns: int) -> int:
    """The epoch that keys a check-in's notices: every approved extension and every return
    restarts the ladder under new keys (both only ever grow, so no key repeats)."""
    return extensions + returns


def return_due_date(
    rule: ReviewRule, calendar: WorkCalendar, *, returned_on: date, due_date: date
) -> date:
    """The due date of a check-in returned on `returned_on`: `return_workdays` working days
    later, and never earlier than the due date it already had."""
    return max(due_date, calendar.add_workdays(returned_on, rule.return_workdays))


def review_due_date(rule: ReviewRule, calendar: WorkCalendar, *, submitted_on: date) -> date | None:
    """The last day the office has to review a report that arrived on `submitted_on`
    (`office_workdays` working days later); None when the policy does not chase the office."""
    if rule.office_workdays is None:
        return None
    return calendar.add_workdays(submitted_on, rule.office_workdays)


def review_overdue(
    rule: ReviewRule, calendar: WorkCalendar, *, submitted_on: date, today: date
) -> bool:
    """True if a report that arrived on `submitted_on` and is still undecided on `today` is
    past the office's time (the one definition of overdue, `models.ladder.is_overdue`)."""
    due = review_due_date(rule, calendar, submitted_on=submitted_on)
    return due is not None and is_overdue(due, today, answered=False)


def review_notice_key(checkin_id: int, returns: int) -> str:
    """The business key of the escalation of an unreviewed report: once per check-in and
    review round (the round is the number of returns before this report)."""
    return f"checkin:{checkin_id}:review_overdue:r{returns}"


def refusal(
    *,
    status: str,
    review: str | None,
    needed: bool,
    decision: ReviewDecision,
    reason: str,
    checkin_id: int,
) -> str | None:
    """Why `decision` cannot be taken on check-in `checkin_id`, in Chinese; None if it can.

    Only a submitted report that needs review and is not accepted yet can be decided; a
    return needs a reason.
    """
    if decision == ReviewDecision.RETURNED and not reason.strip():
        return "退回必须填写理由（--reason），部门将按理由修改后重新报送。"
    if len(reason) > MAX_REASON:
        return f"退回理由过长（{len(reason)}字），请控制在{MAX_REASON}字以内。"
    if review == ReviewDecision.ACCEPTED:
        return f"报送 {checkin_id} 已审核通过，不能再次审核。"
    if review == ReviewDecision.RETURNED and status == CheckinStatus.PENDING:
        return f"报送 {checkin_id} 已退回，正在等待部门重新报送，不能再次审核。"
    if status != CheckinStatus.SUBMITTED:
        return (
            f"报送 {checkin_id} 的状态是{CheckinStatus.label_of(status)}，"
            "只有已报送、待审核的报送才能审核。"
        )
    if not needed:
        return f"报送 {checkin_id} 按督办策略无需审核（策略 review 未包含此类报送）。"
    return None


@dataclass(frozen=True, slots=True)
class ReviewCandidate:
    """A report waiting for the office: its check-in, item, plan, department, the latest
    version's self-reported status, and when the report arrived."""

    checkin_id: int
    item_id: int
    plan_id: int
    department_id: int
    submission_id: int
    self_status: str
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewSelection:
    """A bulk selection: every field given must match (None: any). `on_track_only` keeps
    the reports whose department says 正常推进 (or 已完成)."""

    plan_id: int | None = None
    item_id: int | None = None
    department_id: int | None = None
    on_track_only: bool = False

    @property
    def empty(self) -> bool:
        """True when nothing narrows the selection (a bulk decision then needs `--all`)."""
        return (
            self.plan_id is None
            and self.item_id is None
            and self.department_id is None
            and not self.on_track_only
        )

    def describe(self) -> str:
        """The selection in words for the audit trail (`batch`), e.g.
        `plan=1 item=4 department=7 on_track`."""
        parts = [
            f"{name}={value}"
            for name, value in (
                ("plan", self.plan_id),
                ("item", self.item_id),
                ("department", self.department_id),
            )
            if value is not None
        ]
        if self.on_track_only:
            parts.append("on_track")
        return " ".join(parts) or "all"


ON_TRACK_STATUSES = frozenset({SelfStatusValue.ON_TRACK.value, SelfStatusValue.DONE.value})


def matches(candidate: ReviewCandidate, selection: ReviewSelection) -> bool:
    """True if `candidate` is in `selection`."""
    return (
        (selection.plan_id is None or candidate.plan_id == selection.plan_id)
        and (selection.item_id is None or candidate.item_id == selection.item_id)
        and (selection.department_id is None or candidate.department_id == selection.department_id)
        and (not selection.on_track_only or candidate.self_status in ON_TRACK_STATUSES)
    )


def select_candidates(
    candidates: Iterable[ReviewCandidate], selection: ReviewSelection
) -> list[ReviewCandidate]:
    """The candidates in `selection`, oldest report first (then by check-in id)."""
    chosen = [candidate for candidate in candidates if matches(candidate, selection)]
    return sorted(chosen, key=lambda c: (c.submitted_at, c.checkin_id))


def review_report_lines(
    *,
    decisions: Iterable[ReviewDecisionRow],
    awaiting: Iterable[AwaitingReviewRow],
    names: Mapping[int, str],
    items: Mapping[int, tuple[str, str]],
    start: datetime,
    end: datetime,
) -> tuple[tuple[ReturnLine, ...], tuple[AwaitingLine, ...]]:
    """The review figures of a period report: per department, reports accepted and
    returned between `start` and `end` (most returns first, then by name), and the reports
    still waiting for review (oldest first). `items` maps an item id to (number, title)."""
    accepted: Counter[int] = Counter()
    returned: Counter[int] = Counter()
    for row in decisions:
        if start <= row.decided_at <= end:
            target = returned if row.decision == ReviewDecision.RETURNED else accepted
            target[row.department_id] += 1
    departments = set(accepted) | set(returned)
    returns = sorted(
        (
            ReturnLine(names.get(d, "未知部门"), accepted.get(d, 0), returned.get(d, 0))
            for d in departments
        ),
        key=lambda line: (-line.returned, line.name),
    )
    waiting = sorted(
        (
            AwaitingLine(
                items[row.item_id][0],
                items[row.item_id][1],
                names.get(row.department_id, "未知部门"),
                local_date(row.submitted_at),
                row.overdue,
            )
            for row in awaiting
            if row.item_id in items
        ),
        key=lambda line: (line.submitted_on, line.number),
    )
    return tuple(returns), tuple(waiting)
