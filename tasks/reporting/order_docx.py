"""A 督办单 as a Word document in the official layout of the 通报 (`tasks.reporting.docx`).

The title is coloured by the order's level (蓝/黄/红), the number sits under it, the body
states the matter and the requirement, and the issuer and date close it. Deterministic for the
same order: core properties come from the issue time and the zip entries carry a fixed time.

python-docx lays out one template per colour, with a placeholder in each run that varies
(`render_order_docx`); `build_order_docx` fills a copy of it by escaped text substitution in
`word/document.xml` and `docProps/core.xml` and reuses the other zip entries as compressed, so
a pass issuing thousands of orders pays python-docx once per colour. The bytes are those
python-docx gives for the same order; text it would lay out differently (tabs, line breaks,
characters XML cannot hold, empty fields) takes the python-docx path itself.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from xml.sax.saxutils import escape

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

DOCUMENT_PART = "word/document.xml"
CORE_PART = "docProps/core.xml"
# Placeholders: ASCII words no field holds, so each occurs once in the template's XML.
_FIELDS = ("number", "recipient", "matter", "requirement", "level", "issuer", "day")
_PLACEHOLDER = {name: f"DubanOrderField{name.title()}" for name in _FIELDS}
_TITLE_FIELD = "DubanOrderFieldTitle"
_MOMENT = datetime(2001, 2, 3, 4, 5, 6)  # core properties hold naive UTC
_MOMENT_TEXT = _MOMENT.strftime("%Y-%m-%dT%H:%M:%SZ")
# What python-docx lays out as one plain `w:t`: no tab or line break, only XML characters.
_PLAIN = re.compile(r"[^\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]+")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_END_RECORD = struct.Struct("<4s4H2LH")


def _day(order: SupervisionOrder) -> str:
    return cn_day(local_date(order.issued_at))


def _moment(order: SupervisionOrder) -> datetime:
    return order.issued_at.replace(tzinfo=None, microsecond=0)


def _fields(
    order: SupervisionOrder, *, level_label: str, issuer: str, recipient: str
) -> dict[str, str]:
    """The text of each varying run of `order`'s document, by field name."""
    return {
        "number": order.number,
        "recipient": f"{recipient}：",
        "matter": order.matter,
        "requirement": order.requirement,
        "level": f"督办级别：{level_label}（第{order.level}级）",
        "issuer": issuer,
        "day": _day(order),
    }


def _layout(colour: str, fields: dict[str, str], *, title: str, moment: datetime) -> bytes:
    """The document laid out by python-docx: coloured title, number, body, closing."""
    document = Document()
    _setup(document)
    heading = document.add_paragraph(style="Title")
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(f"{COLOURS.get(colour, '')}督办单")
    _east_asian(run.font, TITLE_FONT)
    run.font.color.rgb = RGBColor.from_string(COLOUR_RGB.get(colour, "000000"))
    number = document.add_paragraph(fields["number"])
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(fields["recipient"])
    for label, name in (("督办事项", "matter"), ("办理要求", "requirement")):
        piece = document.add_paragraph().add_run(f"{label}：")
        _east_asian(piece.font, HEADING_FONTS[1])
        body = document.add_paragraph(fields[name])
        body.paragraph_format.first_line_indent = BODY_SIZE * 2
    level = document.add_paragraph(fields["level"])
    level.paragraph_format.first_line_indent = BODY_SIZE * 2
    for name in ("issuer", "day"):
        closing = document.add_paragraph(fields[name])
        closing.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        closing.paragraph_format.right_indent = Pt(32)
    properties = document.core_properties
    properties.title = title
    properties.author = properties.last_modified_by = "督办系统"
    properties.created = properties.modified = properties.last_printed = moment
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalise_zip(buffer.getvalue())


def render_order_docx(
    order: SupervisionOrder, *, level_label: str, issuer: str, recipient: str
) -> bytes:
    """The order as .docx bytes, laid out by python-docx from scratch (the reference)."""
    fields = _fields(order, level_label=level_label, issuer=issuer, recipient=recipient)
    return _layout(order.colour, fields, title=f"{order.number} 督办单", moment=_moment(order))


@dataclass(frozen=True, slots=True)
class _Entry:
    """One zip entry of a template: its metadata and its local header plus compressed data."""

    info: zipfile.ZipInfo
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Template:
    entries: tuple[_Entry, ...]
    document: str
    core: str


