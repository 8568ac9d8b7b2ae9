"""The Word 通报 is an official document: GB/T 9704 page, East Asian fonts, page numbers.

Read from the package's XML, since that is what Word and WPS read: `font.name` alone leaves
Chinese text in the default font, so every style must carry `w:eastAsia` and no theme font.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy.orm import Session

from tests.report_builders import q3_report

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
GENERATED = datetime(2021, 9, 30, 10, 0, tzinfo=UTC)
TWIPS_PER_MM = 1440 / 25.4


def _package(session: Session, tmp_path: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(q3_report(session, tmp_path, ["docx"]).files["docx"])


def _xml(package: zipfile.ZipFile, name: str) -> ElementTree.Element:
    return ElementTree.fromstring(package.read(name))  # noqa: S314 (our own output)


def _mm(twips: str | None) -> float:
    assert twips is not None
    return int(twips) / TWIPS_PER_MM


def test_page_is_a4_with_the_official_text_block(session: Session, tmp_path: Path) -> None:
    document = _xml(_package(session, tmp_path), "word/document.xml")
    section = document.find(f"{W}body/{W}sectPr")
    assert section is not None
    size, margins = section.find(f"{W}pgSz"), section.find(f"{W}pgMar")
    assert size is not None and margins is not None
    width, height = _mm(size.get(f"{W}w")), _mm(size.get(f"{W}h"))
    assert round(width) == 210 and round(height) == 297
    top, bottom = _mm(margins.get(f"{W}top")), _mm(margins.get(f"{W}bottom"))
    left, right = _mm(margins.get(f"{W}left")), _mm(margins.get(f"{W}right"))
    assert round(top) == 37 and round(left) == 28
    assert round(width - left - right) == 156 and round(height - top - bottom) == 225
    grid = section.find(f"{W}docGrid")
    assert grid is not None and grid.get(f"{W}type") == "lines"
    # 22 lines in the 225 mm block.
    assert round(225 / _mm(grid.get(f"{W}linePitch"))) == 22


def _style(styles: ElementTree.Element, name: str) -> ElementTree.Element:
    for style in styles.iter(f"{W}style"):
        label = style.find(f"{W}name")
        if label is not None and label.get(f"{W}val") == name:
            return style
    raise AssertionError(f"no style {name}")


def _fonts(style: ElementTree.Element) -> tuple[dict[str, str], int]:
    props = style.find(f"{W}rPr")
    assert props is not None
    fonts = props.find(f"{W}rFonts")
    size = props.find(f"{W}sz")
    assert fonts is not None and size is not None
    return {key.removeprefix(W): value for key, value in fonts.attrib.items()}, int(
        size.get(f"{W}val", "0")
    )


def test_each_level_has_its_east_asian_font_and_size(session: Session, tmp_path: Path) -> None:
    package = _package(session, tmp_path)
    styles = _xml(package, "word/styles.xml")
    expected = {
        "Title": ("方正小标宋简体", 44),  # 2号 = 22 pt = 44 half-points
        "Normal": ("仿宋_GB2312", 32),  # 3号
        "heading 1": ("黑体", 32),
        "heading 2": ("楷体_GB2312", 32),
    }
    for name, (east_asian, half_points) in expected.items():
        fonts, size = _fonts(_style(styles, name))
        assert fonts.get("eastAsia") == east_asian, name
        assert "eastAsiaTheme" not in fonts and "asciiTheme" not in fonts, name
        assert fonts.get("ascii") == "Times New Roman", name
        assert size == half_points, name
    document = package.read("word/document.xml").decode()
    # The headings the outline writes use those styles, in order 一、 then （一）.
    assert 'w:val="Heading1"' in document and 'w:val="Heading2"' in document
    assert document.index("一、总体情况") < document.index("（一）")


def test_page_numbers_at_the_foot_odd_right_even_left(session: Session, tmp_path: Path) -> None:
    package = _package(session, tmp_path)
    settings = _xml(package, "word/settings.xml")
    assert settings.find(f"{W}evenAndOddHeaders") is not None
    document = _xml(package, "word/document.xml")
    section = document.find(f"{W}body/{W}sectPr")
    assert section is not None
    rels = package.read("word/_rels/document.xml.rels").decode()
    alignments = {}
    for reference in section.findall(f"{W}footerReference"):
        kind = reference.get(f"{W}type")
        rid = reference.get(
            "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
        )
        target = rels.split(f'Id="{rid}"')[1].split('Target="')[1].split('"')[0]
        footer = _xml(package, f"word/{target}")
        text = "".join(node.text or "" for node in footer.iter(f"{W}t"))
        instruction = "".join(node.text or "" for node in footer.iter(f"{W}instrText"))
        assert text == "—  —" and instruction.strip() == "PAGE", kind
        justification = footer.find(f".//{W}jc")
        assert justification is not None
        alignments[kind] = justification.get(f"{W}val")
        sizes = {node.get(f"{W}val") for node in footer.iter(f"{W}sz")}
        assert sizes == {"28"}  # 4号
    assert alignments == {"default": "right", "even": "left"}


def test_tables_written_as_text_equal_the_tree_built_document(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables go into the saved `document.xml` as text (`docx._Tables`), never as an
    lxml tree: the document is the same, canonically, as one whose tables were parsed into
    python-docx's tree, and no placeholder is left."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    from tasks.reporting import docx as report_docx

    review = q3_report(session, tmp_path, ["docx"]).review
    written = zipfile.ZipFile(io.BytesIO(report_docx.build_docx(review, generated_at=GENERATED)))

    def tree_add(self: object, document: Any, block: Any) -> None:
        xml = report_docx.table_xml(block).replace("<w:tbl>", f"<w:tbl {nsdecls('w')}>", 1)
        document.element.body._insert_tbl(parse_xml(xml))

    monkeypatch.setattr(report_docx._Tables, "add", tree_add)
    built = zipfile.ZipFile(io.BytesIO(report_docx.build_docx(review, generated_at=GENERATED)))
    text = written.read("word/document.xml").decode()
    assert "duban-table-" not in text
    assert text.count("<w:tbl>") >= 2
    assert ElementTree.canonicalize(text) == ElementTree.canonicalize(
        built.read("word/document.xml").decode()
    )
    assert sorted(written.namelist()) == sorted(built.namelist())
