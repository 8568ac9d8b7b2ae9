"""`duban plan parse` on each seed document matches its hand-checked fixture exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "seeds"
FIXTURES = SHARED / "fixtures"
DUBAN = Path(sys.executable).parent / "duban"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures not present")


def run_duban(*args: str | Path, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `duban` entry point, as a user would."""
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def parse_json(seed: str, tmp_path: Path, *extra: str | Path) -> dict[str, Any]:
    result = run_duban(
        "plan", "parse", SEEDS / seed, "--format", "json", *extra, cwd=ROOT, data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def test_contract_keys_in_order(tmp_path: Path) -> None:
    data = parse_json("001_f1def276c14567cc.txt", tmp_path)
    assert list(data) == [
        "title", "organisation", "year", "issued", "sections", "groups", "items", "phases",
        "warnings",
    ]  # fmt: skip
    assert list(data["items"][0]) == [
        "number", "section", "group", "title", "body", "lead", "support", "targets", "line",
    ]  # fmt: skip
    assert list(data["phases"][0]) == ["key", "name", "start", "end", "start_date", "end_date"]
    assert all(list(w) == ["line", "reason"] for w in data["warnings"])


def test_000_speech_groups_actions_and_targets(tmp_path: Path) -> None:
    expected = fixture("000_speech_actions_targets.expected.json")
    data = parse_json(expected["source"], tmp_path)
    assert data["groups"] == expected["groups"]
    actions = [item for item in data["items"] if item["group"] == "八项行动"]
    got = [
        {
            "number": item["number"],
            "title": item["title"],
            "targets": [target["text"] for target in item["targets"]],
        }
        for item in actions
    ]
    assert got == expected["actions"]
    platforms = [item for item in data["items"] if item["group"] == "四个平台"]
    assert [item["number"] for item in platforms] == ["(一)", "(二)", "(三)", "(四)"]
    first = actions[0]["targets"][0]
    assert (first["comparator"], first["value"], first["unit"]) == ("ge", 5, "家")
    built = actions[1]["targets"][0]
    assert (built["comparator"], built["value"], built["unit"]) == ("eq", 6, "家")
    assert all(not item["lead"] for item in data["items"])
    flagged = [w for w in data["warnings"] if "未写明牵头单位" in w["reason"]]
    assert len(flagged) == len(data["items"]) == 12


def test_001_implementation_plan_sections_items_phases(tmp_path: Path) -> None:
    expected = fixture("001_implementation_plan_phases.expected.json")
    data = parse_json(expected["source"], tmp_path)
    assert data["year"] == expected["year"]
    assert data["sections"] == expected["sections"]
    assert data["phases"] == expected["phases"]
    got = [
        {"number": item["number"], "section": item["section"], "title": item["title"]}
        for item in data["items"]
    ]
    assert got == expected["items"]


def test_002_work_points_with_departments(tmp_path: Path) -> None:
    expected = fixture("002_changzhi_2021_work_points.expected.json")
    data = parse_json(
        expected["source"], tmp_path, "--departments", ROOT / "examples" / "departments.yaml"
    )
    assert data["organisation"] == expected["organisation"]
    assert data["year"] == expected["year"]
    assert data["issued"] == expected["issued"]
    assert data["sections"] == expected["sections"]
    keys = ("number", "section", "title", "lead", "support", "lead_departments")
    got = [{key: item[key] for key in keys} for item in data["items"]]
    assert got == expected["items"]
    assert all(item["support_departments"] == [] for item in data["items"])


def test_002_without_directory_has_no_department_fields(tmp_path: Path) -> None:
    data = parse_json("002_9ea7fcb19178ca69.txt", tmp_path)
    assert all("lead_departments" not in item for item in data["items"])


def test_003_scraped_speech_reads_sections_as_items(tmp_path: Path) -> None:
    data = parse_json("003_17a4f32973dd4260.txt", tmp_path)
    assert data["year"] == 2007
    assert [item["number"] for item in data["items"]] == list("一二三四五六七八九")
    assert [s["number"] for s in data["sections"]] == list("一二三四五六七八九")
    assert [item["section"] for item in data["items"]] == list("一二三四五六七八九")
    assert data["items"][0]["title"] == "上档次,围绕中心,发挥作用,提高科协工作地位"
    assert data["items"][-1]["title"].startswith("上状态")


def test_table_format_prints_preview(tmp_path: Path) -> None:
    result = run_duban(
        "plan", "parse", SEEDS / "001_f1def276c14567cc.txt", cwd=ROOT, data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "发动部署阶段" in result.stdout
    assert "共 5 个章节、12 项任务" in result.stdout
