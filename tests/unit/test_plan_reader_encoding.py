"""Encoding detection: UTF-8, UTF-8-BOM, GBK/GB18030 named; binary and images refused."""

from __future__ import annotations

import pytest

from models.errors import InputError
from models.plan_reader.encoding import decode_text

TEXT = "长治市科协2021年工作要点\n1.举办活动。\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "UTF-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "UTF-8-BOM"),
        (TEXT.encode("gbk"), "GBK"),
        ("𠀀".join([TEXT, TEXT]).encode("gb18030"), "GB18030"),
        (TEXT.encode("utf-16"), "UTF-16"),
    ],
)
def test_decodes_and_names_encoding(data: bytes, encoding: str) -> None:
    decoded = decode_text(data)
    assert decoded.encoding == encoding
    assert decoded.text.startswith("长治市科协")
    assert "工作要点" in decoded.text


def test_crlf_becomes_newline() -> None:
    assert decode_text("一\r\n二\r三".encode()).text == "一\n二\n三"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "为空"),
        (b"  \n\n ", "为空"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "JPEG"),
        (b"%PDF-1.7\n", "PDF"),
        (b"PK\x03\x04" + b"\x00" * 20, "ZIP"),
        (b"abc\x00\x01\x02def", "二进制"),
        (bytes(range(0x80, 0x100)) * 4, "编码"),
    ],
)
def test_refuses_non_text(data: bytes, words: str) -> None:
    with pytest.raises(InputError) as caught:
        decode_text(data, source_name="x.txt")
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_refuses_oversized() -> None:
    with pytest.raises(InputError, match="文件过大"):
        decode_text(b"a" * (20 * 1024 * 1024 + 1))
