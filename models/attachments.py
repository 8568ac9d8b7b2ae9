"""Evidence files (附件): what type a file is, whether it may be kept, and what to call it.

Pure rules; no database, no Prefect. A file's type is sniffed from its bytes (magic numbers;
OOXML zips told apart by their `[Content_Types].xml` and parts, OLE2 compound files by their
directory entries), never taken from its name or the browser's Content-Type. A name whose
extension names another type is refused (`.pdf` on a Word file, `.docx` on an executable); a
name without an extension is given the sniffed type's. The name shown and put in
`Content-Disposition` is `safe_file_name`: no directory part, no control or bidi characters;
it never reaches a filesystem (stored bytes are addressed by id or sha256 only).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from models.errors import InputError
from models.vocabulary import AttachmentType

MEGABYTE = 1024 * 1024
DEFAULT_MAX_BYTES = 20 * MEGABYTE
DEFAULT_MAX_COUNT = 10
NAME_MAX = 120
DEFAULT_NAME = "附件"
CONTENT_TYPES_MAX = MEGABYTE

EXTENSIONS: dict[AttachmentType, tuple[str, ...]] = {
    AttachmentType.PDF: (".pdf",),
    AttachmentType.PNG: (".png",),
    AttachmentType.JPEG: (".jpg", ".jpeg"),
    AttachmentType.GIF: (".gif",),
    AttachmentType.WEBP: (".webp",),
    AttachmentType.DOCX: (".docx",),
    AttachmentType.DOC: (".doc",),
    AttachmentType.XLSX: (".xlsx",),
    AttachmentType.XLS: (".xls",),
}
MEDIA_TYPES: dict[AttachmentType, str] = {
    AttachmentType.PDF: "application/pdf",
    AttachmentType.PNG: "image/png",
    AttachmentType.JPEG: "image/jpeg",
    AttachmentType.GIF: "image/gif",
    AttachmentType.WEBP: "image/webp",
    AttachmentType.DOCX: (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ),
    AttachmentType.DOC: "application/msword",
    AttachmentType.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    AttachmentType.XLS: "application/vnd.ms-excel",
}
_OOXML_MAIN = {
    AttachmentType.DOCX: (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "word/document.xml",
    ),
    AttachmentType.XLSX: (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "xl/workbook.xml",
    ),
}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE2_STREAMS = (
    ("WordDocument", AttachmentType.DOC),
    ("Workbook", AttachmentType.XLS),
    ("Book", AttachmentType.XLS),
)
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_FORBIDDEN_IN_NAME = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_DEVICES = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)")


class AttachmentRefused(InputError):
    """A file was not accepted; `reason` is a Chinese sentence naming the file and why."""


@dataclass(frozen=True)
class AttachmentLimits:
    """What a submission may carry: bytes per file, files per submission, allowed types."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_count: int = DEFAULT_MAX_COUNT
    types: frozenset[AttachmentType] = frozenset(AttachmentType)

    def accept_attribute(self) -> str:
        """The `accept` attribute of the form's file input (a hint; the server decides)."""
        return ",".join(
            ext for kind in AttachmentType if kind in self.types for ext in EXTENSIONS[kind]
        )

    def hint(self) -> str:
        """The Chinese sentence under the file input, e.g. `可上传PDF文档、…，每个不超过20 MB…`."""
        labels = "、".join(kind.label for kind in AttachmentType if kind in self.types)
        return (
            f"可上传{labels}，每个不超过{format_size(self.max_bytes)}，每次最多{self.max_count}个。"
        )


@dataclass(frozen=True)
class JudgedFile:
    """An accepted file: its display name, sniffed type and the media type to serve it as."""

    file_name: str
    kind: AttachmentType
    media_type: str


def format_size(size: int) -> str:
    """`20 MB`, `1.5 MB`, `300 KB`, `12 字节`."""
    if size >= MEGABYTE:
        return f"{size / MEGABYTE:.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} 字节"


def _ooxml_type(stream: BinaryIO) -> AttachmentType | None:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > CONTENT_TYPES_MAX:
                return None
            with archive.open(info) as part:
                content_types = part.read(CONTENT_TYPES_MAX + 1)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, NotImplementedError, EOFError):
        return None
    for kind, (main_type, part_name) in _OOXML_MAIN.items():
        if main_type.encode() in content_types and part_name in names:
            return kind
    return None


def _ole2_type(data: bytes) -> AttachmentType | None:
    """The type of an OLE2 compound file from the stream names in its directory entries.

    A directory entry is 128 bytes, 128-aligned after the 512-byte header: a UTF-16LE name
    (64 bytes, NUL-terminated), its byte length (u16 at 0x40) and its object type (1 storage,
    2 stream, at 0x42). Only a top-level-looking stream entry counts.
    """
    for stream_name, kind in _OLE2_STREAMS:
        encoded = (stream_name + "\0").encode("utf-16-le")
        for match in re.finditer(re.escape(encoded), data):
            start = match.start()
            if start < 512 or (start - 512) % 128:
                continue
            length = int.from_bytes(data[start + 0x40 : start + 0x42], "little")
            if length == len(encoded) and data[start + 0x42 : start + 0x43] == b"\x02":
                return kind
    return None


