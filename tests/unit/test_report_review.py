"""The review rules (审核/退回) as pure functions: policy, due dates, refusals, bulk filter,
and what the daily pass's decision does with returned and unreviewed check-ins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from models.calendar import WorkCalendar
from models.clock import resolve
from models.daily_pass import decide_chunk, review_escalations
from models.errors import InputError
from models.policy import ReviewRule, default_policy, load_policy, parse_policy
from models.report_review import (
    ReviewCandidate,
    ReviewSelection,
    ladder_epoch,
    needs_review,
    refusal,
    return_due_date,
    review_due_date,
    review_notice_key,
    review_overdue,
    review_report_lines,
    review_state,
    select_candidates,
)
from models.review import AwaitingReviewRow, ReturnLine, ReviewDecisionRow
from models.vocabulary import EventType, NoticeKind, ReviewDecision
from tests.unit.test_daily_pass import facts

CALENDAR = WorkCalendar()
CHASED = ReviewRule(office_workdays=3, return_workdays=5)


def test_the_policy_reviews_lead_reports_by_default_and_none_means_none() -> None:
    assert default_policy().review == ReviewRule(checkins="lead")
    assert default_policy().review.office_workdays is None
    assert parse_policy({"review": "none"}).review.enabled is False
    assert parse_policy({"review": "all"}).review.checkins == "all"
    rule = parse_policy({"review": {"office_workdays": 3, "return_workdays": 7}}).review
    assert (rule.checkins, rule.office_workdays, rule.return_workdays) == ("lead", 3, 7)
    assert parse_policy(default_policy().to_mapping()) == default_policy()


def test_a_bad_review_section_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nreview:\n  checkins: leaders\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_policy(path)
    assert "review.checkins" in str(caught.value) and "leaders" in str(caught.value)
    assert ":3" in str(caught.value) or "第3行" in str(caught.value)
    path.write_text("review:\n  return_workdays: 0\n", encoding="utf-8")
    with pytest.raises(InputError, match="取值过小"):
        load_policy(path)


def test_which_checkins_need_review() -> None:
    assert needs_review(ReviewRule(), "lead") and not needs_review(ReviewRule(), "support")
    assert needs_review(ReviewRule(checkins="all"), "support")
    assert not needs_review(ReviewRule(checkins="none"), "lead")


def test_review_state() -> None:
    rule = ReviewRule()
    assert review_state(status="pending", review=None, role="lead", rule=rule) is None
    assert review_state(status="submitted", review=None, role="lead", rule=rule) == "pending"
    assert review_state(status="pending", review="returned", role="lead", rule=rule) == "returned"
    assert review_state(status="submitted", review="returned", role="lead", rule=rule) == "pending"
    assert review_state(status="submitted", review="accepted", role="lead", rule=rule) == "accepted"
    assert review_state(status="submitted", review=None, role="support", rule=rule) is None


def test_return_due_date_counts_working_days_and_never_moves_earlier() -> None:
    # Monday 2021-07-05 + 5 working days = Monday 07-12.
    assert return_due_date(
        CHASED, CALENDAR, returned_on=date(2021, 7, 5), due_date=date(2021, 6, 30)
    ) == date(2021, 7, 12)
    # Across the National Day holiday (10-01..10-07 off, Saturday 10-09 a make-up working
    # day): Thursday 09-30 + 5 working days = 10-08, 10-09, 10-11, 10-12, 10-13.
    assert return_due_date(
        CHASED, CALENDAR, returned_on=date(2021, 9, 30), due_date=date(2021, 9, 30)
    ) == date(2021, 10, 13)
    # Returned long before the due date: the due date stands.
    assert return_due_date(
        CHASED, CALENDAR, returned_on=date(2021, 6, 1), due_date=date(2021, 6, 30)
    ) == date(2021, 6, 30)


def test_the_office_is_overdue_after_its_working_days() -> None:
    monday = date(2021, 6, 28)
    assert review_due_date(CHASED, CALENDAR, submitted_on=monday) == date(2021, 7, 1)
    assert not review_overdue(CHASED, CALENDAR, submitted_on=monday, today=date(2021, 7, 1))
    assert review_overdue(CHASED, CALENDAR, submitted_on=monday, today=date(2021, 7, 2))
    assert review_due_date(ReviewRule(), CALENDAR, submitted_on=monday) is None
    assert not review_overdue(ReviewRule(), CALENDAR, submitted_on=monday, today=date(2021, 12, 1))


def test_refusals_say_why_in_chinese() -> None:
    def why(**kwargs: object) -> str | None:
        values: dict[str, object] = {
            "status": "submitted",
            "review": None,
            "needed": True,
            "decision": ReviewDecision.ACCEPTED,
            "reason": "",
            "checkin_id": 5,
        }
        values.update(kwargs)
        return refusal(**values)  # type: ignore[arg-type]

    assert why() is None
    assert why(decision=ReviewDecision.RETURNED, reason="太简略") is None
    assert "理由" in (why(decision=ReviewDecision.RETURNED, reason=" ") or "")
    assert "已审核通过" in (why(review="accepted") or "")
    assert "等待部门重新报送" in (why(status="pending", review="returned") or "")
    assert "待报送" in (why(status="pending") or "")
    assert "无需审核" in (why(needed=False) or "")
    assert "过长" in (why(decision=ReviewDecision.RETURNED, reason="长" * 2001) or "")


def candidate(checkin_id: int, **kwargs: object) -> ReviewCandidate:
    values: dict[str, object] = {
        "checkin_id": checkin_id,
        "item_id": 1,
        "plan_id": 7,
        "department_id": 2,
        "submission_id": checkin_id * 10,
        "self_status": "on_track",
        "submitted_at": datetime(2021, 6, 28, tzinfo=UTC),
    }
    values.update(kwargs)
    return ReviewCandidate(**values)  # type: ignore[arg-type]


def test_bulk_selection() -> None:
    rows = [
        candidate(3, submitted_at=datetime(2021, 6, 29, tzinfo=UTC)),
        candidate(1),
        candidate(2, department_id=9),
        candidate(4, self_status="at_risk"),
        candidate(5, item_id=2, self_status="done"),
    ]
    assert [c.checkin_id for c in select_candidates(rows, ReviewSelection())] == [1, 2, 4, 5, 3]
    on_track = ReviewSelection(department_id=2, on_track_only=True)
    assert [c.checkin_id for c in select_candidates(rows, on_track)] == [1, 5, 3]
    assert [c.checkin_id for c in select_candidates(rows, ReviewSelection(item_id=2))] == [5]
    assert on_track.describe() == "department=2 on_track"
    assert ReviewSelection().empty and ReviewSelection().describe() == "all"


def test_a_return_restarts_the_ladder_under_a_new_epoch() -> None:
    assert ladder_epoch(0, 0) == 0 and ladder_epoch(1, 1) == 2
    base = facts(date(2021, 7, 6))
    checkin, _ = base.checkins[0]
    checkin.due_date = date(2021, 7, 12)
    checkin.returns = 1
    decision = decide_chunk(base)
    assert [n.key for n in decision.notices] == ["checkin:10:request:e1"]


def test_an_unreviewed_report_escalates_to_the_office_head_once() -> None:
    policy = default_policy().model_copy(update={"review": CHASED})
    base = facts(date(2021, 7, 2), submitted=resolve(date(2021, 6, 28)))
    checkin, department = base.checkins[0]
    checkin.status = "submitted"
    waiting = replace(base, policy=policy, checkins=[], awaiting_review=[(checkin, department)])
    [action] = review_escalations(waiting, today=date(2021, 7, 2))
    assert action.key == review_notice_key(10, 0) == "checkin:10:review_overdue:r0"
    assert action.kind == NoticeKind.REVIEW_OVERDUE
    assert {r["role"] for r in action.recipients} == {"head", "office"}
    assert [r["email"] for r in action.recipients if r["role"] == "head"] == ["head@example.org"]
    assert [e.type for e in action.events] == [EventType.CHECKIN_REVIEW_OVERDUE]
    assert "应于2021-07-01前审核" in action.reason
    decision = decide_chunk(waiting)
    assert [n.key for n in decision.notices] == ["checkin:10:review_overdue:r0"]
    assert decision.results[1].notices == ["checkin:10:review_overdue:r0"]
    assert (
        review_escalations(replace(waiting, review_done_keys={action.key}), today=date(2021, 7, 2))
        == []
    )
    assert review_escalations(waiting, today=date(2021, 7, 1)) == []
    checkin.returns = 1
    assert review_escalations(waiting, today=date(2021, 7, 2))[0].key.endswith(":r1")


def test_report_lines_count_the_period_only_and_list_the_waiting_oldest_first() -> None:
    start = datetime(2021, 3, 31, 16, tzinfo=UTC)
    end = datetime(2021, 6, 30, 15, 59, tzinfo=UTC)
    decisions = [
        ReviewDecisionRow(1, 2, "returned", datetime(2021, 4, 2, tzinfo=UTC)),
        ReviewDecisionRow(1, 2, "accepted", datetime(2021, 4, 9, tzinfo=UTC)),
        ReviewDecisionRow(3, 5, "returned", datetime(2021, 5, 9, tzinfo=UTC)),
        ReviewDecisionRow(3, 5, "returned", datetime(2021, 5, 19, tzinfo=UTC)),
        ReviewDecisionRow(3, 5, "returned", datetime(2021, 7, 1, tzinfo=UTC)),
    ]
    awaiting = [
        AwaitingReviewRow(3, 5, datetime(2021, 6, 28, tzinfo=UTC), False),
        AwaitingReviewRow(1, 2, datetime(2021, 6, 20, tzinfo=UTC), True),
    ]
    returns, waiting = review_report_lines(
        decisions=decisions,
        awaiting=awaiting,
        names={2: "学会部", 5: "普及部"},
        items={1: ("1", "任务一"), 3: ("3", "任务三")},
        start=start,
        end=end,
    )
    assert returns == (ReturnLine("普及部", 0, 2), ReturnLine("学会部", 1, 1))
    assert [(w.number, w.department, w.overdue) for w in waiting] == [
        ("1", "学会部", True),
        ("3", "普及部", False),
    ]
    empty = review_report_lines(decisions=[], awaiting=[], names={}, items={}, start=start, end=end)
    assert empty == ((), ())
