"""A 32-item task-division table (tests/plan_tables.py) in .xlsx and .docx, columns in any order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from models.plan_reader.document import read_plan_file
from models.plan_reader.units import split_units
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