@lru_cache(maxsize=16)
def _template(colour: str) -> _Template:
    """The package of a `colour` order with placeholders, split into reusable entries."""
    data = _layout(colour, _PLACEHOLDER, title=_TITLE_FIELD, moment=_MOMENT)
    package = zipfile.ZipFile(io.BytesIO(data))
    entries = []
    for info in package.infolist():
        start = info.header_offset
        names, extra = struct.unpack_from("<2H", data, start + 26)
        end = start + _LOCAL_HEADER.size + names + extra + info.compress_size
        entries.append(_Entry(info, data[start:end]))
    document = package.read(DOCUMENT_PART).decode()
    core = package.read(CORE_PART).decode()
    placed = [document.count(f"<w:t>{token}</w:t>") for token in _PLACEHOLDER.values()]
    placed += [document.count(token) for token in _PLACEHOLDER.values()]
    if set(placed) != {1} or core.count(_TITLE_FIELD) != 1 or core.count(_MOMENT_TEXT) != 3:
        raise RuntimeError(f"the {colour} order template lost a placeholder")
    return _Template(tuple(entries), document, core)


def _run_text(text: str) -> str:
    """The `w:t` python-docx writes for plain `text`."""
    space = ' xml:space="preserve"' if len(text.strip()) < len(text) else ""
    return f"<w:t{space}>{escape(text)}</w:t>"


def _entry(info: zipfile.ZipInfo, data: bytes) -> _Entry:
    """A deflated entry as `zipfile` writes it (same compressor, header and attributes)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    packed = compressor.compress(data) + compressor.flush()
    dt = info.date_time
    dosdate = (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2]
    dostime = dt[3] << 11 | dt[4] << 5 | (dt[5] // 2)
    crc = zlib.crc32(data)
    name = info.filename.encode("ascii")
    header = _LOCAL_HEADER.pack(
        b"PK\x03\x04", info.extract_version, info.reserved, info.flag_bits,
        zipfile.ZIP_DEFLATED, dostime, dosdate, crc, len(packed), len(data), len(name), 0,
    )  # fmt: skip
    filled = zipfile.ZipInfo(info.filename, date_time=dt)
    filled.compress_type = zipfile.ZIP_DEFLATED
    filled.create_system, filled.external_attr = info.create_system, info.external_attr
    filled.CRC, filled.compress_size, filled.file_size = crc, len(packed), len(data)
    return _Entry(filled, header + name + packed)


def _package(entries: list[_Entry]) -> bytes:
    """The zip of `entries` in order: local entries, central directory, end record."""
    out = bytearray()
    directory = bytearray()
    for entry in entries:
        info, offset = entry.info, len(out)
        out += entry.raw
        dt = info.date_time
        name = info.filename.encode("ascii")
        directory += _CENTRAL_HEADER.pack(
            b"PK\x01\x02", info.create_version, info.create_system, info.extract_version,
            info.reserved, info.flag_bits, info.compress_type,
            dt[3] << 11 | dt[4] << 5 | (dt[5] // 2), (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2],
            info.CRC, info.compress_size, info.file_size, len(name), 0, 0, 0,
            info.internal_attr, info.external_attr, offset,
        )  # fmt: skip
        directory += name
    start = len(out)
    out += directory
    out += _END_RECORD.pack(
        b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), start, 0
    )
    return bytes(out)


def build_order_docx(
    order: SupervisionOrder, *, level_label: str, issuer: str, recipient: str
) -> bytes:
    """The order as .docx bytes: the colour's template filled in, equal to
    `render_order_docx` for the same arguments."""
    fields = _fields(order, level_label=level_label, issuer=issuer, recipient=recipient)
    title = f"{order.number} 督办单"
    moment = _moment(order)
    if not all(_PLAIN.fullmatch(text) for text in (*fields.values(), title)) or len(title) > 255:
        return render_order_docx(order, level_label=level_label, issuer=issuer, recipient=recipient)
    template = _template(order.colour)
    document = template.document
    for name, text in fields.items():
        document = document.replace(f"<w:t>{_PLACEHOLDER[name]}</w:t>", _run_text(text), 1)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    core = template.core.replace(_TITLE_FIELD, escape(title), 1).replace(_MOMENT_TEXT, stamp)
    filled = {DOCUMENT_PART: document.encode(), CORE_PART: core.encode()}
    entries = [
        _entry(entry.info, filled[entry.info.filename]) if entry.info.filename in filled else entry
        for entry in template.entries
    ]
    return _package(entries)
