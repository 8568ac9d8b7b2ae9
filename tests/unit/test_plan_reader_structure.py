"""Structure rules, each on a text written for the test."""

from __future__ import annotations

from datetime import date

import pytest

from models.errors import InputError
from models.plan_reader.document import parse_plan_text
from models.plan_schema import ParsedPlan


def parse(text: str) -> ParsedPlan:
    return parse_plan_text(text, source_name="t.txt", default_year=2030)


def numbers(plan: ParsedPlan) -> list[tuple[str | None, str, str]]:
    return [(item.section, item.number, item.title) for item in plan.items]


def test_sections_and_dot_items() -> None:
    plan = parse("2030年工作要点\n一、党建\n1.学习。正文\n2.教育。\n二、科普\n3.活动。\n")
    assert [(s.number, s.title) for s in plan.sections] == [("一", "党建"), ("二", "科普")]
    assert numbers(plan) == [("一", "1", "学习"), ("一", "2", "教育"), ("二", "3", "活动")]


def test_items_with_chinese_comma_marker() -> None:
    plan = parse("2030年工作要点\n1、第一项工作。\n2、第二项工作。\n")
    assert [i.number for i in plan.items] == ["1", "2"]


@pytest.mark.parametrize("marker", ["（{}）", "({})"])
def test_parenthesised_chinese_numbers(marker: str) -> None:
    plan = parse(f"2030年方案\n{marker.format('一')}甲任务。\n{marker.format('二')}乙任务。\n")
    assert [i.number for i in plan.items] == [marker.format("一"), marker.format("二")]


def test_parenthesised_digits() -> None:
    plan = parse("2030年方案\n(1)甲任务。\n（2）乙任务。\n")
    assert [i.number for i in plan.items] == ["(1)", "（2）"]


def test_space_after_number() -> None:
    plan = parse("2030年要点\n1.  搭建平台。正文。\n")
    assert plan.items[0].title == "搭建平台"


def test_number_running_into_digits_or_year() -> None:
    text = "2030年要点\n" + "".join(f"{n}.任务{n}。\n" for n in range(1, 11))
    text += "11.121人才梯队建设。培养人才。\n"
    plan = parse(text)
    assert plan.items[-1].number == "11"
    assert plan.items[-1].title == "121人才梯队建设"
    first = parse("2030年要点\n1.2009年12月启动的工程要收尾。\n2.其他。\n")
    assert first.items[0].number == "1"
    assert first.items[0].title == "2009年12月启动的工程要收尾"


def test_decimal_at_line_start_is_not_an_item() -> None:
    plan = parse("2030年要点\n1.任务一。\n6.2%左右的增长要保持。\n2.任务二。\n")
    assert [i.number for i in plan.items] == ["1", "2"]
    assert "6.2%左右" in plan.items[0].body


def test_title_is_first_sentence_body_is_rest() -> None:
    plan = parse("2030年要点\n1.推进改革。深化改革;完善制度。\n")
    assert plan.items[0].title == "推进改革"
    assert plan.items[0].body == "深化改革;完善制度。"


def test_grouped_lists_after_heading_lines() -> None:
    text = (
        "2030年讲话\n二是搭建平台,实施行动。\n三个平台是:\n(一)平台甲。\n(二)平台乙。\n(三)平台丙。\n"
        "两项行动是：\n（一）行动甲。\n（二）行动乙。\n三是其他要求。不是任务。\n"
    )
    plan = parse(text)
    assert [(g.heading, g.items) for g in plan.groups] == [("三个平台", 3), ("两项行动", 2)]
    assert [i.group for i in plan.items] == ["三个平台"] * 3 + ["两项行动"] * 2
    assert "不是任务" not in plan.items[-1].body


def test_intermediate_headings_are_not_items() -> None:
    text = (
        "2030年要点\n一、党建\n（一）加强思想建设\n1.学习理论。\n2.开展教育。\n"
        "（二）加强组织建设\n3.换届。\n"
    )
    plan = parse(text)
    assert [(i.section, i.number) for i in plan.items] == [("一", "1"), ("一", "2"), ("一", "3")]


def test_deeper_points_stay_in_the_item_body() -> None:
    plan = parse("2030年要点\n1.开展活动。包括:\n(1)讲座;\n(2)展览。\n2.其他。\n")
    assert [i.number for i in plan.items] == ["1", "2"]
    assert "(2)展览" in plan.items[0].body