def sniff_type(stream: BinaryIO) -> AttachmentType | None:
    """The type of the file in `stream` (seekable, read from its start), or None if it is
    none of `AttachmentType`. Reads the head; a zip's central directory; an OLE2 file whole.
    Leaves the stream at its start.
    """
    stream.seek(0)
    head = stream.read(16)
    stream.seek(0)
    try:
        if head.startswith(b"%PDF-"):
            return AttachmentType.PDF
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return AttachmentType.PNG
        if head.startswith(b"\xff\xd8\xff"):
            return AttachmentType.JPEG
        if head.startswith((b"GIF87a", b"GIF89a")):
            return AttachmentType.GIF
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return AttachmentType.WEBP
        if head.startswith(b"PK\x03\x04"):
            return _ooxml_type(stream)
        if head.startswith(_OLE2_MAGIC):
            return _ole2_type(stream.read())
        return None
    finally:
        stream.seek(0)


def safe_file_name(name: str) -> str:
    """A display name for a user's file name: the last path part, NFC, with control, format
    (bidi overrides, zero-width) and separator characters removed, reserved characters as
    `_`, no leading/trailing dots or spaces, at most `NAME_MAX` characters (the extension kept).
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        " " if unicodedata.category(char) == "Zs" else char
        for char in name
        if unicodedata.category(char) not in _DROPPED_CATEGORIES
    )
    name = _FORBIDDEN_IN_NAME.sub("_", " ".join(name.split()))
    name = name.strip(" .")
    if _WINDOWS_DEVICES.match(name):
        name = f"_{name}"
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = f"{stem[: NAME_MAX - len(ext) - 1].rstrip(' .')}.{ext}"
        else:
            name = name[:NAME_MAX].rstrip(" .")
    return name or DEFAULT_NAME


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def check_count(count: int, limits: AttachmentLimits) -> None:
    """Raise `AttachmentRefused` when `count` files are more than a submission may carry."""
    if count > limits.max_count:
        raise AttachmentRefused(
            f"本次选择了{count}个附件，每次最多可上传{limits.max_count}个；附件均未保存。"
        )


def size_refusal(name: str, limits: AttachmentLimits) -> AttachmentRefused:
    """The refusal of a file larger than `limits.max_bytes` (said while it is still read)."""
    return AttachmentRefused(
        f"附件“{safe_file_name(name)}”超过{format_size(limits.max_bytes)}的大小限制，未保存。"
    )


def judge_file(name: str, stream: BinaryIO, *, size: int, limits: AttachmentLimits) -> JudgedFile:
    """Accept one uploaded file or raise `AttachmentRefused` naming it and why: empty, too
    large, not an allowed type (by its content), or an extension that names another type.
    """
    shown = safe_file_name(name)
    if size == 0:
        raise AttachmentRefused(f"附件“{shown}”是空文件，未保存。")
    if size > limits.max_bytes:
        raise size_refusal(name, limits)
    kind = sniff_type(stream)
    allowed = "、".join(kind.label for kind in AttachmentType if kind in limits.types)
    if kind is None or kind not in limits.types:
        what = "无法识别的文件" if kind is None else kind.label
        raise AttachmentRefused(
            f"附件“{shown}”的内容是{what}，不在允许的类型内（{allowed}），未保存。"
        )
    extension = _extension(shown)
    if not extension:
        shown = f"{shown[: NAME_MAX - 5]}{EXTENSIONS[kind][0]}"
    elif extension not in EXTENSIONS[kind]:
        raise AttachmentRefused(
            f"附件“{shown}”的扩展名 {extension} 与文件内容（{kind.label}）不符，未保存。"
            "请确认文件后重新选择。"
        )
    return JudgedFile(file_name=shown, kind=kind, media_type=MEDIA_TYPES[kind])


def content_disposition(file_name: str) -> str:
    """`attachment; filename="<ASCII fallback>"; filename*=UTF-8''<RFC 5987 encoded>`."""
    shown = safe_file_name(file_name)
    fallback = "".join(
        char if 0x20 <= ord(char) < 0x7F and char not in '"\\;%' else "_" for char in shown
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(shown, safe='')}"


def limits_of(*, max_bytes: int, max_count: int, types: str) -> AttachmentLimits:
    """The limits from the settings' values (`types`: comma-separated `AttachmentType`s)."""
    kinds = frozenset(AttachmentType(name) for name in types.split(",") if name)
    return AttachmentLimits(max_bytes=max_bytes, max_count=max_count, types=kinds)


def attachment_summary(names: Sequence[str], *, shown: int = 5) -> str:
    """`2个：台账.pdf、照片.png` (the first `shown` names, then `等`); empty for no files."""
    if not names:
        return ""
    listed = "、".join(names[:shown])
    more = "等" if len(names) > shown else ""
    return f"{len(names)}个：{listed}{more}"
