"""PDF and Word 97 plans hold to the same goldens as the text seeds (items, sections, units,
phases); a task table over two PDF pages keeps its merged cells; scans, page bombs, fake
.doc files (HTML, junk) are read as what they are or refused with one line.

The documents are built here from the seeds: python-docx writes a .docx, LibreOffice
headless converts it to .pdf and .doc (one soffice call per module).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.enum.section import WD_SECTION
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from models.errors import InputError
from models.plan_reader.document import read_plan_file

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "seeds"
FIXTURES = SHARED / "fixtures"
SOFFICE = shutil.which("soffice")
needs_soffice = pytest.mark.skipif(
    SOFFICE is None and os.environ.get("CI") != "true",
    reason="LibreOffice not installed (make converters)",
)


def _docx_of(lines: list[str], path: Path) -> Path:
    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    document.save(str(path))
    return path


def _convert(folder: Path, fmt: str, *sources: Path) -> None:
    assert SOFFICE is not None, "LibreOffice (soffice) is required: make converters"
    subprocess.run(  # noqa: S603
        [SOFFICE, "--headless", f"-env:UserInstallation=file://{folder}/profile",
         "--convert-to", fmt, "--outdir", str(folder), *map(str, sources)],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip


def _table_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_paragraph("某市科协2030年重点工作任务分工表")
    table = document.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    header = ["序号", "工作任务", "牵头单位", "配合单位"]
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    section = table.add_row().cells
    section[0].merge(section[3]).text = "一、党的建设"
    for number in range(1, 41):
        cells = table.add_row().cells
        cells[0].text = str(number)
        cells[1].text = f"开展第{number}项重点工作不少于{number}场次。按季度报送。"
        cells[2].text = "办公室" if number % 2 else "学会部"
        cells[3].text = "普及部"
    first, last = table.rows[2].cells[2], table.rows[5].cells[2]
    first.merge(last).text = "组织人事部"
    table.rows[0].repeat_header = True  # type: ignore[attr-defined]
    document.save(str(path))
    return path


def _two_column_docx(path: Path) -> Path:
    """A title across the page, then a continuous section break into two columns."""
    document = docx.Document()
    document.add_paragraph("某市科协2030年工作要点")
    document.add_section(WD_SECTION.CONTINUOUS)
    section_properties = document.sections[-1]._sectPr
    columns = section_properties.find(qn("w:cols"))
    if columns is None:
        columns = OxmlElement("w:cols")
        section_properties.append(columns)
    columns.set(qn("w:num"), "2")
    columns.set(qn("w:space"), "720")
    document.add_paragraph("一、党建")
    for n in range(1, 41):
        document.add_paragraph(
            f"{n}.学习理论第{n}次，组织专题学习研讨和交流活动，推动理论武装走深走实。"
            "（牵头部室：办公室）"
        )
    document.save(str(path))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not SEEDS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("../shared/seeds is missing")
        pytest.skip("../shared not present")
    folder = tmp_path_factory.mktemp("converted")
    sources = [
        _docx_of(
            (SEEDS / f"{seed}.txt").read_text(encoding="utf-8").splitlines(),
            folder / f"{seed[:3]}.docx",
        )
        for seed in ("001_f1def276c14567cc", "002_9ea7fcb19178ca69")
    ]
    table = _table_docx(folder / "table.docx")
    lines = ["某市科协2030年工作要点", "一、党建"]
    lines += [f"{n}.学习理论第{n}次。（牵头部室：办公室）" for n in range(1, 60)]
    lines += ["60.开展调研。"]
    paged = _docx_of(lines, folder / "paged.docx")
    columns = _two_column_docx(folder / "columns.docx")
    _convert(folder, "pdf", *sources, table, paged, columns)
    _convert(folder, "doc", sources[1])
    encrypted = folder / "encrypted"
    encrypted.mkdir()
    _convert(
        encrypted,
        'pdf:writer_pdf_Export:{"EncryptFile":{"type":"boolean","value":"true"},'
        '"DocumentOpenPassword":{"type":"string","value":"secret"}}',
        paged,
    )
    (encrypted / "paged.pdf").rename(folder / "encrypted.pdf")
    return {p.name: p for p in folder.iterdir() if p.is_file()}


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@needs_soffice
def test_pdf_of_seed_001_matches_the_golden(built: dict[str, Path]) -> None:
    expected = _fixture("001_implementation_plan_phases.expected.json")
    plan = read_plan_file(built["001.pdf"])
    assert plan.year == expected["year"]
    assert [s.model_dump() for s in plan.sections] == expected["sections"]
    assert [p.model_dump(mode="json") for p in plan.phases] == expected["phases"]
    got = [{"number": i.number, "section": i.section, "title": i.title} for i in plan.items]
    assert got == expected["items"]


@needs_soffice
@pytest.mark.parametrize("name", ["002.pdf", "002.doc"])
def test_pdf_and_doc_of_seed_002_match_the_golden(built: dict[str, Path], name: str) -> None:
    expected = _fixture("002_changzhi_2021_work_points.expected.json")
    plan = read_plan_file(built[name])
    assert (plan.organisation, plan.year) == (expected["organisation"], expected["year"])
    assert str(plan.issued) == expected["issued"]
    assert [s.model_dump() for s in plan.sections] == expected["sections"]
    keys = ("number", "section", "title", "lead", "support")
    got = [{k: getattr(item, k) for k in keys} for item in plan.items]
    assert got == [{k: item[k] for k in keys} for item in expected["items"]]


@needs_soffice
def test_task_table_over_two_pdf_pages_keeps_merged_cells(built: dict[str, Path]) -> None:
    plan = read_plan_file(built["table.pdf"])
    assert len(plan.items) == 40
    assert [s.number for s in plan.sections] == ["一"]
    assert [i.number for i in plan.items] == [str(n) for n in range(1, 41)]
    assert [i.lead for i in plan.items[:4]] == [["组织人事部"]] * 4
    assert plan.items[4].lead == ["办公室"]
    assert plan.items[39].lead == ["学会部"] and plan.items[39].support == ["普及部"]
    assert plan.items[39].targets[0].value == 40


def _pdf(pages: int, content: bytes = b"") -> bytes:
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_pdf(2, b"0 0 m 100 100 l S"), "没有文字层"),
        (_pdf(600), "超出上限 500 页"),
        (b"%PDF-1.4\n garbage", "PDF"),
    ],
)
def test_pdf_refusals_are_one_line(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "plan.pdf"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_plan_file(path)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_doc_that_is_html_is_read_as_html(tmp_path: Path) -> None:
    path = tmp_path / "plan.doc"
    path.write_text(
        "<html><head><style>p{}</style></head><body><p>某市科协2030年工作要点</p>"
        "<p>一、党建</p><p>1.学习理论。（牵头部室：办公室）</p></body></html>",
        encoding="utf-8",
    )
    plan = read_plan_file(path)
    assert [(i.number, i.title, i.lead) for i in plan.items] == [("1", "学习理论", ["办公室"])]


def test_doc_that_is_neither_word_nor_html_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.wps"
    path.write_bytes(b"just some bytes")
    with pytest.raises(InputError, match="不是有效的 Word 97/WPS"):
        read_plan_file(path)


def test_doctor_names_the_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    from duban.doctor import check_document_converter

    check = check_document_converter()
    assert check.ok
    assert ("LibreOffice" in check.detail) == (SOFFICE is not None)
    monkeypatch.setenv("PATH", "/nonexistent")
    missing = check_document_converter()
    assert "apt-get install libreoffice-writer-nogui" in missing.detail


def test_doc_without_converter_is_refused_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plan.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InputError, match="apt-get install libreoffice-writer-nogui"):
        read_plan_file(path)


@needs_soffice
def test_pdf_warnings_name_page_and_line(built: dict[str, Path]) -> None:
    plan = read_plan_file(built["paged.pdf"])
    assert len(plan.items) == 60
    flagged = [w.reason for w in plan.warnings if "任务 60 未写明牵头单位" in w.reason]
    assert len(flagged) == 1
    page = int(flagged[0].split("页")[0].removeprefix("第"))
    assert page >= 2
    assert flagged[0].split("：")[0].endswith("行")


@needs_soffice
def test_encrypted_pdf_is_refused_with_one_line(built: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="PDF 文件已加密") as caught:
        read_plan_file(built["encrypted.pdf"])
    assert "\n" not in str(caught.value)


@needs_soffice
def test_two_column_pdf_reads_each_column_in_order(built: dict[str, Path]) -> None:
    plan = read_plan_file(built["columns.pdf"])
    assert plan.title == "某市科协2030年工作要点"
    assert [item.number for item in plan.items] == [str(n) for n in range(1, 41)]
    assert all(item.lead == ["办公室"] for item in plan.items)
    assert plan.items[0].title == "学习理论第1次，组织专题学习研讨和交流活动，推动理论武装走深走实"