def test_continuation_paragraph_joins_the_item_body() -> None:
    plan = parse("2030年要点\n1.开展活动。第一段。\n第二段内容。\n2.其他。\n")
    assert plan.items[0].body == "第一段。\n第二段内容。"


def test_item_line_numbers() -> None:
    plan = parse("2030年要点\n\n一、部分\n\n1.甲。\n\n2.乙。\n")
    assert [i.line for i in plan.items] == [5, 7]


def test_metadata_title_organisation_year_issued() -> None:
    text = "各单位:\n现将计划印发。\n某市科协\n2030年3月5日\n某市科协2030年工作要点\n1.任务。\n"
    plan = parse_plan_text(text, source_name="t.txt")
    assert (plan.title, plan.organisation, plan.year) == (
        "某市科协2030年工作要点",
        "某市科协",
        2030,
    )
    assert plan.issued == date(2030, 3, 5)


def test_year_missing_everywhere_uses_default_or_fails() -> None:
    assert parse("工作要点\n1.任务。\n").year == 2030
    with pytest.raises(InputError, match="年度"):
        parse_plan_text("工作要点\n1.任务。\n", source_name="t.txt")


def test_no_numbered_items_is_an_error() -> None:
    with pytest.raises(InputError, match="没有找到编号的任务条目"):
        parse("2030年工作总结\n今年我们做了很多工作。\n明年继续努力。\n")


def test_sections_only_become_items() -> None:
    plan = parse("2030年讲话\n一、上档次,提高地位。内容。\n二、上质量,提高水平。内容。\n")
    assert [(i.section, i.number, i.title) for i in plan.items] == [
        ("一", "一", "上档次,提高地位"),
        ("二", "二", "上质量,提高水平"),
    ]
    assert any("作为一项任务" in w.reason for w in plan.warnings)


def test_plan_without_phases_gets_default_phases_and_a_warning() -> None:
    plan = parse("2030年要点\n1.任务。\n")
    assert [p.key for p in plan.phases] == ["mobilize", "implement", "review"]
    assert plan.phases[0].start_date == date(2030, 1, 1)
    assert plan.phases[-1].end_date == date(2030, 12, 31)
    assert any("默认阶段" in w.reason for w in plan.warnings)


def test_dated_steps_are_phases_not_items() -> None:
    text = (
        "2030年实施方案\n一、主要任务\n（一）任务甲。\n二、方法步骤\n"
        "（一）动员部署阶段（3月下旬—5月上旬）。制定方案。\n（二）组织实施阶段(5月中旬12月中旬)。落实。\n"
        "（三）总结验收阶段（12月下旬）。总结。\n"
    )
    plan = parse(text)
    assert [i.title for i in plan.items] == ["任务甲"]
    assert [(p.key, p.start_date, p.end_date) for p in plan.phases] == [
        ("mobilize", date(2030, 3, 21), date(2030, 5, 10)),
        ("implement", date(2030, 5, 11), date(2030, 12, 20)),
        ("review", date(2030, 12, 21), date(2030, 12, 31)),
    ]


def test_items_without_units_are_kept_and_reported() -> None:
    plan = parse("2030年要点\n1.任务甲。\n2.任务乙。（牵头单位：办公室）\n")
    assert len(plan.items) == 2
    flagged = [w for w in plan.warnings if "未写明牵头单位" in w.reason]
    assert [w.line for w in flagged] == [2]


def test_title_of_a_notice_is_the_plan_it_issues() -> None:
    plan = parse("关于印发《某市2031年科技工作要点》的通知\n一、创新\n（一）攻关。\n")
    assert (plan.title, plan.year) == ("某市2031年科技工作要点", 2031)


def test_missing_year_is_reported_when_defaulted() -> None:
    plan = parse("工作要点\n1.任务。\n")
    assert plan.warnings[0].reason == "文档中找不到年度，按 2030 年处理"


def test_shallower_numbering_without_sub_items_is_still_an_item() -> None:
    text = "2030年要点\n一、党建\n1.学习。\n2.教育。\n二、科普\n（一）举办活动。\n（二）建基地。\n"
    plan = parse(text)
    assert [(i.section, i.number) for i in plan.items] == [
        ("一", "1"), ("一", "2"), ("二", "（一）"), ("二", "（二）"),
    ]  # fmt: skip
