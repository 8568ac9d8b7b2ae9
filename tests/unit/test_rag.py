"""The item colour rule as a table: signals in, colour and reasons out."""

from __future__ import annotations

import pytest

from models.rag import ItemSignals, assess_item, item_colour

S = ItemSignals


@pytest.mark.parametrize(
    ("signals", "colour"),
    [
        # nothing wrong
        (S(), "green"),
        (S(checkin_states=("submitted", "awaiting", "upcoming")), "green"),
        (S(checkin_states=("due_today",)), "green"),
        (S(checkin_states=("submitted_late",)), "green"),  # late but in: history
        (S(department_statuses=("on_track", "done")), "green"),
        (S(pace=("on_pace", "met", "unknown")), "green"),
        # amber
        (S(checkin_states=("submitted", "overdue")), "amber"),
        (S(checkin_states=("overdue",), escalation_level=1), "amber"),  # 催办 to the contact
        (S(department_statuses=("on_track", "at_risk")), "amber"),
        (S(pace=("met", "behind")), "amber"),  # 120 of 200 at end of Q3
        # red
        (S(checkin_states=("overdue",), escalation_level=2), "red"),  # 督办 to 分管领导
        (S(checkin_states=("overdue",), escalation_level=3), "red"),
        (S(department_statuses=("blocked",)), "red"),
        (S(pace=("far_behind",)), "red"),
        (S(checkin_states=("overdue",), department_statuses=("blocked",)), "red"),
        # a stricter item: red from the first escalation
        (S(checkin_states=("overdue",), escalation_level=1, red_from_level=1), "red"),
    ],
)
def test_item_colour(signals: ItemSignals, colour: str) -> None:
    assert item_colour(signals) == colour


def test_green_reason() -> None:
    assert assess_item(S()).reasons == ("按计划推进",)


def test_every_matching_row_gives_its_reason() -> None:
    verdict = assess_item(
        S(
            checkin_states=("overdue",),
            escalation_level=2,
            department_statuses=("at_risk",),
            pace=("behind",),
        )
    )
    assert verdict.colour == "red"
    assert verdict.reasons == (
        "逾期未报送，已升级督办",
        "有报送逾期未交",
        "部室报告存在风险",
        "指标进度落后于时间进度",
    )
