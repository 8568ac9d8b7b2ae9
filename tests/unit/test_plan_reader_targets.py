"""Target phrases: comparators, units, Chinese numbers, and what is not a target."""

from __future__ import annotations

import pytest

from models.plan_reader.targets import chinese_number, find_targets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("开展活动不少于200场次", ("不少于200场次", "ge", 200.0, "场次")),
        ("培育5家以上", ("5家以上", "ge", 5.0, "家")),
        ("增长6.2%左右", ("6.2%左右", "approx", 6.2, "%")),
        ("力争建成6家县级科技馆", ("6家", "eq", 6.0, "家")),
        ("举办讲座20场(次)以上", ("20场(次)以上", "ge", 20.0, "场次")),
        ("覆盖1万人次", ("1万人次", "eq", 10000.0, "人次")),
        ("建成两家以上", ("两家以上", "ge", 2.0, "家")),
        ("不超过3个", ("不超过3个", "le", 3.0, "个")),
        ("超过10篇", ("超过10篇", "gt", 10.0, "篇")),
        ("少于5项", ("少于5项", "lt", 5.0, "项")),
        ("控制在8%以内", ("控制在8%以内", "le", 8.0, "%")),
        ("不少於30場", ("不少於30場", "ge", 30.0, "場")),
    ],
)
def test_target_phrases(text: str, expected: tuple[str, str, float, str]) -> None:
    found = find_targets(text)
    assert [(t.text, t.comparator, t.value, t.unit) for t in found] == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "5年内完成",
        "60岁以上老人",
        "3月1日召开",
        "2021年",
        "建设121人才梯队",
        "新入职“三长”人员",
        '新入职"三长"人员',
        "党的XX大精神",
        "培育一批示范基地",
        "国际十字花科蔬菜年会",
        "第3名",
        "围绕14个产业集群",
        "四个平台",
        "3个月内",
        "纲要(2021-2025-2035年)",
    ],
)
def test_not_targets(text: str) -> None:
    assert find_targets(text) == []


def test_order_and_verbatim_text_kept() -> None:
    found = find_targets("行动100场,论坛10场,不少于200场次,讲座20场(次)以上")
    assert [t.text for t in found] == ["100场", "10场", "不少于200场次", "20场(次)以上"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("十", 10), ("十二", 12), ("二十", 20), ("两百", 200), ("三万五千", 35000), ("一百零五", 105)],
)
def test_chinese_numbers(text: str, value: int) -> None:
    assert chinese_number(text) == value


def test_not_a_chinese_number() -> None:
    assert chinese_number("三四") is None
    assert chinese_number("甲") is None
