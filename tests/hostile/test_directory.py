"""The directory import refuses what would break mail or the terminal, naming file and line.

Names (department, alias, person, organisation) with CR/LF or another control character,
and syntactically invalid addresses, are refused with the file, the line and what to do;
internationalised addresses (`学会部@例子.中国`) are accepted (issue 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.directory_file import check_email, check_text, load_directory_file
from models.errors import InputError

CONTROLS = ["\r", "\n", "\r\n", "\x00", "\x1b[2J", "\x85", "\u2028", "\u2029", "\u202e", "\t"]

GOOD_ADDRESSES = [
    "a@example.org",
    "学会部@例子.中国",
    "user@例子.中国",
    "普及部@example.org",
    "o'brien+tag@sub.example.org",
    "x_y-z@xn--fsqu00a.xn--fiqs8s",
    "UPPER@EXAMPLE.ORG",
]
BAD_ADDRESSES = [
    "not-an-email",
    "a@b",
    "a@example",
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a@.example.org",
    "a@example..org",
    "a@-x.example.org",
    "a@x-.example.org",
    "a b@example.org",
    "a@exa_mple.org",
    "a@123.456",
    "a@[127.0.0.1]",
    '"quoted"@example.org',
    "a@b@example.org",
    "a,b@example.org",
    "<a@example.org>",
    "x" * 65 + "@example.org",
    "a@" + "x" * 64 + ".org",
    "a\r\nBcc: all@example.org@example.org",
    "a@例子.中国\u202e",
    "a\x00@example.org",
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def entry_yaml(name: str = "学会部", alias: str = "學會部", person: str = "张三") -> str:
    return (
        "organisation: 某市科协\n"
        "departments:\n"
        "  - name: 办公室\n"
        f"  - name: {json.dumps(name)}\n"
        f"    aliases: [{json.dumps(alias)}]\n"
        f"    contact: {{name: {json.dumps(person)}, email: a@example.org}}\n"
    )


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize(("field", "line"), [("name", 4), ("alias", 5), ("person", 6)])
def test_control_characters_in_names_are_refused_with_the_line(
    tmp_path: Path, control: str, field: str, line: int
) -> None:
    path = write(tmp_path, entry_yaml(**{field: f"普及{control}部"}))
    with pytest.raises(InputError) as info:
        load_directory_file(path)
    assert info.value.line == line
    assert "控制字符" in info.value.reason and "删除" in info.value.reason
    assert str(path) in str(info.value)


def test_control_characters_in_the_organisation_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'organisation: "科协\\r\\nX: y"\ndepartments:\n  - name: A\n')
    with pytest.raises(InputError) as info:
        load_directory_file(path)
    assert info.value.line == 1 and "控制字符" in info.value.reason


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_internationalised_and_plain_addresses_are_accepted(tmp_path: Path, address: str) -> None:
    path = write(
        tmp_path,
        f"departments:\n  - name: 学会部\n    contact: {{email: {json.dumps(address)}}}\n",
    )
    directory = load_directory_file(path)
    assert directory.departments[0].all_contacts()[0].email == address


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_invalid_addresses_are_refused_with_the_line(tmp_path: Path, address: str) -> None:
    path = write(
        tmp_path,
        "departments:\n  - name: 办公室\n  - name: 学会部\n"
        f"    leader: {{name: 李四, email: {json.dumps(address)}}}\n",
    )
    with pytest.raises(InputError) as info:
        load_directory_file(path)
    assert info.value.line == 4
    assert "邮箱地址无效" in info.value.reason and "name@example.org" in info.value.reason


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_accepted_address_is_one_clean_address(address: str) -> None:
    try:
        accepted = check_email(address)
    except ValueError:
        return
    assert accepted.count("@") == 1
    assert not any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in accepted)
    local, _, domain = accepted.partition("@")
    assert local and not local.startswith(".") and ".." not in local
    assert domain.encode("idna").isascii() and "." in domain


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=30), alias=st.text(min_size=1, max_size=10))
def test_directory_import_property(
    tmp_path_factory: pytest.TempPathFactory, name: str, alias: str
) -> None:
    """Any names: loaded with every name free of controls, or refused with a line."""
    path = tmp_path_factory.mktemp("dir") / "departments.yaml"
    path.write_text(entry_yaml(name=name, alias=alias), encoding="utf-8")
    try:
        directory = load_directory_file(path)
    except InputError as exc:
        assert exc.line > 0 and exc.path == str(path)
        return
    for entry in directory.departments:
        for text in (entry.name, *entry.aliases):
            assert check_text(text) == text
