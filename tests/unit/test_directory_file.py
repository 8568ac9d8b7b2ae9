"""The department directory file: what it accepts and how it refuses bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.directory_file import load_directory_file
from models.errors import InputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "organisation: 某市科协\ndepartments:\n  - name: 学会部\n    aliases: [學會部]\n"
        "    contact: {name: 张三, email: a@example.org}\n",
    )
    directory = load_directory_file(path)
    assert directory.departments[0].all_contacts()[0].email == "a@example.org"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("departments:\n  - name: A\n  - name: A\n", 3, "重复"),
        ("departments:\n  - name: A\n    aliases: [X]\n  - name: B\n    aliases: [X]\n", 4, "X"),
        ("departments:\n  - name: A\n    contact: {email: not-an-email}\n", 3, "邮箱地址无效"),
        ("departments:\n  - name: A\n    colour: red\n", 3, "未知字段"),
        ("departments: [\n", 2, "YAML"),
        ("- just a list\n", 1, "organisation"),
    ],
)
def test_bad_files_name_the_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_directory_file(path)
    assert info.value.line == line
    assert needle in info.value.reason
    assert str(path) in str(info.value)
