"""The department page's pure assembly (`models.department_page.assemble_page`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from models.department_page import (
    DepartmentCheckin,
    DepartmentClosure,
    DepartmentPage,
    assemble_page,
)
from models.instruction import InstructionFact
from models.policy import ReviewRule
from models.vocabulary import InstructionSource

NOW = datetime(2021, 7, 1, 4, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = date(2021, 7, 1)


def checkin(checkin_id: int, item_id: int, due: date, **changes: object) -> DepartmentCheckin:
    row = DepartmentCheckin(
        checkin_id=checkin_id,
        item_id=item_id,
        plan_id=1,
        plan_title="2021年工作要点",
        item_number=str(item_id),
        item_position=item_id,
        item_title=f"任务{item_id}",
        colour="amber",
        kind="progress",
        role="lead",
        phase_key="implement",
        due_date=due,
        status="pending",
        submitted_at=None,
        escalation_level=0,
        review=None,
        return_reason="",
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def page(
    rows: list[DepartmentCheckin],
    closures: list[DepartmentClosure] | None = None,
    instructions: list[InstructionFact] | None = None,
) -> DepartmentPage:
    return assemble_page(
        department_id=5,
        department_name="学会部",
        now=NOW,
        today=TODAY,
        checkins=rows,
        closures=closures or [],
        instructions=instructions or [],
        review_rules={1: ReviewRule()},
        level_labels={(1, 2): "分管领导督办"},
    )


def test_sections_list_each_owed_check_in_once_in_due_order() -> None:
    rows = [
        checkin(3, 10, date(2021, 7, 25)),
        checkin(1, 2, date(2021, 6, 25), escalation_level=2, colour="red"),
        checkin(2, 2, date(2021, 6, 30), review="returned", return_reason="太简单"),
        checkin(4, 9, date(2021, 6, 25), escalation_level=4, colour="weird"),
    ]
    built = page(rows)
    assert [row.checkin_id for row in built.open] == [1, 4, 3]
    first, second, third = built.open
    assert (first.overdue_days, first.level_label, first.colour_label) == (
        6,
        "分管领导督办",
        "红灯",
    )
    assert (second.level_label, second.colour) == ("第4级督办", "none")
    assert (third.overdue_days, third.level_label) == (None, "未升级")
    [returned] = built.returned
    assert (returned.checkin_id, returned.detail, returned.overdue_days) == (2, "太简单", 1)
    assert built.overdue == 3


def test_closed_items_leave_the_open_sections_until_reopened() -> None:
    submitted = datetime(2021, 6, 20, tzinfo=UTC)
    rows = [
        checkin(1, 2, date(2021, 6, 25), status="submitted", submitted_at=submitted),
        checkin(2, 2, date(2021, 7, 25), status="cancelled"),
        checkin(3, 3, date(2021, 7, 25)),
    ]
    closures = [
        DepartmentClosure(2, datetime(2021, 6, 28, tzinfo=UTC), None, "已完成"),
        DepartmentClosure(
            3, datetime(2021, 6, 1, tzinfo=UTC), datetime(2021, 6, 5, tzinfo=UTC), ""
        ),
        DepartmentClosure(99, datetime(2021, 6, 1, tzinfo=UTC), None, "别人的任务"),
    ]
    instruction = InstructionFact(
        id=1,
        item_id=2,
        item_label="第2项",
        leader="分管领导 刘卫东",
        text="抓紧",
        source=InstructionSource.PAPER,
        given_at=datetime(2021, 6, 26, tzinfo=UTC),
    )
    built = page(rows, closures, [instruction])
    [closed] = built.closed
    assert (closed.checkin_id, closed.detail) == (1, "已完成")  # the answered check-in
    assert [row.checkin_id for row in built.open] == [3]
    assert built.instructions == ()
    assert built.record.on_time == 1 and built.record.settled == 1


def test_answers_after_the_moment_do_not_count_yet() -> None:
    later = datetime(2021, 7, 2, tzinfo=UTC)
    rows = [checkin(1, 2, date(2021, 6, 25), status="submitted", submitted_at=later)]
    built = page(rows)
    assert built.record.missing == 1 and built.record.on_time == 0
