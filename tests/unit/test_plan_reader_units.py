"""Responsible-unit clauses: labels, roles, separators, collective names, qualifiers."""

from __future__ import annotations

import pytest

from models.plan_reader.document import parse_plan_text
from models.plan_reader.units import parse_unit_clause, split_units, take_trailing_units


@pytest.mark.parametrize(
    ("clause", "lead", "support"),
    [
        ("（牵头部室：学会部、普及部）", ["学会部", "普及部"], []),
        ("(牽頭部室:機關黨支部、辦公室)", ["機關黨支部", "辦公室"], []),
        (
            "（牵头单位：市发改委；配合单位：市财政局，市统计局）",
            ["市发改委"],
            ["市财政局", "市统计局"],
        ),
        ("（牵头部门：市教育局）", ["市教育局"], []),
        ("〔责任单位：市科协、市科技局〕", ["市科协", "市科技局"], []),
        ("（牵头单位：市科协；责任单位：各区、县级市）", ["市科协"], ["各区、县级市"]),
    ],
)
def test_trailing_clause_roles(clause: str, lead: list[str], support: list[str]) -> None:
    text, units = take_trailing_units(f"开展工作。内容。{clause}")
    assert text == "开展工作。内容。"
    assert (units.lead, units.support) == (lead, support)


def test_separators_outside_parentheses_only() -> None:
    assert split_units("A、B，C,D；E;F") == ["A", "B", "C", "D", "E", "F"]
    assert split_units("县(市、区)科协、市直学会") == ["县(市、区)科协", "市直学会"]


def test_collective_designations_stay_whole() -> None:
    assert split_units("各区、县级市、各有关单位") == ["各区、县级市", "各有关单位"]


def test_qualifiers_are_dropped() -> None:
    assert split_units("市教育局、市科协按职责分工负责") == ["市教育局", "市科协"]
    assert split_units("市民政局等") == ["市民政局"]


def test_units_on_their_own_lines() -> None:
    text = (
        "2030年要点\n1.建设基地。内容。\n牵头单位:普及部\n配合单位:学会部、办公室\n"
        "2.下一项。\n责任单位：办公室\n"
    )
    plan = parse_plan_text(text, source_name="t.txt")
    assert (plan.items[0].lead, plan.items[0].support) == (["普及部"], ["学会部", "办公室"])
    assert plan.items[0].body == "内容。"
    assert plan.items[1].lead == ["办公室"]


def test_label_mentioned_inside_body_is_not_read() -> None:
    text = "2030年要点\n1.明确分工。各牵头单位:要加强统筹,配合单位要积极参与。\n"
    plan = parse_plan_text(text, source_name="t.txt")
    assert plan.items[0].lead == []
    assert plan.items[0].support == []


def test_clause_without_brackets() -> None:
    units = parse_unit_clause("牵头单位：A、B 责任单位：C")
    assert (units.lead, units.support) == (["A", "B"], ["C"])


def test_unit_clause_is_not_part_of_title() -> None:
    plan = parse_plan_text("2030年要点\n1.推进工作（牵头单位：办公室）\n", source_name="t.txt")
    assert plan.items[0].title == "推进工作"
    assert plan.items[0].lead == ["办公室"]


def test_unbracketed_clause_after_the_last_sentence() -> None:
    text, units = take_trailing_units("开展工作。内容。牵头单位：市科协；配合单位：市教育局。")
    assert text == "开展工作。内容。"
    assert (units.lead, units.support) == (["市科协"], ["市教育局"])


def test_own_line_responsibility_next_to_a_lead_line_is_support() -> None:
    text = "2030年要点\n1.培育主体。\n牵头单位：市科技局\n责任单位：各区、县级市人民政府\n"
    plan = parse_plan_text(text, source_name="t.txt")
    assert plan.items[0].lead == ["市科技局"]
    assert plan.items[0].support == ["各区、县级市人民政府"]
