"""Completion and closure rules (pure): who may ask, in which state, with what text; and
the daily pass's decision for a closed item."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from models.closure import (
    MAX_SUMMARY_CHARS,
    ItemClosureFacts,
    check_close,
    check_decision,
    check_reopen,
    check_request,
    checkins_to_cancel,
    checkins_to_restore,
    closed_label,
)
from models.daily_pass import decide_chunk
from models.errors import InputError
from models.vocabulary import CompletionDecision, EventType, ItemState
from tests.unit.test_daily_pass import facts

OPEN = ItemClosureFacts(
    label="第4项 搭建平台",
    closed_on=None,
    lead_department_ids=frozenset({2}),
    pending_request_id=None,
)
CLOSED = replace(OPEN, closed_on=date(2021, 11, 20))


def test_the_lead_department_may_request_with_a_summary_which_is_trimmed() -> None:
    assert check_request(OPEN, department_id=2, summary="  全年完成 212 场次。 ") == (
        "全年完成 212 场次。"
    )


@pytest.mark.parametrize(
    ("facts_", "department", "summary", "message"),
    [
        (OPEN, 3, "已完成", "只有第4项 搭建平台的牵头部门可以申请办结"),
        (CLOSED, 2, "已完成", "已于 2021-11-20 办结（销号），无需再申请办结"),
        (replace(OPEN, pending_request_id=9), 2, "已完成", "已有一份办结申请（编号 9）"),
        (OPEN, 2, "   ", "请填写办结情况说明"),
        (OPEN, 2, "字" * (MAX_SUMMARY_CHARS + 1), f"不能超过{MAX_SUMMARY_CHARS}字"),
    ],
)
def test_a_request_is_refused_with_a_chinese_reason(
    facts_: ItemClosureFacts, department: int, summary: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        check_request(facts_, department_id=department, summary=summary)


def test_approving_needs_no_reason_but_rejecting_does() -> None:
    pending = CompletionDecision.PENDING
    assert check_decision(OPEN, request_id=5, decision=pending, approve=True, reason="") == ""
    assert (
        check_decision(OPEN, request_id=5, decision=pending, approve=False, reason=" 材料不足 ")
        == "材料不足"
    )
    with pytest.raises(InputError, match="请填写驳回理由"):
        check_decision(OPEN, request_id=5, decision=pending, approve=False, reason=" ")


@pytest.mark.parametrize("decision", [CompletionDecision.APPROVED, CompletionDecision.REJECTED])
def test_a_decided_request_cannot_be_decided_again(decision: CompletionDecision) -> None:
    with pytest.raises(InputError, match=f"办结申请 5 已处理（{decision.label}）"):
        check_decision(OPEN, request_id=5, decision=decision, approve=True, reason="")


def test_a_request_on_an_item_closed_meanwhile_cannot_be_approved() -> None:
    with pytest.raises(InputError, match="已办结，办结申请 5 无需再审核"):
        check_decision(
            CLOSED, request_id=5, decision=CompletionDecision.PENDING, approve=True, reason=""
        )


def test_close_needs_an_open_item_and_a_reason_reopen_a_closed_item_and_a_reason() -> None:
    assert check_close(OPEN, reason="经党组会议研究取消") == "经党组会议研究取消"
    with pytest.raises(InputError, match="请填写销号理由"):
        check_close(OPEN, reason="")
    with pytest.raises(InputError, match="已于 2021-11-20 办结，无需再次销号"):
        check_close(CLOSED, reason="重复")
    assert check_reopen(CLOSED, reason="整改不到位") == "整改不到位"
    with pytest.raises(InputError, match="请填写重新打开的理由"):
        check_reopen(CLOSED, reason=" ")
    with pytest.raises(InputError, match="尚未办结，无需重新打开"):
        check_reopen(OPEN, reason="整改")


def test_closing_cancels_pending_check_ins_and_reopening_restores_those_ahead() -> None:
    rows = [(1, "submitted"), (2, "pending"), (3, "cancelled"), (4, "pending")]
    assert checkins_to_cancel(rows) == [2, 4]
    later = [
        (2, "cancelled", date(2021, 9, 30)),
        (3, "cancelled", date(2021, 12, 20)),
        (4, "cancelled", date(2021, 12, 20)),
        (5, "pending", date(2021, 12, 20)),
    ]
    assert checkins_to_restore(later, cancelled=[2, 4, 5], today=date(2021, 10, 8)) == [4]


def test_closed_label_names_the_day() -> None:
    assert closed_label(date(2021, 11, 20)) == "已办结（2021-11-20）"
    assert closed_label(None) == ""


def test_the_pass_sends_a_closed_item_nothing_and_names_its_state_closed() -> None:
    day = date(2021, 7, 7)
    open_decision = decide_chunk(facts(day, colour="green", notified=False))
    assert open_decision.notices
    closed_facts = facts(day, colour="green", notified=False)
    for item in closed_facts.items:
        item.closed_at = datetime(2021, 7, 1, 2, 0, tzinfo=UTC)
    decision = decide_chunk(closed_facts)
    assert decision.notices == []
    assert decision.levels == {}
    assert decision.colours == []
    result = decision.results[1]
    assert result.state == ItemState.CLOSED
    assert ItemState.CLOSED.label == "已办结"
    assert (result.pending, result.overdue, result.max_level) == (0, 0, 0)
    assert EventType.ITEM_CLOSED == "duban.item.closed"


def test_the_review_lists_items_closed_in_the_period_and_marks_them_in_the_table() -> None:
    from models.review import ClosureRow
    from models.review_figures import build_review
    from tasks.reporting.blocks import Paragraph, Table
    from tasks.reporting.outline import build_outline
    from tests.unit.test_review import AS_OF, local, small_inputs

    closures = (
        ClosureRow(1, local(8, 20), "全部完成，予以销号", None),
        ClosureRow(2, local(7, 10), "误关", local(7, 12)),
        ClosureRow(3, local(6, 10), "上季度已办结", None),
    )
    review = build_review(small_inputs(closures=closures))
    assert [(c.number, c.closed_on, c.reason) for c in review.closed] == [
        ("1", date(2021, 8, 20), "全部完成，予以销号")
    ]
    items = {line.number: line for block in review.sections for line in block.items}
    assert (items["1"].closed_on, items["2"].closed_on, items["3"].closed_on) == (
        date(2021, 8, 20),
        None,
        date(2021, 6, 10),
    )
    assert review.summary["closed_items"] == 1
    _, blocks = build_outline(review, generated_at=AS_OF)
    text = "\n".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "本期办结销号任务1项（第1项），此后不再督办。" in text
    tables = [b for b in blocks if isinstance(b, Table)]
    closed_table = next(t for t in tables if t.columns[-1] == "销号理由")
    assert closed_table.rows == (("1", "第一项", "甲部", "2021年8月20日", "全部完成，予以销号"),)
    section_rows = next(t for t in tables if "最新报送" in t.columns).rows
    assert section_rows[0][4].startswith("已办结（8月20日）；")
    assert not section_rows[1][4].startswith("已办结")
    quiet = build_review(small_inputs())
    _, blocks = build_outline(quiet, generated_at=AS_OF)
    assert "本期没有办结销号的任务。" in "\n".join(
        b.text for b in blocks if isinstance(b, Paragraph)
    )
