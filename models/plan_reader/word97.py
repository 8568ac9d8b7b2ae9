"""Word 97 `.doc` and WPS `.wps` plans, through a real converter, never a hand-written parser.

LibreOffice headless (`soffice --convert-to docx`) when installed, then the .docx reader;
else `antiword` (text only, .doc) and the text reader. A `.doc` that is really HTML or RTF
(as web systems save them) is read as what it is: HTML as its text, RTF through LibreOffice.
With no converter the file is refused with the command that installs one. Conversion runs
in a temporary folder with a time limit; the source file is never changed.
"""

from __future__ import annotations

import html.parser
import shutil
import subprocess
import tempfile
from pathlib import Path

from models.errors import InputError
from models.plan_reader.encoding import decode_text
from models.plan_schema import ParsedPlan

CONVERT_SECONDS = 120
INSTALL_HINT = "apt-get install libreoffice-writer-nogui（或仅文字：apt-get install antiword）"


def available_converter() -> str | None:
    """`soffice` or `antiword` (the path found on PATH), else None."""
    for name in ("soffice", "libreoffice", "antiword"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:  # noqa: ARG002
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in {"p", "br", "div", "tr", "li", "h1", "h2", "h3", "table"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1
        elif tag in {"p", "div", "td", "th", "tr", "li", "h1", "h2", "h3"}:
            self.parts.append("\n" if tag != "td" else " ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(data: bytes, name: str) -> str:
    parser = _Text()
    parser.feed(decode_text(data, source_name=name).text)
    parser.close()
    return "".join(parser.parts)


def _soffice(soffice: str, path: Path, folder: Path) -> Path:
    source = folder / f"source{path.suffix.lower() or '.doc'}"
    shutil.copyfile(path, source)
    try:
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{folder}/profile",
             "--convert-to", "docx", "--outdir", str(folder), str(source)],
            capture_output=True, timeout=CONVERT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"LibreOffice 转换超时（{CONVERT_SECONDS} 秒）", path=path) from exc
    converted = folder / "source.docx"
    if not converted.exists():
        raise InputError("LibreOffice 无法转换此文件（文件可能已损坏）", path=path)
    return converted


def read_word97(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """Read a .doc/.wps plan (or an HTML/RTF file named .doc); raises `InputError`."""
    from models.plan_reader.document import parse_plan_text, read_bounded
    from models.plan_reader.docx import read_docx

    data = read_bounded(path)
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<html", b"<!doctype html", b"<?xml", b"<meta", b"<head")):
        text = _html_text(data, path.name)
        return parse_plan_text(text, source_name=path.name, default_year=default_year)
    rtf = head.startswith(b"{\\rtf")
    if not rtf and not data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError("不是有效的 Word 97/WPS 文件（文件内容不是 .doc 格式）", path=path)
    converter = available_converter()
    if converter is None or (rtf and Path(converter).name == "antiword"):
        raise InputError(f"读取 .doc/.wps 需要 LibreOffice，请安装：{INSTALL_HINT}", path=path)
    if Path(converter).name == "antiword":
        try:
            result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
                [converter, "-m", "UTF-8.txt", str(path)],
                capture_output=True, timeout=CONVERT_SECONDS, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise InputError(f"antiword 转换超时（{CONVERT_SECONDS} 秒）", path=path) from exc
        if result.returncode != 0 or not result.stdout.strip():
            raise InputError("antiword 无法读取此文件（文件可能已损坏或不是 Word 97）", path=path)
        text = decode_text(result.stdout, source_name=path.name).text
        return parse_plan_text(text, source_name=path.name, default_year=default_year)
    with tempfile.TemporaryDirectory(prefix="duban-doc-") as folder:
        converted = _soffice(converter, path, Path(folder))
        return read_docx(converted, default_year=default_year)
