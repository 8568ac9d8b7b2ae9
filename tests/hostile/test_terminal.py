"""Outside text reaches the supervisor's terminal as plain text (issue 16).

Rich markup (`[/x]`), emoji codes, ANSI escapes (`ESC[2J`), OSC-8 hyperlinks, C1 controls
and direction overrides typed by a department, written in a directory file or in a file
name must print as visible text: never interpreted, never a `MarkupError` traceback.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.table import Table

from duban.cli.output import PlainConsole, escape_controls, line, plain
from duban.runtime import open_store
from models.db import transaction
from models.directory import Department
from models.settings import Settings
from models.supervision import Extension
from tests.portal_rows import make_checkin

DUBAN = Path(sys.executable).with_name("duban")
OSC8 = "\x1b]8;;https://evil.example\x07点我\x1b]8;;\x07"
HOSTILE = [
    "[/x]",
    "[bold red]假警告[/]",
    "[link=https://evil.example]点我[/link]",
    ":warning: 表情",
    "清屏\x1b[2J\x1b[H",
    OSC8,
    "C1\x9b2J",
    "回车\r覆盖",
    "方向\u202eabc",
    "响铃\x07",
]
RAW_CONTROLS = ["\x1b", "\x07", "\x9b", "\r", "\u202e"]


def render(*objects: object) -> str:
    out = io.StringIO()
    console = PlainConsole(file=out, width=300, force_terminal=False, color_system=None)
    for obj in objects:
        console.print(obj)
    return out.getvalue()


@pytest.mark.parametrize("text", HOSTILE)
def test_every_way_of_printing_shows_the_text_plainly(text: str) -> None:
    table = Table("部门", "理由")
    table.add_row(text, plain(text))
    output = render(text, f"前缀 {text} 后缀", table, line(("提示：", "yellow"), text), plain(text))
    assert not any(ch in output for ch in RAW_CONTROLS), repr(output)
    visible = escape_controls(text)
    assert output.count(visible) == 6, output


def test_escapes_are_visible() -> None:
    assert escape_controls("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape_controls("\u202e") == "\\u202e"
    assert escape_controls("多行\n\t缩进") == "多行\n\t缩进"


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    env.pop("DUBAN_DATABASE_URL", None)
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def assert_plain(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "MarkupError" not in output, output
    assert not any(ch in output for ch in RAW_CONTROLS), repr(output)


def test_lists_print_hostile_rows_as_text(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    with transaction(store.sessions) as session:
        rows = make_checkin(session)
        session.add(Department(name="普及部[/x]" + OSC8, created_at=rows.checkin.created_at))
        session.add(
            Extension(
                checkin_id=rows.checkin.id,
                requested_date=rows.checkin.due_date.replace(month=10),
                reason="[/x]理由\x1b[2J" + OSC8,
                requested_at=datetime(2021, 9, 20, tzinfo=UTC),
            )
        )
    extensions = run(tmp_path, "extension", "list")
    assert extensions.returncode == 0, extensions.stderr
    assert_plain(extensions)
    assert "[/x]理由\\x1b[2J" in extensions.stdout
    departments = run(tmp_path, "departments", "list")
    assert departments.returncode == 0, departments.stderr
    assert_plain(departments)
    assert "普及部[/x]\\x1b]8;;https://evil.example" in departments.stdout


def test_file_names_are_printed_as_text(tmp_path: Path) -> None:
    missing = run(tmp_path, "plan", "parse", str(tmp_path / "x[/x]\x1b[2J.txt"))
    assert missing.returncode != 0
    assert_plain(missing)
    assert "x[/x]" in missing.stdout + missing.stderr
    (tmp_path / "名录[").mkdir()
    directory = tmp_path / "名录[/x].yaml"
    directory.write_text("organisation: 科协\ndepartments: []\n", encoding="utf-8")
    refused = run(tmp_path, "departments", "import", str(directory))
    assert refused.returncode == 1
    assert_plain(refused)
    assert "名录[/x].yaml" in refused.stderr


def test_json_output_escapes_every_control_character() -> None:
    import json

    from duban.cli.output import plain_json

    data = {"title": "".join(HOSTILE)}
    text = plain_json(data)
    assert not any(ch in text for ch in RAW_CONTROLS)
    assert json.loads(text) == data
