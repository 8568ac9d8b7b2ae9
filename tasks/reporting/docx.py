"""The report as an editable Word document (python-docx): headings, tables, PNG charts.

The file is byte-identical for the same review and generation time: core properties are
set from `generated_at` and the zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import io
import re
import secrets
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm, Pt, RGBColor

from models.review import Review
from tasks.reporting import charts
from tasks.reporting.outline import Chart, Heading, Paragraph, Table, build_outline

# GB/T 9704 as offices apply it: 小标宋 title, 仿宋 body, 黑体 / 楷体 headings, Times New Roman
# for Latin text and digits, 宋体 page numbers. Chinese text takes the East Asian font (w:eastAsia);
# `font.name` alone changes only the Latin one.
TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONTS = {1: "黑体", 2: "楷体_GB2312"}
LATIN_FONT = "Times New Roman"
PAGE_NUMBER_FONT = "宋体"
TITLE_SIZE = Pt(22)  # 2号
BODY_SIZE = Pt(16)  # 3号
PAGE_NUMBER_SIZE = Pt(14)  # 4号
# A4 with a 156 mm × 225 mm text block: 天头 37 mm, 订口 28 mm; 22 lines of 28 characters.
MARGINS_MM = {"top": 37, "bottom": 35, "left": 28, "right": 26}
TEXT_WIDTH_MM = 156
LINE_PITCH = Pt(28.95)
SHADES = {"绿灯": "DFF0D8", "黄灯": "FCF3CF", "红灯": "F8D7DA"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _east_asian(style_font: object, name: str, latin: str = LATIN_FONT) -> None:
    """Set the East Asian font `name` (and the Latin one) of a style or run font, no theme."""
    font = style_font
    font.name = latin  # type: ignore[attr-defined]
    rpr = font.element.get_or_add_rPr()  # type: ignore[attr-defined]
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)
    fonts.set(qn("w:eastAsia"), name)


def _style(document: DocumentObject, name: str, font: str, size: Pt) -> None:
    """One paragraph style in the official register: black, not bold, exact line pitch."""
    style = document.styles[name]
    _east_asian(style.font, font)
    style.font.size = size
    style.font.bold = False
    style.font.italic = False
    style.font.color.rgb = RGBColor(0, 0, 0)
    layout = style.paragraph_format
    layout.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    layout.line_spacing = LINE_PITCH
    layout.space_before = layout.space_after = Pt(0)


def _page_number(footer: object, *, align: WD_ALIGN_PARAGRAPH) -> None:
    """`— N —` in 4号 宋体 at the foot; odd pages right, even pages left, one character in."""
    paragraph = footer.paragraphs[0]  # type: ignore[attr-defined]
    paragraph.alignment = align
    layout = paragraph.paragraph_format
    layout.right_indent = PAGE_NUMBER_SIZE if align == WD_ALIGN_PARAGRAPH.RIGHT else None
    layout.left_indent = PAGE_NUMBER_SIZE if align == WD_ALIGN_PARAGRAPH.LEFT else None

    def run(text: str = "") -> object:
        piece = paragraph.add_run(text)
        _east_asian(piece.font, PAGE_NUMBER_FONT, latin=PAGE_NUMBER_FONT)
        piece.font.size = PAGE_NUMBER_SIZE
        return piece

    run("— ")
    for kind, instruction in (("begin", None), (None, " PAGE "), ("end", None)):
        element = run()._r  # type: ignore[attr-defined]
        if kind is None:
            text = OxmlElement("w:instrText")
            text.set(qn("xml:space"), "preserve")
            text.text = instruction
            element.append(text)
        else:
            field = OxmlElement("w:fldChar")
            field.set(qn("w:fldCharType"), kind)
            element.append(field)
    run(" —")


def _setup(document: DocumentObject) -> None:
    """A4, the GB/T 9704 margins and line grid, the fonts of each level, page numbers."""
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    grid = section._sectPr.find(qn("w:docGrid"))
    if grid is None:
        grid = OxmlElement("w:docGrid")
        section._sectPr.append(grid)
    grid.set(qn("w:type"), "lines")
    grid.set(qn("w:linePitch"), str(round(LINE_PITCH.twips)))
    _style(document, "Normal", BODY_FONT, BODY_SIZE)
    _style(document, "Title", TITLE_FONT, TITLE_SIZE)
    for level, font in HEADING_FONTS.items():
        _style(document, f"Heading {level}", font, BODY_SIZE)
    document.settings.odd_and_even_pages_header_footer = True
    _page_number(section.footer, align=WD_ALIGN_PARAGRAPH.RIGHT)
    _page_number(section.even_page_footer, align=WD_ALIGN_PARAGRAPH.LEFT)


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TEXT_WIDTH_TWIPS = round(Mm(TEXT_WIDTH_MM).twips)


def _cell(text: str, width: int, *, bold: bool = False, shade: str = "") -> str:
    """One `w:tc` as XML: 9-point text, optional bold and background shade."""
    clean = escape(_INVALID_XML.sub(" ", text))
    fill = f'<w:shd w:val="clear" w:color="auto" w:fill="{shade}"/>' if shade else ""
    weight = "<w:b/>" if bold else ""
    return (
        f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/>{fill}</w:tcPr>'
        f'<w:p><w:r><w:rPr>{weight}<w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr>'
        f'<w:t xml:space="preserve">{clean}</w:t></w:r></w:p></w:tc>'
    )


def table_xml(block: Table) -> str:
    """`block` as one Table Grid `w:tbl` element, XML text in the document's `w` namespace
    (declared by the document's root, not here)."""
    count = len(block.columns)
    width = TEXT_WIDTH_TWIPS // count
    rows = [
        "<w:tr><w:trPr><w:tblHeader/></w:trPr>"
        + "".join(_cell(text, width, bold=True) for text in block.columns)
        + "</w:tr>"
    ]
    for values in block.rows:
        cells = "".join(
            _cell(
                text,
                width,
                shade=SHADES.get(text, "") if index == block.colour_column else "",
            )
            for index, text in enumerate(values)
        )
        rows.append(f"<w:tr>{cells}</w:tr>")
    grid = "".join(f'<w:gridCol w:w="{width}"/>' for _ in range(count))
    return (
        '<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/>'
        '<w:tblW w:w="0" w:type="auto"/><w:tblLook w:val="04A0" w:firstRow="1" '
        'w:lastRow="0" w:firstColumn="1" w:lastColumn="0" w:noHBand="0" w:noVBand="1"/>'
        f"</w:tblPr><w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>"
    )


class _Tables:
    """The report's tables, kept as XML text until the package is saved.

    `add` puts a placeholder paragraph where a table goes; `fill` replaces each one in the
    saved `word/document.xml` with the table's XML. A 10,000-item table never becomes an
    lxml tree in python-docx (that tree took about 60 KB an item, most of the 10,000-item
    quarter report's 760 MB). The placeholders carry a random nonce, so no text of the
    review can be taken for one."""

    def __init__(self) -> None:
        self.marker = f"duban-table-{secrets.token_hex(16)}-"
        self.xml: list[str] = []

    def add(self, document: DocumentObject, block: Table) -> None:
        """Append `block`'s placeholder to `document`'s body."""
        text = f"{self.marker}{len(self.xml)}"
        placeholder = parse_xml(f"<w:p {nsdecls('w')}><w:r><w:t>{text}</w:t></w:r></w:p>")
        document.element.body._insert_p(placeholder)
        self.xml.append(table_xml(block))

    def fill(self, document_xml: bytes) -> bytes:
        """`document_xml` with each placeholder replaced by its table, in one pass."""
        found: list[int] = []

        def table(match: re.Match[str]) -> str:
            found.append(int(match[1]))
            return self.xml[found[-1]]

        placeholder = re.compile(f"<w:p><w:r><w:t>{self.marker}([0-9]+)</w:t></w:r></w:p>")
        text = placeholder.sub(table, document_xml.decode("utf-8"))
        if sorted(found) != list(range(len(self.xml))):
            raise RuntimeError("the report's tables lost their places in the document")
        return text.encode("utf-8")


def _chart(document: DocumentObject, block: Chart) -> None:
    document.add_picture(io.BytesIO(charts.png(block)), width=Mm(TEXT_WIDTH_MM))
    caption = document.add_paragraph(block.title)
    caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
    note = charts.png_legend(block)
    if note:
        legend = document.add_paragraph(note)
        for run in legend.runs:
            run.font.size = Pt(9)


def build_docx(review: Review, *, generated_at: datetime) -> bytes:
    """The report as .docx bytes, deterministic for the same review and `generated_at`."""
    title, blocks = build_outline(review, generated_at=generated_at)
    document = Document()
    _setup(document)
    tables = _Tables()
    heading = document.add_paragraph(title, style="Title")
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=block.level)
        elif isinstance(block, Paragraph):
            paragraph = document.add_paragraph(block.text)
            paragraph.paragraph_format.first_line_indent = BODY_SIZE * 2
        elif isinstance(block, Table):
            tables.add(document, block)
        else:
            _chart(document, block)
    moment = generated_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    properties = document.core_properties
    properties.title = title
    properties.author = properties.last_modified_by = "督办系统"
    properties.created = properties.modified = properties.last_printed = moment
    properties.revision = 1
    properties.comments = ""
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalise_zip(buffer.getvalue(), {"word/document.xml": tables.fill})


def _normalise_zip(
    data: bytes, rewrite: dict[str, Callable[[bytes], bytes]] | None = None
) -> bytes:
    """Rewrite the package with fixed entry timestamps so equal content gives equal bytes,
    each entry named in `rewrite` passed through its function."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            content = source.read(info.filename)
            if rewrite and info.filename in rewrite:
                content = rewrite[info.filename](content)
            target.writestr(entry, content)
    return out.getvalue()
