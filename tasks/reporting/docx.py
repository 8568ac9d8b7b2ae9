"""The report as an editable Word document (python-docx): headings, tables, PNG charts.

The file is byte-identical for the same review and generation time: core properties are
set from `generated_at` and the zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm, Pt, RGBColor

from models.review import Review
from tasks.reporting import charts
from tasks.reporting.outline import Chart, Heading, Paragraph, Table, build_outline

BODY_FONT = "SimSun"
HEADING_FONT = "SimHei"
SHADES = {"绿灯": "DFF0D8", "黄灯": "FCF3CF", "红灯": "F8D7DA"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _east_asian(style_font: object, name: str) -> None:
    """Set the Latin and East Asian font of a style or run font element."""
    font = style_font
    font.name = name  # type: ignore[attr-defined]
    rpr = font.element.get_or_add_rPr()  # type: ignore[attr-defined]
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def _setup(document: DocumentObject) -> None:
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(18)
    section.top_margin, section.bottom_margin = Mm(20), Mm(18)
    normal = document.styles["Normal"]
    _east_asian(normal.font, BODY_FONT)
    normal.font.size = Pt(11)
    for name in ("Title", "Heading 1", "Heading 2"):
        style = document.styles[name]
        _east_asian(style.font, HEADING_FONT)
        style.font.color.rgb = RGBColor(0, 0, 0)


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TEXT_WIDTH_TWIPS = 9638


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


def _table(document: DocumentObject, block: Table) -> None:
    """Append `block` as a Table Grid table, built as one XML string (fast for 10k rows)."""
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
    xml = (
        f'<w:tbl {nsdecls("w")}><w:tblPr><w:tblStyle w:val="TableGrid"/>'
        '<w:tblW w:w="0" w:type="auto"/><w:tblLook w:val="04A0" w:firstRow="1" '
        'w:lastRow="0" w:firstColumn="1" w:lastColumn="0" w:noHBand="0" w:noVBand="1"/>'
        f"</w:tblPr><w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>"
    )
    document.element.body._insert_tbl(parse_xml(xml))


def _chart(document: DocumentObject, block: Chart) -> None:
    document.add_picture(io.BytesIO(charts.png(block)), width=Mm(170))
    caption = document.add_paragraph(block.title)
    caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
    legend = document.add_paragraph(charts.png_legend(block))
    for run in legend.runs:
        run.font.size = Pt(9)


def build_docx(review: Review, *, generated_at: datetime) -> bytes:
    """The report as .docx bytes, deterministic for the same review and `generated_at`."""
    title, blocks = build_outline(review, generated_at=generated_at)
    document = Document()
    _setup(document)
    heading = document.add_paragraph(title, style="Title")
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=block.level)
        elif isinstance(block, Paragraph):
            paragraph = document.add_paragraph(block.text)
            paragraph.paragraph_format.first_line_indent = Pt(22)
        elif isinstance(block, Table):
            _table(document, block)
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
    return _normalise_zip(buffer.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite the package with fixed entry timestamps so equal content gives equal bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()
