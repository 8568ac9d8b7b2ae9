"""`duban plan import` end to end: bad input fails in one line and writes nothing; re-import
is a no-op; a changed version is shown and applied only with --yes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.acceptance.test_plan_fixtures import ROOT, SEEDS, run_duban

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("duban-data")
    result = run_duban("db", "upgrade", cwd=ROOT, data_dir=path)
    assert result.returncode == 0, result.stderr
    return path


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {
        "empty.txt": b"",
        "binary.txt": bytes(range(256)) * 8,
        "image.png": b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64,
        "nothing.txt": "2030年工作总结\n今年做了很多工作。\n明年继续努力。\n".encode(),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp / name
        paths[name].write_bytes(data)
    big = tmp / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    paths["big.txt"] = big
    fake = tmp / "fake.docx"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    paths["fake.docx"] = fake
    return paths


EXPECTED_WORDS = {
    "empty.txt": "为空",
    "binary.txt": "二进制",
    "image.png": "PNG",
    "nothing.txt": "没有找到编号的任务条目",
    "big.txt": "文件过大",
    "fake.docx": "不是有效的 .docx",
}


def test_bad_input_one_line_error_nothing_written(data_dir: Path, tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path).items():
        result = run_duban("plan", "import", path, "--yes", cwd=ROOT, data_dir=data_dir)
        assert result.returncode == 1, name
        assert "Traceback" not in result.stderr + result.stdout, name
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (name, result.stderr)
        assert EXPECTED_WORDS[name] in lines[0], (name, lines[0])
    listed = run_duban("plan", "list", cwd=ROOT, data_dir=data_dir)
    assert "共 0 个计划" in listed.stdout


def test_import_dry_run_then_import_then_noop_then_changed(data_dir: Path, tmp_path: Path) -> None:
    seed = SEEDS / "002_9ea7fcb19178ca69.txt"
    directory = ROOT / "examples" / "departments.yaml"
    dry = run_duban("plan", "import", seed, "--dry-run", "--departments", directory,
                    cwd=ROOT, data_dir=data_dir)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "预览模式：未写入任何数据" in dry.stdout
    assert "共 0 个计划" in run_duban("plan", "list", cwd=ROOT, data_dir=data_dir).stdout
    first = run_duban("plan", "import", seed, "--departments", directory,
                      cwd=ROOT, data_dir=data_dir)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "已创建计划" in first.stdout
    again = run_duban("plan", "import", seed, cwd=ROOT, data_dir=data_dir)
    assert "没有任何改动" in again.stdout
    changed = tmp_path / "v2.txt"
    changed.write_text(
        seed.read_text(encoding="utf-8").replace("4. 搭建高水平", "4. 搭建更高水平"),
        encoding="utf-8",
    )
    declined = run_duban("plan", "import", changed, cwd=ROOT, data_dir=data_dir)
    assert "修改 1 项" in declined.stdout
    assert "未应用变更" in declined.stdout
    applied = run_duban("plan", "import", changed, "--yes", cwd=ROOT, data_dir=data_dir)
    assert applied.returncode == 0, applied.stderr
    assert "已更新计划" in applied.stdout
    shown = run_duban(
        "plan", "show", "長治市科學技術協會2021年工作要點", cwd=ROOT, data_dir=data_dir
    )
    assert "搭建更高水平科技开放交流平台" in shown.stdout  # shown in one script (simplified)
    assert "学会部" in shown.stdout
    listed = run_duban("plan", "list", cwd=ROOT, data_dir=data_dir)
    assert "共 1 个计划" in listed.stdout
    missing = run_duban("plan", "show", "不存在", cwd=ROOT, data_dir=data_dir)
    assert missing.returncode == 1
    assert "找不到计划" in missing.stderr


def test_unresolved_units_mapped_or_created_from_the_cli(data_dir: Path, tmp_path: Path) -> None:
    plan = tmp_path / "units.txt"
    plan.write_text(
        "某区科协2032年工作要点\n1.建设阵地。（牵头部室：宣传处；配合部室：信息科）\n",
        encoding="utf-8",
    )
    first = run_duban("plan", "import", plan, cwd=ROOT, data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "未匹配单位" in first.stdout
    assert "宣传处" in first.stdout
    dry = run_duban("plan", "import", plan, "--create-missing", "--dry-run",
                    cwd=ROOT, data_dir=data_dir)  # fmt: skip
    assert "预览模式：未写入任何数据" in dry.stdout
    directory = ROOT / "examples" / "departments.yaml"
    mapped = run_duban("plan", "import", plan, "--map", "宣传处=办公室", "--create-missing",
                       "--departments", directory, cwd=ROOT, data_dir=data_dir)  # fmt: skip
    assert mapped.returncode == 0, mapped.stderr
    assert "已新建部门：信息科" in mapped.stdout
    assert "已为 2 个原未匹配的单位交办部门" in mapped.stdout
    listed = run_duban("departments", "list", cwd=ROOT, data_dir=data_dir)
    assert "信息科" in listed.stdout
    bad = run_duban("plan", "import", plan, "--map", "宣传处", cwd=ROOT, data_dir=data_dir)
    assert bad.returncode == 1
    assert "--map 的格式" in bad.stderr
