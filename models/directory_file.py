"""The department directory file (YAML or JSON): schema and a loader that names bad lines."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.errors import InputError
from models.robots import Robot

# Printable ASCII allowed in an unquoted local part (RFC 5322 atext); any other
# character there must be non-ASCII and printable (RFC 6531, internationalised mail).
_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-")
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}


def check_text(value: str) -> str:
    """Return `value` if it holds no line break or other control character, else ValueError.

    Names end up in mail headers, subjects and the supervisor's terminal; a line break or
    an escape there is never wanted, so the directory refuses it at import.
    """
    for ch in value:
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}:
            raise ValueError(f"含有换行或控制字符（U+{ord(ch):04X}），请删除该字符后重新导入")
    return value


def _bad_email(value: str, why: str) -> ValueError:
    return ValueError(f"邮箱地址无效：{value!r}（{why}），请改为形如 name@example.org 的地址")


def check_email(value: str) -> str:
    """Return `value` stripped if it is one syntactically valid address, else ValueError.

    Accepted: a dot-atom local part (ASCII atext or printable non-ASCII, RFC 6531) of at
    most 64 bytes, and a domain of at least two labels that IDNA-encodes to letters,
    digits and hyphens (so `学会部@例子.中国` is accepted; the relay IDNA-encodes the
    domain and needs SMTPUTF8 for a non-ASCII local part). Refused: quoted local parts,
    IP literals, empty or dotted-twice parts, spaces, controls and separators.
    """
    value = value.strip()
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value):
        raise _bad_email(value, "含有空格、换行或控制字符")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise _bad_email(value, "须有且仅有一个 @")
    if len(local.encode()) > 64:
        raise _bad_email(value, "@ 前的部分超过 64 字节")
    atoms = local.split(".")
    if any(not atom for atom in atoms):
        raise _bad_email(value, "@ 前的部分不能以点开头或结尾，也不能有连续的点")
    if any(ch.isascii() and ch not in _ATEXT for ch in local.replace(".", "")):
        raise _bad_email(value, "@ 前的部分含有不允许的符号")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _bad_email(value, "域名无法转换为国际化域名（IDNA）") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253:
        raise _bad_email(value, "域名应至少包含两段，如 example.org")
    if not all(_LDH.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise _bad_email(value, "域名只能由字母、数字和连字符组成，各段以点分隔")
    return value


PlainText = Annotated[str, AfterValidator(check_text)]


class Person(BaseModel):
    """A named person with one email address (and, for a leader or head, their groups'
    robots)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PlainText = Field(default="", max_length=100)
    email: str
    robots: list[Robot] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return check_email(value)


class DepartmentEntry(BaseModel):
    """One department: canonical name, aliases, contact(s), 分管领导 and 主要负责人, and
    its group's chat robots (`models.robots.Robot`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PlainText = Field(min_length=1, max_length=200)
    aliases: list[PlainText] = Field(default_factory=list)
    contact: Person | None = None
    contacts: list[Person] = Field(default_factory=list)
    leader: Person | None = None
    head: Person | None = None
    supervision_office: bool = False
    robots: list[Robot] = Field(default_factory=list)

    def all_contacts(self) -> list[Person]:
        """The contact and the extra contacts, in file order."""
        return ([self.contact] if self.contact else []) + list(self.contacts)


class DirectoryFile(BaseModel):
    """The whole directory: the organisation and its departments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: PlainText = ""
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
