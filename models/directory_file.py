"""The department directory file (YAML or JSON): schema and a loader that names bad lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import InputError

_EMAIL_CHARS = set("\r\n\t ,;<>\"'")


def check_email(value: str) -> str:
    """Return `value` stripped if it looks like one plain email address, else raise ValueError."""
    value = value.strip()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        raise ValueError(f"邮箱地址无效：{value!r}")
    if any(ch in _EMAIL_CHARS for ch in value) or "@" in domain:
        raise ValueError(f"邮箱地址无效：{value!r}")
    return value


class Person(BaseModel):
    """A named person with one email address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=100)
    email: str

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return check_email(value)


class DepartmentEntry(BaseModel):
    """One department: canonical name, aliases, contact(s), 分管领导 and 主要负责人."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = Field(default_factory=list)
    contact: Person | None = None
    contacts: list[Person] = Field(default_factory=list)
    leader: Person | None = None
    head: Person | None = None
    supervision_office: bool = False

    def all_contacts(self) -> list[Person]:
        """The contact and the extra contacts, in file order."""
        return ([self.contact] if self.contact else []) + list(self.contacts)


class DirectoryFile(BaseModel):
    """The whole directory: the organisation and its departments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: str = ""
    departments: list[DepartmentEntry] = Field(min_length=1)


def _line_index(node: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map each path (keys and list indexes) in a YAML node tree to its 1-based line."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(current: yaml.Node, path: tuple[Any, ...]) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                walk(value_node, (*path, key_node.value))
                lines[(*path, key_node.value)] = key_node.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for index, child in enumerate(current.value):
                walk(child, (*path, index))

    walk(node, ())
    return lines


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 0


def load_directory_file(path: Path) -> DirectoryFile:
    """Read and validate a directory file; raise `InputError` with the line of the first fault.

    Beyond the schema it refuses duplicate names and aliases that point at two departments.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"无法读取部门名录文件：{exc}", path=path) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"不是有效的 YAML/JSON：{getattr(exc, 'problem', exc)}",
            path=path,
            line=mark.line + 1 if mark else 0,
        ) from exc
    if node is None or not isinstance(data, dict):
        raise InputError("文件应包含 organisation 和 departments 两项", path=path, line=1)
    lines = _line_index(node)
    try:
        directory = DirectoryFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"未知字段 {loc[-1]!r}"
        raise InputError(f"{field}: {message}", path=path, line=_line_for(lines, loc)) from exc
    seen: dict[str, str] = {}
    for index, entry in enumerate(directory.departments):
        for name in [entry.name, *entry.aliases]:
            owner = seen.get(name)
            if owner is not None and owner != entry.name:
                raise InputError(
                    f"名称 {name!r} 同时指向部门 {owner!r} 和 {entry.name!r}",
                    path=path,
                    line=_line_for(lines, ("departments", index)),
                )
            if owner == entry.name and name == entry.name:
                raise InputError(
                    f"部门 {name!r} 重复出现",
                    path=path,
                    line=_line_for(lines, ("departments", index)),
                )
            seen[name] = entry.name
    return directory
