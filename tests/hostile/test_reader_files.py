"""Hostile plan files: compressed bombs, damaged Office files, folders and devices, encodings
that were read as mojibake or refused, a year that is not in the document, CR/LF in titles.

Each is one clear Chinese line (an `InputError`) or a correct reading, in bounded time and
memory; none raises anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from models.errors import InputError
from models.plan_reader.document import read_plan_file

ROOT = Path(__file__).resolve().parents[2]
DUBAN = Path(sys.executable).parent / "duban"
PLAN = "长治市科学技术协会2021年工作要点\n一、党建\n1.深学笃用。（牵头部室：办公室）\n"
TRADITIONAL = "長治市科學技術協會2021年工作要點\n一、黨建\n1.深學篤用。（牽頭部室：辦公室）\n"


def _refused(path: Path, words: str) -> str:
    with pytest.raises(InputError) as caught:
        read_plan_file(path, default_year=2030)
    message = str(caught.value)
    assert words in message, message
    assert "\n" not in message
    return message


def _docx_parts(tmp_path: Path, document_xml: bytes) -> dict[str, bytes]:
    source = tmp_path / "minimal.docx"
    docx.Document().save(str(source))
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["word/document.xml"] = document_xml
    return parts


def _write_zip(path: Path, parts: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def _body(inner: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>" + inner + b"</w:body></w:document>"
    )


def test_docx_bomb_by_declared_size_is_refused_before_parsing(tmp_path: Path) -> None:
    paragraph = "<w:p><w:r><w:t>1.任务。</w:t></w:r></w:p>".encode()
    path = tmp_path / "bomb.docx"
    _write_zip(path, _docx_parts(tmp_path, _body(paragraph * (40 * 1048576 // len(paragraph)))))
    assert path.stat().st_size < 2 * 1048576
    started = time.perf_counter()
    _refused(path, "解压后过大")
    assert time.perf_counter() - started < 5


def test_docx_bomb_by_paragraph_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.docx"
    _write_zip(path, _docx_parts(tmp_path, _body(b"<w:p/>" * 150_000)))
    _refused(path, "段落数超过上限")


def test_xlsx_bomb_by_cell_count_is_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    source = tmp_path / "small.xlsx"
    workbook.save(str(source))
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    row = b'<row r="1">' + b'<c r="A1" t="inlineStr"><is><t>x</t></is></c>' * 100 + b"</row>"
    parts["xl/worksheets/sheet1.xml"] = (
        b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main"><sheetData>' + row * 6000 + b"</sheetData></worksheet>"
    )
    path = tmp_path / "bomb.xlsx"
    _write_zip(path, parts)
    _refused(path, "单元格数超过上限")


def test_xlsx_bomb_by_declared_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    _write_zip(
        path, {"xl/workbook.xml": b"<workbook/>", "xl/sharedStrings.xml": b" " * (70 * 1048576)}
    )
    _refused(path, "解压后过大")


def _damaged(tmp_path: Path, cut: int | None, flip: int | None) -> Path:
    good = tmp_path / "good.docx"
    document = docx.Document()
    for line in PLAN.splitlines():
        document.add_paragraph(line)
    document.save(str(good))
    data = bytearray(good.read_bytes())
    if flip is not None:
        data[flip] ^= 0xFF
    path = tmp_path / "bad.docx"
    path.write_bytes(bytes(data[:cut] if cut else data))
    return path


@pytest.mark.parametrize(
    ("cut", "flip"), [(400, None), (-30, None), (None, 60), (None, 600), (None, -40), (None, 30)]
)
def test_damaged_docx_is_one_line(tmp_path: Path, cut: int | None, flip: int | None) -> None:
    path = _damaged(tmp_path, cut, flip)
    try:
        plan = read_plan_file(path, default_year=2030)
    except InputError as exc:
        assert "\n" not in str(exc)
        assert ".docx" in str(exc) or "Word" in str(exc) or "损坏" in str(exc)
    else:
        assert plan.items


def test_docx_with_unsupported_compression_is_one_line(tmp_path: Path) -> None:
    good = _damaged(tmp_path, None, None)
    data = bytearray(good.read_bytes())
    # Compression method 99 (AES) in every local and central header: zipfile raises
    # NotImplementedError when the member is read.
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset : start + offset + 2] = (99).to_bytes(2, "little")
            start += 4
    path = tmp_path / "aes.docx"
    path.write_bytes(bytes(data))
    _refused(path, "损坏")


def test_folder_and_device_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "文件夹")
    _refused(Path("/dev/zero"), "不是普通文件")
    _refused(tmp_path / "missing.txt", "文件不存在")


def test_cli_parse_of_dev_zero_ends_at_once_without_growing(tmp_path: Path) -> None:
    env = {**os.environ, "DUBAN_DATA_DIR": str(tmp_path)}
    # A fresh parent whose only child is the command, so the peak it reports is that
    # command's own (this test process's other children would count otherwise).
    measure = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)\n"
        "sys.stderr.write(r.stdout + r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", measure, str(DUBAN), "plan", "parse", "/dev/zero"],
        capture_output=True, text=True, timeout=90, env=env, check=False,
    )  # fmt: skip
    assert time.perf_counter() - started < 30
    code, peak_kb = (int(part) for part in result.stdout.split())
    assert code == 1
    assert "不是普通文件" in result.stderr
    assert "Traceback" not in result.stderr
    assert peak_kb < 500 * 1024


@pytest.mark.parametrize(
    ("codec", "name", "text"),
    [
        ("big5", "Big5", TRADITIONAL),
        ("utf-16-le", "UTF-16LE", PLAN),
        ("utf-16-be", "UTF-16BE", PLAN),
        ("utf-32-le", "UTF-32LE", PLAN),
        ("utf-32", "UTF-32", PLAN),
        ("gbk", "GBK", PLAN),
    ],
)
def test_encodings_are_detected_not_mojibake(
    tmp_path: Path, codec: str, name: str, text: str
) -> None:
    path = tmp_path / "plan.txt"
    path.write_bytes(text.encode(codec))
    plan = read_plan_file(path, default_year=2030)
    assert plan.encoding == name
    assert plan.year == 2021
    assert plan.items[0].lead == [text.splitlines()[2].split("：")[1].rstrip("）")]


def test_year_not_in_document_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "plan.txt"
    path.write_text("某市科协工作要点\n1.举办活动。（牵头部室：办公室）\n", encoding="utf-8")
    plan = read_plan_file(path, default_year=2030)
    assert plan.year == 2030
    assert any("找不到年度" in w.reason and "2030" in w.reason for w in plan.warnings)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["某市重点任务分工表"])
    sheet.append(["序号", "工作任务", "牵头单位"])
    sheet.append([1, "举办活动", "办公室"])
    table = tmp_path / "table.xlsx"
    workbook.save(str(table))
    plan = read_plan_file(table, default_year=2030)
    assert any("找不到年度" in w.reason for w in plan.warnings)


@pytest.mark.parametrize("title", ['"第一项\\r\\nBcc: x@example.org"', '"标题\\n第二行"'])
def test_line_break_in_a_canonical_title_is_refused_with_its_line(
    tmp_path: Path, title: str
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "title: 某市2030年工作要点\nyear: 2030\nitems:\n"
        "  - number: '1'\n    title: 正常\n"
        f"  - number: '2'\n    title: {title}\n",
        encoding="utf-8",
    )
    message = _refused(path, "换行符")
    assert "plan.yaml:7" in message


def test_yaml_with_a_control_character_is_one_chinese_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    padding = "# 手工编写的计划\n" * 40
    path.write_text(
        padding
        + "title: 某市2030年工作要点\nyear: 2030\nitems:\n  - {number: '1', title: a\x11b}\n",
        encoding="utf-8",
    )
    message = _refused(path, "不是有效的 YAML/JSON")
    assert "special characters" not in message
