"""A 督办单 as a Word document in the official layout of the 通报 (`tasks.reporting.docx`).

The title is coloured by the order's level (蓝/黄/红), the number sits under it, the body
states the matter and the requirement, and the issuer and date close it. Deterministic for the
same order: core properties come from the issue time and the zip entries carry a fixed time.
"""

from __future__ import annotations

import io

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt, RGBColor

from models.clock import local_date
from models.formats import cn_day
from models.orders import COLOUR_RGB, COLOURS, SupervisionOrder
from tasks.reporting.docx import (
    BODY_SIZE,
    HEADING_FONTS,
    TITLE_FONT,
    _east_asian,
    _normalise_zip,
    _setup,
)


def _day(order: SupervisionOrder) -> str:
    return cn_day(local_date(order.issued_at))


def build_order_docx(
    order: SupervisionOrder, *, level_label: str, issuer: str, recipient: str
) -> bytes:
    """The order as .docx bytes."""
    document = Document()
    _setup(document)
    title = document.add_paragraph(style="Title")
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(f"{COLOURS.get(order.colour, '')}督办单")
    _east_asian(run.font, TITLE_FONT)
    run.font.color.rgb = RGBColor.from_string(COLOUR_RGB.get(order.colour, "000000"))
    number = document.add_paragraph(order.number)
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(f"{recipient}：")
    for label, text in (("督办事项", order.matter), ("办理要求", order.requirement)):
        heading = document.add_paragraph()
        piece = heading.add_run(f"{label}：")
        _east_asian(piece.font, HEADING_FONTS[1])
        body = document.add_paragraph(text)
        body.paragraph_format.first_line_indent = BODY_SIZE * 2
    level = document.add_paragraph(f"督办级别：{level_label}（第{order.level}级）")
    level.paragraph_format.first_line_indent = BODY_SIZE * 2
    for text in (issuer, _day(order)):
        closing = document.add_paragraph(text)
        closing.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        closing.paragraph_format.right_indent = Pt(32)
    moment = order.issued_at.replace(tzinfo=None, microsecond=0)
    properties = document.core_properties
    properties.title = f"{order.number} 督办单"
    properties.author = properties.last_modified_by = "督办系统"
    properties.created = properties.modified = properties.last_printed = moment
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalise_zip(buffer.getvalue())
