"""File dispatch: .docx paragraphs and tables, .xlsx task tables with merged cells, YAML/JSON."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from models.errors import InputError
from models.plan_reader.document import read_plan_file

HEADER = ["序号", "工作任务", "牵头单位", "配合单位", "完成时限"]


def test_docx_paragraphs_are_read_as_text(tmp_path: Path) -> None:
    document = docx.Document()
    for line in ["某市科协2030年工作要点", "一、党建", "1.学习理论。（牵头部室：办公室）"]:
        document.add_paragraph(line)
    path = tmp_path / "plan.docx"
    document.save(str(path))
    plan = read_plan_file(path)
    assert (plan.title, plan.year) == ("某市科协2030年工作要点", 2030)
    assert [(i.section, i.number, i.title, i.lead) for i in plan.items] == [
        ("一", "1", "学习理论", ["办公室"])
    ]


def test_docx_task_table(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("某市2030年重点任务分工表")
    table = document.add_table(rows=3, cols=5)
    rows = [HEADER, ["1", "举办讲座不少于20场。面向社区。", "普及部", "学会部、办公室", "6月底前"]]
    rows.append(["2", "建设基地5家以上", "学会部", "", ""])
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    path = tmp_path / "table.docx"
    document.save(str(path))
    plan = read_plan_file(path)
    first = plan.items[0]
    assert (first.number, first.title, first.lead, first.support) == (
        "1", "举办讲座不少于20场", ["普及部"], ["学会部", "办公室"],
    )  # fmt: skip
    assert "完成时限：6月底前" in first.body
    assert [t.text for t in plan.items[1].targets] == ["5家以上"]


def test_xlsx_header_found_by_name_and_merged_cells_filled(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["某市科协2030年工作任务分工表"])
    sheet.merge_cells("A1:E1")
    sheet.append([])
    sheet.append(["序号", "重点任务", "牵头单位", "配合单位", "时间节点"])
    sheet.append(["一、党的建设"])
    sheet.merge_cells("A4:E4")
    sheet.append([1, "加强党建。内容", "办公室", None, None])
    sheet.append([2, "推进改革", "学会部", "普及部", "年底"])
    sheet.append([3, "开展调研", None, None, None])
    sheet.merge_cells("C6:C7")
    path = tmp_path / "plan.xlsx"
    workbook.save(str(path))
    plan = read_plan_file(path)
    assert plan.title == "某市科协2030年工作任务分工表"
    assert [(s.number, s.title) for s in plan.sections] == [("一", "党的建设")]
    assert [(i.number, i.section, i.title, i.lead) for i in plan.items] == [
        ("1", "一", "加强党建", ["办公室"]),
        ("2", "一", "推进改革", ["学会部"]),
        ("3", "一", "开展调研", ["学会部"]),
    ]


def test_yaml_canonical_plan_with_target_phrases(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "title: 某市科协2030年工作要点\nyear: 2030\nsections: [{number: 一, title: 党建}]\n"
        "items:\n  - {number: '1', section: 一, title: 学习, lead: [办公室], "
        "targets: [不少于12次]}\n",
        encoding="utf-8",
    )
    plan = read_plan_file(path)
    target = plan.items[0].targets[0]
    assert (target.text, target.comparator, target.value, target.unit) == (
        "不少于12次", "ge", 12.0, "次",
    )  # fmt: skip


def test_json_round_trip_of_the_contract(tmp_path: Path) -> None:
    source = tmp_path / "plan.txt"
    source.write_text("2030年要点\n一、部分\n1.任务甲。不少于3场。\n", encoding="utf-8")
    plan = read_plan_file(source)
    again = tmp_path / "plan.json"
    again.write_text(json.dumps(plan.contract(), ensure_ascii=False), encoding="utf-8")
    assert read_plan_file(again).contract() == plan.contract()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("title: x\nyear: 2030\nitems: []\n", "items: 不能为空"),
        ("title: x\nitems: [{number: '1', title: a}]\n", "year: 缺少必填项"),
        ("title: x\nyear: 2030\nitems: [{number: '1', title: a, x: 1}]\n", "items.0.x: 未知字段"),
        (
            "title: x\nyear: 2030\nitems: [{number: '1', title: a}]\n"
            "phases: [{key: other, name: a, start_date: 2030-01-01, end_date: 2030-01-02}]\n",
            "phases.0.key: 取值只能是",
        ),
        ("title: x\nyear: 2030\nitems: [{number: '1', title: a, section: 九}]\n", "章节"),
        ("- just\n- a list\n", "对象"),
        ("title: [unclosed\n", "YAML"),
    ],
)
def test_bad_canonical_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=words):
        read_plan_file(path)


def test_zip_that_is_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(InputError, match=r"不是有效的 \.docx"):
        read_plan_file(path)


def test_text_renamed_docx(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_text("1.任务。", encoding="utf-8")
    with pytest.raises(InputError, match=r"不是有效的 \.docx"):
        read_plan_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="无法读取"):
        read_plan_file(tmp_path / "nope.txt")


def test_documented_example_is_a_valid_plan(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plan-format.md").read_text("utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example, encoding="utf-8")
    plan = read_plan_file(path)
    assert [i.number for i in plan.items] == ["1", "2"]
    assert [t.comparator for t in plan.items[0].targets] == ["ge", "ge"]
    assert [p.key for p in plan.phases] == ["mobilize", "implement", "review"]


SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared seeds not present")
@pytest.mark.parametrize(
    ("codec", "prefix", "name"),
    [("gb18030", b"", "GB18030"), ("utf-8", b"\xef\xbb\xbf", "UTF-8-BOM"), ("utf-8", b"", "UTF-8")],
)
def test_seed_reads_the_same_in_every_encoding(
    tmp_path: Path, codec: str, prefix: bytes, name: str
) -> None:
    seed = SEEDS / "002_9ea7fcb19178ca69.txt"
    reference = read_plan_file(seed).contract()
    path = tmp_path / seed.name
    path.write_bytes(prefix + seed.read_text(encoding="utf-8").encode(codec))
    plan = read_plan_file(path)
    assert plan.encoding == name
    assert plan.contract() == reference


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared seeds not present")
def test_seed_as_docx_reads_like_the_text(tmp_path: Path) -> None:
    seed = SEEDS / "001_f1def276c14567cc.txt"
    document = docx.Document()
    for line in seed.read_text(encoding="utf-8").split("\n"):
        document.add_paragraph(line)
    path = tmp_path / "001.docx"
    document.save(str(path))
    got = read_plan_file(path).contract()
    expected = read_plan_file(seed).contract()
    assert (got["sections"], got["phases"]) == (expected["sections"], expected["phases"])
    assert [i["title"] for i in got["items"]] == [i["title"] for i in expected["items"]]
