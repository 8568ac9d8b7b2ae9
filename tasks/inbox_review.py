"""The inbox's report-review source (报送审核): reports waiting for 通过 / 退回.

A decision is keyed by the latest submission's id: a department that sends a new version
before the review gets a new key, so the old waiting run is cancelled and a new one shows
the version actually under review. Applying goes through `tasks.report_review`
(`accept_report` / `return_report`), the functions the CLI and bulk decisions use.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from models.inbox import Answer, PendingDecision
from models.report_review import ReviewSelection
from models.supervision import Checkin, Submission
from models.vocabulary import AssignmentRole, CheckinKind, InboxKind, SelfStatusValue
from tasks.attachments import attachments_of_submissions
from tasks.inbox import InboxSource, register, target_figures
from tasks.report_review import PendingReview, accept_report, pending_reviews, return_report
from tasks.submissions import load_checkin


def _header(pending: PendingReview) -> PendingDecision:
    candidate = pending.candidate
    return PendingDecision(
        kind=InboxKind.REPORT_REVIEW,
        decision_id=candidate.submission_id,
        plan_id=candidate.plan_id,
        item_id=candidate.item_id,
        item_label=pending.item_label,
        department=pending.department_name,
        requested_at=candidate.submitted_at,
    )


def pending_report_reviews(session: Session, plan_id: int) -> list[PendingDecision]:
    """The plan's reports waiting for review (`tasks.report_review.pending_reviews`)."""
    return [
        _header(pending)
        for pending in pending_reviews(session, selection=ReviewSelection(plan_id=plan_id))
    ]


def _waiting(session: Session, submission_id: int, now: datetime | None) -> PendingReview | None:
    submission = session.get(Submission, submission_id)
    if submission is None:
        return None
    checkin = session.get(Checkin, submission.checkin_id)
    if checkin is None:
        return None
    selection = ReviewSelection(item_id=checkin.item_id, department_id=checkin.department_id)
    for pending in pending_reviews(session, selection=selection, as_of=now):
        if pending.candidate.submission_id == submission_id:
            return pending
    return None


def load_report_review(
    session: Session, submission_id: int, now: datetime
) -> PendingDecision | None:
    """The report under review: its text, figures against targets, returns and review date."""
    pending = _waiting(session, submission_id, now)
    submission = session.get(Submission, submission_id)
    if pending is None or submission is None:
        return None
    checkin = load_checkin(session=session, checkin_id=submission.checkin_id)
    facts = [
        (
            "报送",
            f"{CheckinKind.label_of(checkin.kind)}（{AssignmentRole.label_of(checkin.role)}），"
            f"第{submission.version}版",
        ),
        ("部门自评", SelfStatusValue.label_of(submission.status)),
        ("报送截止日期", checkin.due_date.isoformat()),
    ]
    if pending.returns:
        facts.append(("此前退回", f"{pending.returns} 次"))
    if pending.review_due is not None:
        overdue = "（已超过审核时限）" if pending.overdue else ""
        facts.append(("审核时限", f"{pending.review_due.isoformat()}{overdue}"))
    texts = [("工作进展", submission.narrative)]
    if submission.problems:
        texts.append(("存在问题", submission.problems))
    if submission.next_steps:
        texts.append(("下一步计划", submission.next_steps))
    evidence = attachments_of_submissions(session=session, submission_ids=[submission.id])
    return replace(
        _header(pending),
        facts=tuple(facts),
        texts=tuple(texts),
        figures=target_figures(checkin.item, submission),
        attachments=tuple(info.file_name for info in evidence.get(submission.id, [])),
    )


def report_review_is_pending(session: Session, submission_id: int) -> bool:
    """True while this version is the one waiting for review; locks its check-in row."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        return False
    session.get(Checkin, submission.checkin_id, with_for_update=True)
    return _waiting(session, submission_id, None) is not None


def apply_report_review(session: Session, answer: Answer, now: datetime) -> str:
    """Accept (`accept_report`) or return with the reason (`return_report`)."""
    submission = session.get(Submission, answer.decision_id)
    if submission is None:
        return "该报送已不存在。"
    if answer.approve:
        accept_report(session, submission.checkin_id, answer.decided_by, now)
        return f"已审核通过报送 {submission.checkin_id}（第{submission.version}版）。"
    outcome = return_report(session, submission.checkin_id, answer.decided_by, answer.reason, now)
    due = outcome.due_date.isoformat() if outcome.due_date else "—"
    return (
        f"已退回报送 {submission.checkin_id}（第{submission.version}版），"
        f"重新报送截止 {due}：{answer.reason}"
    )


register(
    InboxSource(
        kind=InboxKind.REPORT_REVIEW,
        pending=pending_report_reviews,
        load=load_report_review,
        is_pending=report_review_is_pending,
        apply=apply_report_review,
    )
)
