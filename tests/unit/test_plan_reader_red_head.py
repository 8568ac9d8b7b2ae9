"""A 红头文件's header: the issuing body and the 文号 are the plan's metadata, never items."""

from __future__ import annotations

from models.plan_reader.document import parse_plan_text

RED_HEAD = """长治市科学技术协会文件
长科协〔2021〕12号
签发人：张三
关于印发《2021年工作要点》的通知
各部室：
现将工作要点印发给你们，请认真贯彻落实。
一、强化引领
1.深入学习。（牵头部室：学会部）
2.搭建平台。（牵头部室：普及部）
"""


def test_issuer_and_document_number_are_metadata() -> None:
    plan = parse_plan_text(RED_HEAD, source_name="通知.txt")
    assert plan.title == "2021年工作要点"
    assert plan.organisation == "长治市科学技术协会"
    assert plan.document_number == "长科协〔2021〕12号"
    assert [item.title for item in plan.items] == ["深入学习", "搭建平台"]
    contract = plan.contract()
    assert list(contract)[:5] == ["title", "organisation", "year", "issued", "document_number"]
    assert contract["document_number"] == "长科协〔2021〕12号"


def test_a_plan_without_a_document_number_keeps_the_contract_as_it_was() -> None:
    plan = parse_plan_text(RED_HEAD.split("\n", 2)[2], source_name="通知.txt")
    assert plan.document_number is None
    assert "document_number" not in plan.contract()


def test_brackets_of_other_shapes() -> None:
    for written in ("晋科协[2023]5号", "市科协（2022）108号", "科协发［2024］ 3 号"):
        text = RED_HEAD.replace("长科协〔2021〕12号", written)
        assert parse_plan_text(text, source_name="x.txt").document_number == written.replace(
            " ", ""
        )
