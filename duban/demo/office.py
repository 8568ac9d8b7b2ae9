"""The demo's simulated supervision office and leaders: they close the loop of 督办.

Each working day at 09:30 the office (督查室) decides what waits for it, through the same
functions `duban review` and `duban item completion` call: from `LoopScript.review_from` it
accepts the reports that arrived before today, except the first report of
`LoopScript.thin_reporter`, which it returns as too thin (the department answers with a
second version); it approves the completion requests (申请办结) made before today (销号). From
`LoopScript.instruct_from` the first 分管领导 or 主要负责人 who receives an escalation writes an
instruction (批示) through the signed link in that email, over HTTP, as a person would; the
department's next report must answer it (落实批示情况). The departments of
`LoopScript.closers` attach evidence to their year-end self-assessment and request completion of
the item through the form.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from duban.demo.script import SUPERVISOR
from duban.runtime import Store
from models import clock
from models.db import transaction
from models.supervision import Checkin
from tasks.closure import approve_completion, pending_completions
from tasks.report_review import accept_report, pending_reviews, return_report

THIN_REASON = "报送内容过于简单：请补充本期活动场次、参与人数等具体数据，以及下一步的具体措施。"
INSTRUCTION_TEXT = "请抓紧推进，逐项对照年度目标补齐短板，按期报送进展情况。"


@dataclass(frozen=True)
class LoopScript:
    """When and by whom the loop is shown (dates after the reminding part of the year, so a
    newcomer sees plain supervision first, then review, instructions and closure)."""

    review_from: date = date(2021, 11, 1)
    thin_reporter: str = "学会部"
    instruct_from: date = date(2021, 11, 1)
    close_from: date = date(2021, 12, 1)
    closers: frozenset[str] = frozenset({"学会部", "办公室"})


@dataclass
class LoopCounts:
    """What the office and the leaders did."""

    accepted: int = 0
    returned: int = 0
    instructions: int = 0
    completions_approved: int = 0
    completions_requested: int = 0
    evidence_files: int = 0


def office_decides(
    *,
    store: Store,
    plan_ids: Collection[int],
    today: date,
    now: datetime,
    loop: LoopScript,
    counts: LoopCounts,
    year_end: bool = False,
) -> None:
    """Review the reports of the plans `plan_ids` and approve their completion requests that
    arrived before today (at `year_end`, before the year review, everything that arrived by
    `now`)."""
    if today < loop.review_from:
        return

    def arrived(moment: datetime) -> bool:
        return moment <= now if year_end else clock.local_date(moment) < today

    with transaction(store.sessions) as session:
        waiting = [
            review
            for review in pending_reviews(session, as_of=now)
            if review.candidate.plan_id in plan_ids and arrived(review.candidate.submitted_at)
        ]
        for review in waiting:
            candidate = review.candidate
            thin = (
                counts.returned == 0
                and review.department_name == loop.thin_reporter
                and review.returns == 0
                and clock.local_date(candidate.submitted_at) >= loop.review_from
            )
            if thin:
                return_report(session, candidate.checkin_id, SUPERVISOR, THIN_REASON, now)
                counts.returned += 1
            else:
                accept_report(session, candidate.checkin_id, SUPERVISOR, now)
                counts.accepted += 1
        for plan_id in plan_ids:
            for request in pending_completions(session=session, plan_id=plan_id):
                if arrived(request.requested_at):
                    approve_completion(session, request.request_id, SUPERVISOR, now)
                    counts.completions_approved += 1


def returned_checkins(*, store: Store, checkin_ids: list[int]) -> set[int]:
    """The check-ins among `checkin_ids` returned and not yet answered again."""
    with store.sessions() as session:
        return set(
            session.scalars(
                select(Checkin.id).where(
                    Checkin.id.in_(checkin_ids), Checkin.returns > 0, Checkin.status == "pending"
                )
            )
        )
