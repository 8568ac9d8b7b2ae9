"""Limits on Office archives (.docx, .xlsx) checked before any library parses them.

A zip's declared uncompressed sizes bound what `zipfile` will ever produce (it stops at the
declared size and fails the CRC check beyond it), so checking them, and then counting
paragraphs, rows and cells in a streamed pass over the XML, refuses a compressed bomb in
bounded time and memory before python-docx or openpyxl builds a tree of it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from models.errors import InputError

MAX_MEMBERS = 2000
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_PARAGRAPHS = 100_000
MAX_ROWS = 100_000
MAX_CELLS = 500_000
_CHUNK = 1 << 20


def _count_tags(archive: zipfile.ZipFile, name: str, tags: Iterable[bytes]) -> dict[bytes, int]:
    """Count `<tag>`, `<tag …>` and `<tag/>` openings in a member, streamed in 1 MB chunks."""
    wanted = list(tags)
    patterns = [
        (tag, [b"<" + tag + end for end in (b">", b" ", b"/", b"\t", b"\n")]) for tag in wanted
    ]
    counts = dict.fromkeys(wanted, 0)
    keep = max(len(tag) for tag in wanted) + 2
    carry = b""
    with archive.open(name) as stream:
        while chunk := stream.read(_CHUNK):
            window = carry + chunk
            for tag, openings in patterns:
                counts[tag] += sum(window.count(o) - carry.count(o) for o in openings)
            carry = window[-keep:]
    return counts


def open_office_archive(path: Path, *, kind: str, required: str) -> zipfile.ZipFile:
    """Open a .docx/.xlsx zip after checking member count and declared sizes.

    `kind` names the format in messages (`.docx`, `.xlsx`); `required` is a member that must
    exist. Raises `InputError` for a damaged zip or one past the documented limits.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise InputError(f"不是有效的 {kind} 文件（压缩包已损坏）", path=path) from exc
    try:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"{kind} 文件内部文件过多（{len(infos)} 个），超出上限", path=path)
        names = {info.filename for info in infos}
        if required not in names:
            raise InputError(f"不是有效的 {kind} 文件（压缩包中没有 {required}）", path=path)
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                raise InputError(
                    f"{kind} 文件解压后过大（{info.filename} 声明 "
                    f"{info.file_size / 1048576:.0f} MB；单个部件上限 "
                    f"{MAX_MEMBER_BYTES // 1048576} MB，"
                    f"总计上限 {MAX_TOTAL_BYTES // 1048576} MB），可能是压缩炸弹，已拒绝",
                    path=path,
                )
    except InputError:
        archive.close()
        raise
    return archive


def check_counts(
    archive: zipfile.ZipFile, path: Path, members: Iterable[str], limits: dict[bytes, int]
) -> None:
    """Stream `members` and refuse when any counted tag passes its limit (tag -> maximum)."""
    labels = {b"w:p": "段落", b"w:tc": "表格单元格", b"row": "行", b"c": "单元格"}
    totals = dict.fromkeys(limits, 0)
    for name in members:
        try:
            counts = _count_tags(archive, name, limits)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise InputError(f"文件已损坏，无法解压 {name}", path=path) from exc
        for tag, count in counts.items():
            totals[tag] += count
            if totals[tag] > limits[tag]:
                label = labels.get(tag, tag.decode())
                raise InputError(
                    f"{label}数超过上限 {limits[tag]}（可能是压缩炸弹或超大文件），已拒绝",
                    path=path,
                )
