"""Normalisation: pinyin annotations, width, boilerplate, page-break markers, damaged text."""

from __future__ import annotations

from models.plan_reader.normalise import clean_document, split_inline, strip_pinyin, to_half_width


def test_pinyin_after_characters_is_removed() -> None:
    assert strip_pinyin("學(xué)會(huì)部(bù)") == "學會部"


def test_parentheses_with_chinese_digits_or_capitals_are_kept() -> None:
    text = "市直各學會(協會、研究會),條例(試行),綱要(2021-2025年),科普(e站),A(B)"
    assert strip_pinyin(text) == text


def test_full_width_digits_and_letters_become_half_width() -> None:
    assert to_half_width("１２３ＡＢＣ％\u3000，。") == "123ABC% ，。"


def test_damaged_characters_pass_through() -> None:
    text = "發揚“三?!本?,確??茀f工作"
    document = clean_document(f"1.{text}。")
    assert document.paragraphs[0].text == f"1.{text}。"


SCRAPED = """收藏 分享(赏)

某某实施方案.docx

上传人:a****b 文档编号:1 上传时间:2023-04-21 格式:DOCX 页数:9
下载 相关 举报
某某实施方案.docx_第1页
第1页 / 共9页
资源描述

1、前言部分 一、总体要求 按照要求做好工作,确保

2、完成任务。 二、主要任务 (一)任务甲。内容甲

3、继续内容甲。 (二)任务乙。内容乙
展开阅读全文
相关搜索
copyright@ 2008-2023 example.com网站版权所有
"""


def test_scraped_boilerplate_removed_and_pages_rejoined() -> None:
    document = clean_document(SCRAPED)
    texts = [p.text for p in document.paragraphs]
    assert document.scraped
    assert texts == [
        "某某实施方案.docx",
        "前言部分",
        "一、总体要求 按照要求做好工作,确保完成任务。",
        "二、主要任务",
        "(一)任务甲。内容甲继续内容甲。",
        "(二)任务乙。内容乙",
    ]
    assert [p.line for p in document.paragraphs][-1] == 15


def test_page_marker_that_cuts_mid_sentence_is_not_an_item() -> None:
    document = clean_document(SCRAPED)
    assert not any(p.text.startswith(("2、", "3、")) for p in document.paragraphs)


def test_run_on_line_split_before_markers_after_full_stop() -> None:
    assert split_inline("开场白。一、第一部分内容。二、第二部分。(一)子项") == [
        "开场白。",
        "一、第一部分内容。",
        "二、第二部分。",
        "(一)子项",
    ]


def test_plain_document_keeps_line_numbers() -> None:
    document = clean_document("标题\n\n一、部分\n1.任务。\n")
    assert [(p.line, p.text) for p in document.paragraphs] == [
        (1, "标题"),
        (3, "一、部分"),
        (4, "1.任务。"),
    ]


def test_run_on_items_split_after_a_closing_unit_clause() -> None:
    parts = split_inline("(一)甲。（牵头单位：A）(二)乙。")
    assert parts == ["(一)甲。（牵头单位：A）", "(二)乙。"]
    assert split_inline("县(市)(区)协调") == ["县(市)(区)协调"]
