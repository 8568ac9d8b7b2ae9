"""A 32-item task-division table (tests/plan_tables.py) in .xlsx and .docx, columns in any order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from models.plan_reader.document import FIRST_UNIT_LEADS, first_unit_leads, read_plan_file
from models.plan_reader.units import split_units
from models.plan_reader.xlsx import table_to_plan
from tests.plan_tables import SECTIONS, YEAR, tasks, write_docx, write_xlsx

ORDERS = [tuple(range(7)), (6, 5, 4, 3, 2, 1, 0), (0, 1, 4, 5, 6, 2, 3)]


@pytest.mark.parametrize("order", ORDERS, ids=["as-written", "reversed", "units-first"])
@pytest.mark.parametrize("writer", [write_xlsx, write_docx], ids=["xlsx", "docx"])
def test_every_row_is_an_item_with_its_section_and_units(
    tmp_path: Path, writer: Callable[..., Path], order: tuple[int, ...]
) -> None:
    path = writer(tmp_path / "plan", order=order)
    plan = read_plan_file(path)
    assert plan.year == YEAR
    assert [section.number for section in plan.sections] == [number for number, _, _ in SECTIONS]
    expected = tasks()
    assert [item.number for item in plan.items] == [task.number for task in expected]
    for item, task in zip(plan.items, expected, strict=True):
        assert item.section == task.number.split(".")[0].translate(
            str.maketrans("12345", "一二三四五")
        )
        assert item.lead == split_units(task.lead)
        assert item.support == split_units(task.support)


@pytest.mark.parametrize("writer", [write_xlsx, write_docx], ids=["xlsx", "docx"])
def test_deadlines_milestones_and_criteria(tmp_path: Path, writer: Callable[..., Path]) -> None:
    plan = read_plan_file(writer(tmp_path / "plan", order=(6, 0, 3, 1, 5, 4, 2)))
    items = {item.number: item for item in plan.items}
    assert not [w for w in plan.warnings if w.line], plan.warnings
    first = items["1.1"]
    assert first.deadline is not None
    assert (first.deadline.kind, first.deadline.due) == ("date", date(2023, 12, 31))
    assert [(m.text, m.start, m.end, m.output) for m in first.milestones] == [
        ("3月", date(2023, 3, 1), date(2023, 3, 31), "制定学习方案"),
        ("4月—6月", date(2023, 4, 1), date(2023, 6, 30), "开展专题宣讲"),
        ("12月", date(2023, 12, 1), date(2023, 12, 31), "总结"),
    ]
    assert first.criteria == "宣讲不少于20场次"
    assert items["1.3"].deadline is not None and items["1.3"].deadline.kind == "ongoing"
    assert items["1.3"].milestones == []
    quarterly = items["1.4"].deadline
    assert quarterly is not None and (quarterly.kind, quarterly.rule) == ("recurring", "quarterly")
    assert [(m.start, m.end) for m in items["3.2"].milestones] == [
        (date(2023, 1, 1), date(2023, 3, 31)),
        (date(2023, 4, 1), date(2023, 10, 31)),
        (date(2023, 11, 1), date(2023, 11, 30)),
    ]
    assert items["4.3"].deadline is not None and items["4.3"].deadline.due == date(2023, 12, 31)
    assert items["4.5"].deadline is not None and items["4.5"].deadline.due == date(2023, 6, 30)
    assert [item.number for item in plan.items if item.milestones] == [
        task.number for task in tasks() if task.milestones
    ]
    assert sum(len(item.milestones) for item in plan.items) == 44
    assert all(item.deadline is not None for item in plan.items)


def test_contract_shows_schedule_keys_only_where_given(tmp_path: Path) -> None:
    data = read_plan_file(write_xlsx(tmp_path / "plan")).contract()
    by_number = {item["number"]: item for item in data["items"]}
    assert by_number["1.1"]["deadline"] == {
        "kind": "date",
        "text": "2023年12月底前",
        "due": "2023-12-31",
        "rule": None,
    }
    assert by_number["1.1"]["milestones"][0] == {
        "text": "3月",
        "start": "2023-03-01",
        "end": "2023-03-31",
        "output": "制定学习方案",
        "line": by_number["1.1"]["line"],
    }
    assert "milestones" not in by_number["1.3"]
    assert "criteria" not in by_number["1.4"]


def _rows(*tasks: tuple[str, str, str, str]) -> list[list[str]]:
    header = ["序号", "工作任务", "时序进度", "责任单位", "完成时限"]
    return [header] + [
        [str(n), task, ms, units, dl] for n, (task, ms, units, dl) in enumerate(tasks, 1)
    ]


def test_unreadable_or_out_of_year_schedule_warns_and_falls_back() -> None:
    plan = table_to_plan(
        _rows(
            ("甲任务。", "", "学会部", "尽快"),
            ("乙任务。", "5月：启动 3月：研讨", "学会部", "2024年3月底前"),
            ("丙任务。", "", "学会部", "6月底前"),
        ),
        source_name="2023年分工.xlsx",
        title="2023年分工方案",
        default_year=None,
    )
    reasons = [(w.line, w.reason) for w in plan.warnings if w.line]
    assert reasons == [
        (2, "任务 1 无法识别的完成时限：尽快，按督办策略安排"),
        (3, "任务 2 完成时限 2024年3月底前 不在计划年度 2023 年内，按督办策略安排"),
        (3, "任务 2 时序进度顺序颠倒：3月 早于 5月"),
    ]
    assert [item.deadline is None for item in plan.items] == [True, True, False]


def test_first_unit_leads_when_told() -> None:
    rows = _rows(
        ("甲任务。", "", "学会部、普及部、办公室", "年内"),
        ("乙任务。", "", "办公室", "年内"),
    )
    plain = table_to_plan(rows, source_name="x.xlsx", title="2023年分工", default_year=None)
    assert (plain.items[0].lead, plain.items[0].support) == (["学会部", "普及部", "办公室"], [])
    told = first_unit_leads(plain)
    assert (told.items[0].lead, told.items[0].support) == (["学会部"], ["普及部", "办公室"])
    assert (told.items[1].lead, told.items[1].support) == (["办公室"], [])
    assert FIRST_UNIT_LEADS in [w.reason for w in told.warnings]
    assert plain.items[0].support == []
