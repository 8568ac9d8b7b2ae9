"""The 督办单 Word document filled from a per-colour template: it opens with python-docx, says
the order's number, item, department and dates, and has the bytes python-docx itself lays out
for the same order (also for text that needs escaping or python-docx's own layout)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest
from docx import Document

from models.clock import LOCAL_TZ
from models.orders import SupervisionOrder
from tasks.reporting.order_docx import build_order_docx, render_order_docx

ISSUED = datetime(2021, 7, 5, 9, 30, 12, 500, tzinfo=LOCAL_TZ)


def _order(**changes: object) -> SupervisionOrder:
    fields: dict[str, object] = {
        "number": "督办〔2021〕第12号",
        "level": 2,
        "colour": "yellow",
        "matter": (
            "第3项“搭建高水平科技开放交流平台”（责任部室：学会部）应于2021年6月30日报送进展情况，"
            "截至2021年7月5日已逾期3个工作日未报送，现予分管领导督办。"
        ),
        "requirement": "请学会部于2021年7月8日前通过报送链接报送进展情况，并书面说明逾期原因；",
        "issued_at": ISSUED,
    }
    return SupervisionOrder(**(fields | changes))


def _both(order: SupervisionOrder, recipient: str = "学会部") -> tuple[bytes, bytes]:
    arguments = {"level_label": "分管领导督办", "issuer": "某省督查室", "recipient": recipient}
    return build_order_docx(order, **arguments), render_order_docx(order, **arguments)


def test_a_filled_order_opens_with_python_docx_and_says_what_the_order_is() -> None:
    data, _ = _both(_order())
    document = Document(io.BytesIO(data))
    lines = [paragraph.text for paragraph in document.paragraphs]
    assert lines[:3] == ["黄色督办单", "督办〔2021〕第12号", "学会部："]
    assert "第3项“搭建高水平科技开放交流平台”（责任部室：学会部）" in lines[4]
    assert "应于2021年6月30日报送进展情况，截至2021年7月5日已逾期3个工作日" in lines[4]
    assert lines[6].startswith("请学会部于2021年7月8日前")
    assert lines[7:] == ["督办级别：分管领导督办（第2级）", "某省督查室", "2021年7月5日"]
    title = document.paragraphs[0].runs[0]
    assert title.font.color.rgb is not None and str(title.font.color.rgb) == "C98A00"
    properties = document.core_properties
    assert properties.title == "督办〔2021〕第12号 督办单"
    # the issue time as written on the order (its local wall time, seconds kept)
    assert properties.created == properties.modified == datetime(2021, 7, 5, 9, 30, 12, tzinfo=UTC)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"colour": "red", "level": 3},
        {"colour": "blue", "level": 1},
        {"colour": "unknown"},
        {"matter": "A&B <c> “d” 'e'", "number": "督办&〔2021〕第1号"},
        {"requirement": " 前后有空格\u3000"},
        {"matter": "分两行\n第二行\t制表"},
        {"requirement": ""},
    ],
)
def test_the_filled_template_has_the_bytes_python_docx_lays_out(changes: dict[str, object]) -> None:
    filled, laid_out = _both(_order(**changes))
    assert filled == laid_out


def test_each_order_gets_its_own_words_from_the_same_template() -> None:
    first, _ = _both(_order())
    second, _ = _both(_order(number="督办〔2021〕第13号"), recipient="宣传部")
    text = zipfile.ZipFile(io.BytesIO(second)).read("word/document.xml").decode()
    assert "督办〔2021〕第13号" in text and "宣传部：" in text and "第12号" not in text
    assert first != second
