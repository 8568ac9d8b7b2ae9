"""Evidence files for tests: real PNG/JPEG/GIF/WebP (Pillow), DOCX (python-docx), XLSX
(openpyxl), a minimal PDF, OLE2 compound files for .doc/.xls, and things that are not allowed.
"""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
from PIL import Image

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def pdf(text: str = "evidence") -> bytes:
    """A small, well-formed one-page PDF."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        + f"% {text}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def image(format_name: str) -> bytes:
    """A 4x4 image in `format_name` (PNG, JPEG, GIF, WEBP)."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, format_name)
    return out.getvalue()


def word() -> bytes:
    """A real .docx with one paragraph."""
    document = docx.Document()
    document.add_paragraph("学术交流活动台账")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def excel() -> bytes:
    """A real .xlsx with one cell."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "场次"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ole2(stream: str) -> bytes:
    """An OLE2 compound file whose directory names a `stream` (WordDocument, Workbook, …)."""
    header = bytearray(512)
    header[0:8] = OLE2_MAGIC
    header[0x18:0x1A] = (0x3E).to_bytes(2, "little")
    header[0x1A:0x1C] = (3).to_bytes(2, "little")
    header[0x1C:0x1E] = b"\xfe\xff"
    header[0x1E:0x20] = (9).to_bytes(2, "little")
    header[0x20:0x22] = (6).to_bytes(2, "little")

    def entry(name: str, kind: int) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        raw[: len(encoded)] = encoded
        raw[0x40:0x42] = len(encoded).to_bytes(2, "little")
        raw[0x42] = kind
        return bytes(raw)

    directory = entry("Root Entry", 5) + entry(stream, 2) + bytes(256)
    return bytes(header) + directory + bytes(512)


def plain_zip() -> bytes:
    """A zip that is no Office document."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


def executable() -> bytes:
    """The start of a Windows executable."""
    return b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120)
