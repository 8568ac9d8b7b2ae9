"""The office's review of reports (审核/退回): decisions, bulk decisions, the waiting list.

Repository functions; the caller owns the transaction and commits. Each decision writes, in
the caller's transaction: one `checkin_review` row (who, when, decision, reason), the
check-in's new state, its domain event (`duban.checkin.accepted` / `duban.checkin.returned`)
and, for a return, the department's email in the outbox (reason and form link), or under
`delivery: {departments: digest}` a `returned` notice and its entry in the department's
next digest (`tasks.digest.hold_return`). A decision
on a report already decided raises `InputError` before anything is written.

Plain functions other parts plug into (the Prefect inbox, the CLI):

- `accept_report(session, checkin_id, reviewer, at)`;
- `return_report(session, checkin_id, reviewer, reason, at)`;
- `decide_selection(session, selection, decision, reviewer, at, reason=...)` (bulk);
- `pending_reviews(session, selection, as_of)`: the reports waiting for the office.

The daily pass reads `review_pass_facts` (reports waiting past the office's time) and
writes the escalations' emails with `enqueue_review_escalation_emails`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import LOCAL_TZ, local_date
from models.daily_pass import item_label
from models.directory import Department
from models.errors import InputError, NotFoundError
from models.plan import Item, Plan
from models.policy import ReviewRule, SupervisionPolicy, parse_policy
from models.report_review import (
    ReviewCandidate,
    ReviewSelection,
    needs_review,
    refusal,
    return_due_date,
    review_due_date,
    review_overdue,
    select_candidates,
)
from models.settings import Settings, get_settings
from models.supervision import LATEST_FIRST, Checkin, CheckinReview, Notice, Submission
from models.vocabulary import CheckinStatus, EventType, NoticeKind, ReviewDecision
from notifications.context import build_item_context, item_context, load_item
from notifications.outbox import HeaderInjectionError, NewMessage, enqueue_message, insert_messages
from notifications.rendering import format_date, render_message
from tasks.calendar_store import work_calendar
from tasks.digest import hold_return
from tasks.events import record_event, related
from tasks.submissions import load_checkin

logger = logging.getLogger(__name__)

__all__ = [
    "PendingReview",
    "ReviewCounts",
    "ReviewOutcome",
    "accept_report",
    "decide_selection",
    "enqueue_review_escalation_emails",
    "pending_reviews",
    "return_report",
    "review_counts",
    "review_pass_facts",
]


@dataclass(frozen=True)
class ReviewOutcome:
    """One decision taken: the row's id, the check-in, the decision and, for a return, the
    new due date and the outbox key of the department's email ("" when it has no address,
    or when the return waits for the department's digest: then `digest_notice` is the key
    of the `returned` notice its digest entry carries)."""

    review_id: int
    checkin_id: int
    decision: ReviewDecision
    due_date: date | None = None
    email_key: str = ""
    digest_notice: str = ""


@dataclass(frozen=True)
class PendingReview:
    """A report waiting for the office, with what a reviewer reads to decide."""

    candidate: ReviewCandidate
    item_label: str
    department_name: str
    version: int
    narrative: str
    returns: int
    review_due: date | None
    overdue: bool


def _policy_of(plan: Plan) -> SupervisionPolicy:
    return parse_policy(plan.policy or None)


def _latest(session: Session, checkin_id: int) -> Submission | None:
    return session.scalars(
        select(Submission).where(Submission.checkin_id == checkin_id).order_by(*LATEST_FIRST)
    ).first()


def _decide(
    *,
    session: Session,
    checkin_id: int,
    decision: ReviewDecision,
    reviewer: str,
    reason: str,
    at: datetime,
    batch: str,
    calendar: WorkCalendar | None,
    settings: Settings | None,
) -> ReviewOutcome:
    reviewer = reviewer.strip()
    reason = reason.strip()
    if not reviewer:
        raise InputError("请填写审核人（--reviewer）。")
    checkin = load_checkin(session=session, checkin_id=checkin_id, for_update=True)
    rule = _policy_of(checkin.item.plan).review
    problem = refusal(
        status=checkin.status,
        review=checkin.review,
        needed=needs_review(rule, checkin.role),
        decision=decision,
        reason=reason,
        checkin_id=checkin.id,
    )
    submission = _latest(session, checkin.id) if problem is None else None
    if problem is None and submission is None:
        problem = f"报送 {checkin.id} 还没有任何报送内容，无法审核。"
    if problem is not None or submission is None:
        raise InputError(problem or "")
    previous = checkin.due_date
    due: date | None = None
    if decision == ReviewDecision.RETURNED:
        calendar = calendar or work_calendar(session=session)
        due = return_due_date(rule, calendar, returned_on=local_date(at), due_date=previous)
    row = CheckinReview(
        checkin_id=checkin.id,
        submission_id=submission.id,
        decision=decision,
        reason=reason,
        reviewer=reviewer[:100],
        decided_at=at,
        due_date=due,
        previous_due_date=previous if due is not None else None,
        batch=batch[:200],
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise InputError(
            f"报送 {checkin.id} 的第{submission.version}版已被审核，不能再次审核。"
        ) from None
    first_submitted = checkin.submitted_at
    checkin.review = decision
    if due is not None:
        checkin.status = CheckinStatus.PENDING
        checkin.submitted_at = None
        checkin.due_date = due
        checkin.escalation_level = 0
        checkin.returns = (checkin.returns or 0) + 1
        checkin.return_reason = reason
    session.flush()
    item = checkin.item
    record_event(
        session=session,
        event_type=(
            EventType.CHECKIN_ACCEPTED
            if decision == ReviewDecision.ACCEPTED
            else EventType.CHECKIN_RETURNED
        ),
        resource_id=f"duban.checkin.{checkin.id}",
        occurred_at=at,
        now=at,
        related_resources=[
            related("item", item.id, item_label(item)[:200]),
            related("department", checkin.department_id, checkin.department.name),
            related("plan", item.plan_id, item.plan.title[:200]),
        ],
        payload={
            "checkin_id": checkin.id,
            "item_id": item.id,
            "department_id": checkin.department_id,
            "submission_id": submission.id,
            "version": submission.version,
            "review_id": row.id,
            "decision": decision.value,
            "reviewer": row.reviewer,
            "reason": reason,
            "due_date": checkin.due_date.isoformat(),
            "previous_due_date": previous.isoformat(),
            "returns": checkin.returns or 0,
            "batch": row.batch,
        },
    )
    key = held = ""
    if due is not None:
        # under `departments: digest` the return goes to the department's next digest
        held = hold_return(
            session=session,
            checkin=checkin,
            review=row,
            department=checkin.department,
            policy=_policy_of(item.plan),
        )
    if due is not None and not held:
        key = _enqueue_return_email(
            session=session,
            checkin=checkin,
            submission=submission,
            row=row,
            submitted_at=first_submitted or submission.submitted_at,
            settings=settings,
        )
    return ReviewOutcome(
        review_id=row.id,
        checkin_id=checkin.id,
        decision=decision,
        due_date=due,
        email_key=key,
        digest_notice=held,
    )


def accept_report(
    session: Session,
    checkin_id: int,
    reviewer: str,
    at: datetime,
    *,
    batch: str = "",
) -> ReviewOutcome:
    """Accept (通过) the latest report of `checkin_id`: the check-in is closed to further
    versions. `InputError` (nothing written) unless it is a submitted report that needs
    review and is not decided yet. Does not commit."""
    return _decide(
        session=session,
        checkin_id=checkin_id,
        decision=ReviewDecision.ACCEPTED,
        reviewer=reviewer,
        reason="",
        at=at,
        batch=batch,
        calendar=None,
        settings=None,
    )


def return_report(
    session: Session,
    checkin_id: int,
    reviewer: str,
    reason: str,
    at: datetime,
    *,
    batch: str = "",
    calendar: WorkCalendar | None = None,
    settings: Settings | None = None,
) -> ReviewOutcome:
    """Return (退回) the latest report of `checkin_id` with `reason` (required): the check-in
    is pending again, due `models.report_review.return_due_date`, its ladder restarts under
    a new epoch, and the department's email (reason, new due date, form link) goes to the
    outbox (under `departments: digest`: to the department's next digest instead).
    `InputError` (nothing written) for a missing reason or a report already decided. Does
    not commit."""
    return _decide(
        session=session,
        checkin_id=checkin_id,
        decision=ReviewDecision.RETURNED,
        reviewer=reviewer,
        reason=reason,
        at=at,
        batch=batch,
        calendar=calendar,
        settings=settings,
    )


def decide_selection(
    session: Session,
    selection: ReviewSelection,
    decision: ReviewDecision,
    reviewer: str,
    at: datetime,
    *,
    reason: str = "",
    calendar: WorkCalendar | None = None,
    settings: Settings | None = None,
) -> list[ReviewOutcome]:
    """Take `decision` on every report of `pending_reviews(selection)`, each with its own
    review row (its `batch` names the selection), event and email. All or nothing: an error
    on one raises and the caller rolls back. Does not commit."""
    if decision == ReviewDecision.PENDING:
        raise InputError("批量审核只能选择通过或退回。")
    if decision == ReviewDecision.RETURNED and not reason.strip():
        raise InputError("批量退回必须填写理由（--reason）。")
    calendar = calendar or work_calendar(session=session)
    batch = f"bulk {selection.describe()}"
    outcomes = []
    for pending in pending_reviews(session, selection=selection, as_of=at):
        if decision == ReviewDecision.ACCEPTED:
            outcomes.append(
                accept_report(session, pending.candidate.checkin_id, reviewer, at, batch=batch)
            )
        else:
            outcomes.append(
                return_report(
                    session,
                    pending.candidate.checkin_id,
                    reviewer,
                    reason,
                    at,
                    batch=batch,
                    calendar=calendar,
                    settings=settings,
                )
            )
    return outcomes


def _waiting_query(
    selection: ReviewSelection,
) -> Select[tuple[Checkin, Item, Plan, Department, Submission]]:
    ranked = (
        select(
            Submission.id.label("row_id"),
            Submission.checkin_id.label("checkin_id"),
            func.row_number()
            .over(partition_by=Submission.checkin_id, order_by=LATEST_FIRST)
            .label("rank"),
        )
        .join(Checkin, Checkin.id == Submission.checkin_id)
        .where(Checkin.status == CheckinStatus.SUBMITTED)
        .subquery()
    )
    query = (
        select(Checkin, Item, Plan, Department, Submission)
        .join(Item, Item.id == Checkin.item_id)
        .join(Plan, Plan.id == Item.plan_id)
        .join(Department, Department.id == Checkin.department_id)
        .join(ranked, (ranked.c.checkin_id == Checkin.id) & (ranked.c.rank == 1))
        .join(Submission, Submission.id == ranked.c.row_id)
        .where(
            Checkin.status == CheckinStatus.SUBMITTED,
            or_(Checkin.review.is_(None), Checkin.review != ReviewDecision.ACCEPTED),
        )
        .order_by(Checkin.submitted_at, Checkin.id)
    )
    if selection.plan_id is not None:
        query = query.where(Item.plan_id == selection.plan_id)
    if selection.item_id is not None:
        query = query.where(Checkin.item_id == selection.item_id)
    if selection.department_id is not None:
        query = query.where(Checkin.department_id == selection.department_id)
    return query


def pending_reviews(
    session: Session,
    *,
    selection: ReviewSelection | None = None,
    as_of: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> list[PendingReview]:
    """The reports waiting for the office's decision (待审核) in `selection`, oldest first:
    submitted check-ins their plan's policy reviews and that are not accepted. `overdue`
    says the office is past its time on `as_of` (`models.report_review.review_overdue`).
    Reads only (one query, plus the calendar when `as_of` is given)."""
    selection = selection or ReviewSelection()
    policies: dict[int, ReviewRule] = {}
    found: list[tuple[ReviewCandidate, Checkin, Item, Department, Submission]] = []
    for checkin, item, plan, department, submission in session.execute(
        _waiting_query(selection)
    ).tuples():
        if plan.id not in policies:
            policies[plan.id] = _policy_of(plan).review
        if not needs_review(policies[plan.id], checkin.role):
            continue
        candidate = ReviewCandidate(
            checkin_id=checkin.id,
            item_id=item.id,
            plan_id=plan.id,
            department_id=department.id,
            submission_id=submission.id,
            self_status=submission.status,
            submitted_at=checkin.submitted_at or submission.submitted_at,
        )
        found.append((candidate, checkin, item, department, submission))
    chosen = {c.checkin_id for c in select_candidates((row[0] for row in found), selection)}
    if as_of is not None and found:
        calendar = calendar or work_calendar(session=session)
    result = []
    for candidate, checkin, item, department, submission in found:
        if candidate.checkin_id not in chosen:
            continue
        rule = policies[candidate.plan_id]
        arrived = local_date(candidate.submitted_at)
        due = review_due_date(rule, calendar, submitted_on=arrived) if calendar else None
        result.append(
            PendingReview(
                candidate=candidate,
                item_label=item_label(item),
                department_name=department.name,
                version=submission.version,
                narrative=submission.narrative,
                returns=checkin.returns or 0,
                review_due=due,
                overdue=(
                    calendar is not None
                    and as_of is not None
                    and review_overdue(
                        rule, calendar, submitted_on=arrived, today=local_date(as_of)
                    )
                ),
            )
        )
    return result


@dataclass(frozen=True)
class ReviewCounts:
    """A plan's review figures: reports waiting (and past the office's time), check-ins
    returned and not answered yet, returns and acceptances so far, returns per department."""

    awaiting: int = 0
    overdue: int = 0
    awaiting_resubmission: int = 0
    returned: int = 0
    accepted: int = 0
    returns_by_department: dict[str, int] | None = None


def review_counts(
    session: Session, *, plan_id: int, as_of: datetime, calendar: WorkCalendar | None = None
) -> ReviewCounts:
    """The review figures of `plan_id` at `as_of` (decisions made by then)."""
    waiting = pending_reviews(
        session, selection=ReviewSelection(plan_id=plan_id), as_of=as_of, calendar=calendar
    )
    decisions = session.execute(
        select(CheckinReview.decision, Department.name, func.count())
        .join(Checkin, Checkin.id == CheckinReview.checkin_id)
        .join(Item, Item.id == Checkin.item_id)
        .join(Department, Department.id == Checkin.department_id)
        .where(Item.plan_id == plan_id, CheckinReview.decided_at <= as_of)
        .group_by(CheckinReview.decision, Department.name)
    ).tuples()
    returned: dict[str, int] = {}
    accepted = 0
    for decision, name, number in decisions:
        if decision == ReviewDecision.RETURNED:
            returned[name] = returned.get(name, 0) + int(number)
        else:
            accepted += int(number)
    resubmission = session.scalar(
        select(func.count())
        .select_from(Checkin)
        .join(Item, Item.id == Checkin.item_id)
        .where(
            Item.plan_id == plan_id,
            Checkin.review == ReviewDecision.RETURNED,
            Checkin.status == CheckinStatus.PENDING,
        )
    )
    return ReviewCounts(
        awaiting=len(waiting),
        overdue=sum(1 for row in waiting if row.overdue),
        awaiting_resubmission=int(resubmission or 0),
        returned=sum(returned.values()),
        accepted=accepted,
        returns_by_department=dict(sorted(returned.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _submitted_text(moment: datetime) -> str:
    local = moment.astimezone(LOCAL_TZ)
    return f"{format_date(local.date())}{local:%H:%M}"


def _enqueue_return_email(
    *,
    session: Session,
    checkin: Checkin,
    submission: Submission,
    row: CheckinReview,
    submitted_at: datetime,
    settings: Settings | None,
) -> str:
    department = checkin.department
    if not department.contact_emails:
        logger.warning("no return email for check-in %s: no contact address", checkin.id)
        return ""
    settings = settings or get_settings()
    item = load_item(session, checkin.item_id)
    context = item_context(
        session=session,
        settings=settings,
        item=item,
        department=department,
        checkin=checkin,
        now=row.decided_at,
        recipient_name=f"{department.name} {department.contact_name}".strip(),
    )
    context["returned"] = {
        "version": submission.version,
        "submitted_text": _submitted_text(submitted_at),
        "reason": row.reason,
        "reviewer": row.reviewer,
    }
    key = f"returned:{row.id}"
    try:
        rendered = render_message("returned", context)
        with session.begin_nested():
            enqueue_message(
                session=session,
                key=key,
                kind="returned",
                to=list(department.contact_emails),
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                now=row.decided_at,
            )
    except HeaderInjectionError:
        logger.warning("no return email for check-in %s: a line break in a header", checkin.id)
        return ""
    return key


def review_pass_facts(
    *, session: Session, item_ids: Sequence[int], policy: SupervisionPolicy
) -> tuple[list[tuple[Checkin, Department]], frozenset[str]]:
    """For the daily pass: the submitted, not accepted check-ins of `item_ids` the policy
    reviews, with their departments, and the review-escalation keys already recorded for
    them. No query when the policy does not chase the office (`office_workdays` unset)."""
    rule = policy.review
    if not rule.enabled or rule.office_workdays is None or not item_ids:
        return [], frozenset()
    rows = session.execute(
        select(Checkin, Department, Notice.key)
        .join(Department, Department.id == Checkin.department_id)
        .outerjoin(
            Notice,
            (Notice.checkin_id == Checkin.id) & (Notice.kind == NoticeKind.REVIEW_OVERDUE),
        )
        .where(
            Checkin.item_id.in_(list(item_ids)),
            Checkin.status == CheckinStatus.SUBMITTED,
            Checkin.submitted_at.is_not(None),
            or_(Checkin.review.is_(None), Checkin.review != ReviewDecision.ACCEPTED),
        )
        .order_by(Checkin.item_id, Checkin.id)
    ).tuples()
    waiting: dict[int, tuple[Checkin, Department]] = {}
    done: set[str] = set()
    for checkin, department, key in rows:
        if needs_review(rule, checkin.role):
            waiting.setdefault(checkin.id, (checkin, department))
            if key is not None:
                done.add(key)
    return list(waiting.values()), frozenset(done)


def enqueue_review_escalation_emails(
    *,
    session: Session,
    keys: Iterable[str],
    items: dict[int, Item],
    checkins: dict[int, Checkin],
    departments: dict[int, Department],
    latest: Mapping[tuple[int, int], Submission],
    calendar: WorkCalendar,
    policy: SupervisionPolicy,
    now: datetime,
    settings: Settings | None = None,
) -> int:
    """Compose and insert the emails of the review escalations recorded under `keys` (to
    the office's 主要负责人, the office's contacts in Cc), from rows the pass loaded (`latest`:
    the latest submission per (item, department)); one query for the notices, one insert.
    Returns rows added. Does not commit."""
    wanted = sorted(set(keys))
    if not wanted:
        return 0
    settings = settings or get_settings()
    today = local_date(now)
    messages = []
    for notice in session.scalars(select(Notice).where(Notice.key.in_(wanted))):
        checkin = checkins.get(notice.checkin_id or 0)
        item = items.get(notice.item_id or 0)
        department = departments.get(notice.department_id or 0)
        if checkin is None or item is None or department is None:
            continue
        heads = [r for r in notice.recipients if r.get("role") == "head" and r.get("email")]
        copied = [r["email"] for r in notice.recipients if r.get("role") != "head"]
        if not heads:
            continue
        arrived = checkin.submitted_at or now
        due = review_due_date(policy.review, calendar, submitted_on=local_date(arrived))
        context = build_item_context(
            settings=settings,
            item=item,
            department=department,
            checkin=None,
            now=now,
            recipient_name="、".join(r.get("name") or "" for r in heads) or "主要负责人",
            phases=[],
            last=None,
        )
        last = latest.get((item.id, department.id))
        context["review"] = {
            "version": last.version if last is not None else 1,
            "submitted_text": _submitted_text(arrived),
            "due_date": due or today,
            "waiting_days": (today - local_date(arrived)).days,
        }
        try:
            rendered = render_message("review_overdue", context)
        except HeaderInjectionError:
            logger.warning("no email for notice %s: a line break in its subject", notice.key)
            continue
        messages.append(
            NewMessage(
                key=f"notice:{notice.key}",
                kind=NoticeKind.REVIEW_OVERDUE.value,
                to=[r["email"] for r in heads],
                cc=[e for e in copied if e],
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                notice_id=notice.id,
            )
        )
    return insert_messages(session=session, messages=messages, now=now)


def review_keys(decision_keys: Iterable[str]) -> list[str]:
    """The review-escalation keys among a pass's notice keys."""
    return [key for key in decision_keys if ":review_overdue:" in key]


def checkin_or_missing(session: Session, checkin_id: int) -> Checkin:
    """The check-in `checkin_id`, or `NotFoundError` in Chinese."""
    checkin = session.get(Checkin, checkin_id)
    if checkin is None:
        raise NotFoundError(f"没有编号为 {checkin_id} 的报送。")
    return checkin
