"""Hostile evidence files: any bytes under any name are judged or refused in Chinese, never
crash; names shown are always safe; zip and OLE2 tricks are not taken for Office files."""

from __future__ import annotations

import io
import unicodedata
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from models.attachments import (
    EXTENSIONS,
    NAME_MAX,
    AttachmentLimits,
    AttachmentRefused,
    judge_file,
    safe_file_name,
    sniff_type,
)
from tests import attachment_files as files

HEADS = [
    b"%PDF-",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"PK\x03\x04",
    files.OLE2_MAGIC,
]
LIMITS = AttachmentLimits(max_bytes=4096)


@settings(max_examples=400, deadline=None)
@given(
    head=st.sampled_from([*HEADS, b""]),
    tail=st.binary(max_size=600),
    name=st.text(max_size=300),
)
def test_any_bytes_under_any_name_are_judged_or_refused(
    head: bytes, tail: bytes, name: str
) -> None:
    data = head + tail
    try:
        judged = judge_file(name, io.BytesIO(data), size=len(data), limits=LIMITS)
    except AttachmentRefused as exc:
        assert exc.reason.startswith("附件“") or "个附件" in exc.reason
        assert "未保存" in exc.reason
        return
    assert any(judged.file_name.lower().endswith(ext) for ext in EXTENSIONS[judged.kind])
    assert judged.file_name == safe_file_name(judged.file_name)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400))
def test_shown_names_are_safe(name: str) -> None:
    shown = safe_file_name(name)
    assert 0 < len(shown) <= NAME_MAX
    assert not set(shown) & set('/\\<>:"|?*')
    assert all(unicodedata.category(char) not in {"Cc", "Cf", "Zl", "Zp"} for char in shown)
    assert shown == shown.strip(" .")
    assert safe_file_name(shown) == shown


def test_a_zip_naming_word_parts_without_the_content_type_is_not_a_docx() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert sniff_type(io.BytesIO(out.getvalue())) is None


def test_a_content_types_part_too_large_to_read_is_not_an_office_file() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b" " * (2 * 1024 * 1024))
        archive.writestr("word/document.xml", "<w:document/>")
    assert len(out.getvalue()) < 20_000
    assert sniff_type(io.BytesIO(out.getvalue())) is None


def test_an_ole2_stream_name_out_of_place_does_not_count() -> None:
    data = bytearray(files.ole2("PowerPoint Document"))
    misplaced = "WordDocument\0".encode("utf-16-le")
    data[512 + 300 : 512 + 300 + len(misplaced)] = misplaced
    assert sniff_type(io.BytesIO(bytes(data))) is None
