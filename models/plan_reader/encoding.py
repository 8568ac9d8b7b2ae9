"""Bytes to text: detect UTF-8 (with or without BOM) or GB18030/GBK, refuse what is not text."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import InputError

MAX_BYTES = 20 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"BM", "BMP 图片"),
    (b"%PDF", "PDF 文件"),
    (b"PK\x03\x04", "ZIP 压缩包"),
    (b"\xd0\xcf\x11\xe0", "旧版 Office 文件（.doc/.xls），请另存为 .docx/.xlsx"),
    (b"\x7fELF", "可执行文件"),
    (b"\x1f\x8b", "gzip 压缩文件"),
    (b"Rar!", "RAR 压缩包"),
)


@dataclass(frozen=True)
class DecodedText:
    """Text and the name of the encoding it was decoded with."""

    text: str
    encoding: str


def sniff_binary(data: bytes) -> str | None:
    """Name the kind of a known binary format from its leading bytes, else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            if magic == b"BM" and len(data) > 2 and data[2:3].isascii() and data[2:3].isalpha():
                continue
            return kind
    return None


def _control_ratio(text: str) -> float:
    sample = text[:65536]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    return bad / len(sample)


def decode_text(data: bytes, *, source_name: str = "") -> DecodedText:
    """Decode a plain-text plan, naming the encoding used.

    Tries UTF-8 with BOM, UTF-16 with BOM, UTF-8, GBK then GB18030; raises `InputError` for
    empty, oversized or binary input (images, archives, NUL bytes) and undecodable bytes.
    """
    if not data.strip():
        raise InputError("文件为空，没有可读取的内容", path=source_name or None)
    if len(data) > MAX_BYTES:
        raise InputError(
            f"文件过大（{len(data) / 1048576:.1f} MB），上限为 {MAX_BYTES // 1048576} MB",
            path=source_name or None,
        )
    kind = sniff_binary(data)
    if kind is not None:
        raise InputError(f"这是{kind}，不是文本计划文档", path=source_name or None)
    candidates: list[tuple[str, str]] = []
    if data.startswith(b"\xef\xbb\xbf"):
        candidates.append(("utf-8-sig", "UTF-8-BOM"))
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates.append(("utf-16", "UTF-16"))
    else:
        if b"\x00" in data[:65536]:
            raise InputError("文件含有二进制数据，不是文本计划文档", path=source_name or None)
        candidates += [("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")]
    for codec, name in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if _control_ratio(text) > 0.01:
            raise InputError("文件含有二进制数据，不是文本计划文档", path=source_name or None)
        return DecodedText(text=text.replace("\r\n", "\n").replace("\r", "\n"), encoding=name)
    raise InputError(
        "无法识别文件编码（支持 UTF-8、UTF-8-BOM、GBK、GB18030）", path=source_name or None
    )
