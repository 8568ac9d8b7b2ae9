"""One script for readers, single-month phase spans, and report titles that name the office once."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import cast

from models.phase_text import phase_range
from models.plan_reader.document import parse_plan_text
from models.review import PlanRow, Review, quarter_period, year_period
from models.script import original_if_changed, plan_for_readers, simplified
from tasks.reporting.outline import report_title

TRADITIONAL = """長治市科學技術協會2021年工作要點

一、強化黨建引領
1.搭建高水平科技開放交流平臺。舉辦學術活動不少於20場次。（牽頭部室：學會部；配合部室：辦公室）
"""


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def test_plan_for_readers_simplifies_every_reader_text_and_keeps_the_parse() -> None:
    parsed = parse_plan_text(TRADITIONAL, source_name="plan.txt")
    shown = plan_for_readers(parsed)
    assert shown.title == "长治市科学技术协会2021年工作要点"
    assert shown.sections[0].title == "强化党建引领"
    item = shown.items[0]
    assert item.title == "搭建高水平科技开放交流平台"
    assert "不少于20场次" in item.body
    assert item.lead == ["学会部"] and item.support == ["办公室"]
    assert [t.text for t in item.targets] == ["不少于20场次"]
    assert item.targets[0].value == parsed.items[0].targets[0].value
    assert parsed.title == "長治市科學技術協會2021年工作要點"  # the original is untouched
    assert simplified("着力推进") == "着力推进"


def test_original_kept_only_when_it_differs() -> None:
    assert original_if_changed("協會", "协会") == "協會"
    assert original_if_changed("协会", "协会") is None


def test_phase_range_reads_a_single_month_once() -> None:
    dec = (date(2021, 12, 1), date(2021, 12, 31))
    assert phase_range("12月", "12月", *dec, format_day=_day) == "12月"
    assert phase_range("2021年12月", "12月", *dec, format_day=_day) == "2021年12月"
    spring = (date(2021, 3, 21), date(2021, 5, 10))
    assert phase_range("3月下旬", "5月上旬", *spring, format_day=_day) == "3月下旬至5月上旬"
    assert phase_range("", "", *spring, format_day=_day) == "3月21日至5月10日"
    one = (date(2021, 12, 31), date(2021, 12, 31))
    assert phase_range("", "", *one, format_day=_day) == "12月31日"


def _review(title: str, organisation: str, *, year: bool = False) -> Review:
    period = year_period(2021) if year else quarter_period(2021, 3)
    plan = PlanRow(id=1, title=title, organisation=organisation, year=2021)
    return cast(Review, SimpleNamespace(plan=plan, period=period))


def test_report_title_names_the_organisation_once() -> None:
    own = report_title(_review("长治市科学技术协会2021年工作要点", "长治市科学技术协会"))
    assert own.count("长治市科学技术协会") == 1
    assert own.startswith("《长治市科学技术协会2021年工作要点》")
    plain = report_title(_review("2021年工作要点", "某市科协", year=True))
    assert plain.startswith("某市科协《2021年工作要点》") and plain.endswith("总结评估报告")
