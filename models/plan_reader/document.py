"""The plan reader's entry points: text -> `ParsedPlan`, and files dispatched by extension."""

from __future__ import annotations

import errno
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from models.errors import InputError
from models.plan_reader.encoding import MAX_BYTES, decode_text, sniff_binary
from models.plan_reader.normalise import DOC_NUMBER, RED_HEAD, Paragraph, clean_document
from models.plan_reader.phases import default_phases
from models.plan_reader.structure import first_marker_index, promote_sections, read_structure
from models.plan_schema import ParsedPlan, ParseWarning

_TITLE_WORDS = re.compile(
    r"工作要点|工作要點|要点|要點|方案|计划|計劃|规划|規劃|讲话|講話|意见|意見|安排|任务|任務|"
    r"清单|清單|分工|通知"
)
_TITLE_NOISE = re.compile(r"[(（]第\d+\s*/\s*\d+页[)）]|\.(?:docx?|pdf|txt|wps|xlsx?)$", re.I)
_QUOTED_TITLE = re.compile(r"《([^》]{4,80})》")
_YEAR = re.compile(r"((?:19|20)\d\d)\s*年")
_ISSUED = re.compile(r"^((?:19|20)\d\d)年(\d{1,2})月(\d{1,2})日$")
_ORG_SUFFIX = re.compile(
    r"(?:协会|協會|科协|科協|委员会|委員會|政府|局|厅|廳|办公室|辦公室|委|院|中心|部|会|會)$"
)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TEXT_SUFFIXES = {".txt", ".text", ".md", ""}


def _title(preamble: list[Paragraph], source_name: str) -> str:
    for para in preamble:
        inner = _QUOTED_TITLE.search(para.text)
        if inner and _TITLE_WORDS.search(inner.group(1)) and para.text.endswith("通知"):
            return inner.group(1)
    for para in preamble:
        text = _TITLE_NOISE.sub("", para.text).strip().strip("《》")
        if len(text) <= 80 and _TITLE_WORDS.search(text) and not re.search(r"[。:：]$|。", text):
            return text
    for para in preamble:
        text = _TITLE_NOISE.sub("", para.text).strip()
        if 0 < len(text) <= 60 and "。" not in text and not text.endswith((":", "：")):
            return text
    return Path(source_name).stem or "未命名计划"


def _issued_and_organisation(paragraphs: list[Paragraph]) -> tuple[str | None, str]:
    for index, para in enumerate(paragraphs):
        match = _ISSUED.match(para.text.replace(" ", ""))
        if match is None:
            continue
        year, month, day = (int(part) for part in match.groups())
        try:
            from datetime import date

            issued = date(year, month, day).isoformat()
        except ValueError:
            return None, ""
        above = paragraphs[index - 1].text if index else ""
        organisation = above if 0 < len(above) <= 30 and not re.search(r"[。,，:：]", above) else ""
        return issued, organisation
    return None, ""


def parse_plan_text(
    text: str, *, source_name: str, default_year: int | None = None, encoding: str | None = None
) -> ParsedPlan:
    """Read a plan from text: sections, groups, items, units, targets, phases and metadata.

    Pure, linear in the length of `text`. Raises `InputError` when the text has no numbered
    items, exceeds the paragraph or item limits, or no year can be found (then pass
    `default_year`, which is used with a warning). A plan without phases gets the default
    phases with a warning.
    """
    try:
        return _parse_plan_text(
            text, source_name=source_name, default_year=default_year, encoding=encoding
        )
    except InputError as exc:
        if exc.path is None and source_name:
            raise InputError(exc.reason, path=source_name, line=exc.line) from exc
        raise
    except ValidationError as exc:
        reason = chinese_error(exc.errors()[0])
        raise InputError(f"计划内容无效：{reason}", path=source_name or None) from exc


def _parse_plan_text(
    text: str, *, source_name: str, default_year: int | None, encoding: str | None
) -> ParsedPlan:
    if not text.strip():
        raise InputError("文件为空，没有可读取的内容", path=source_name or None)
    document = clean_document(text)
    paragraphs = document.paragraphs
    first = first_marker_index(paragraphs)
    cut = first if first is not None else len(paragraphs)
    preamble = paragraphs[: max(cut, 1)]
    title = _title(preamble, source_name)
    issued, organisation = _issued_and_organisation(paragraphs[: cut + 1] + paragraphs[-6:])
    number = next((p.text.replace(" ", "") for p in preamble if DOC_NUMBER.match(p.text)), None)
    issuer = next((m.group(1) for p in preamble[:5] if (m := RED_HEAD.match(p.text))), "")
    year_match = _YEAR.search(title)
    if year_match is None and issued is None:
        year_match = next((m for p in preamble if (m := _YEAR.search(p.text))), None)
        year_match = year_match or next(
            (m for p in paragraphs if (m := _YEAR.search(p.text))), None
        )
    guessed: ParseWarning | None = None
    if year_match is not None:
        year = int(year_match.group(1))
    elif issued is not None:
        year = int(issued[:4])
    elif default_year is not None:
        year = default_year
        guessed = ParseWarning(line=0, reason=f"文档中找不到年度，按 {year} 年处理")
    else:
        raise InputError("找不到计划年度（标题或正文中没有“20XX年”）", path=source_name or None)
    if not organisation:
        prefix = title[: year_match.start()] if year_match and year_match.group(0) in title else ""
        organisation = prefix if prefix and _ORG_SUFFIX.search(prefix) else issuer
    structure = read_structure(paragraphs, year=year)
    if not structure.items and structure.sections:
        promote_sections(paragraphs, structure)
    if not structure.items:
        raise InputError(
            "没有找到编号的任务条目（如“1.”“（一）”），无法识别为工作计划", path=source_name or None
        )
    warnings = list(structure.warnings)
    if guessed is not None:
        warnings.insert(0, guessed)
    phases = structure.phases
    if not phases:
        phases = default_phases(year)
        warnings.append(ParseWarning(line=0, reason="文档未写明实施阶段，已使用默认阶段"))
    try:
        return ParsedPlan(
            title=title[:300],
            organisation=organisation[:200],
            year=year,
            issued=issued,
            document_number=number[:60] if number else None,
            sections=structure.sections,
            groups=structure.groups,
            items=structure.items,
            phases=phases,
            warnings=warnings,
            encoding=encoding,
        )
    except ValidationError as exc:
        reason = chinese_error(exc.errors()[0])
        raise InputError(f"计划内容无效：{reason}", path=source_name) from exc


_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知字段",
    "too_short": "不能为空",
    "string_too_short": "不能为空",
    "string_too_long": "内容过长",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "string_type": "应为文字",
    "list_type": "应为列表",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
}


def chinese_error(error: Mapping[str, Any]) -> str:
    """One Chinese line for a pydantic error: `items.0.title: 缺少必填项`."""
    where = ".".join(str(part) for part in error["loc"])
    kind = str(error["type"])
    if kind == "literal_error":
        message = f"取值只能是 {error.get('ctx', {}).get('expected', '')}"
    elif kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    else:
        message = _MESSAGES.get(kind, str(error["msg"]))
    return f"{where}: {message}" if where else message


def parse_plan_data(data: object, *, source_name: str, source_text: str = "") -> ParsedPlan:
    """Validate a hand-written canonical plan (already loaded from YAML/JSON).

    With `source_text` (the YAML/JSON it was loaded from) an error names the line of the
    offending value. Raises `InputError`.
    """
    if not isinstance(data, dict):
        raise InputError("计划文件应是一个包含 title、year、items 的对象", path=source_name)
    try:
        return ParsedPlan.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _yaml_line(source_text, error["loc"]) if source_text else 0
        raise InputError(chinese_error(error), path=source_name, line=line) from exc


def _yaml_line(text: str, loc: tuple[int | str, ...]) -> int:
    """1-based line of the value at `loc` (keys and indexes) in YAML/JSON text, else 0."""
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return 0
    line = 0
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


_OS_REASONS = {
    errno.ENOENT: "文件不存在",
    errno.EACCES: "没有读取权限",
    errno.EPERM: "没有读取权限",
    errno.EISDIR: "这是一个文件夹，不是文件",
    errno.ENAMETOOLONG: "文件名过长",
    errno.ELOOP: "符号链接循环",
}


def _os_reason(exc: OSError) -> str:
    return _OS_REASONS.get(exc.errno or 0, f"系统错误 {exc.errno}")


def _regular_file_size(path: Path) -> int:
    """Size of a regular file; `InputError` for a missing path, a folder, a device or a pipe."""
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(f"无法读取文件：{_os_reason(exc)}", path=path) from exc
    if stat.S_ISDIR(info.st_mode):
        raise InputError("这是一个文件夹，不是计划文件；请给出文件路径", path=path)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("不是普通文件（设备、管道或套接字），无法作为计划读取", path=path)
    return info.st_size


def read_bounded(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The file's bytes, reading at most `limit` + 1 (a file that grows is refused, not read
    without bound). Raises `InputError` for an unreadable or oversized file."""
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(f"无法读取文件：{_os_reason(exc)}", path=path) from exc
    if len(data) > limit:
        raise InputError(f"文件过大，上限为 {limit // 1048576} MB", path=path)
    return data


FIRST_UNIT_LEADS = "按“第一个责任单位为牵头单位”读取：每项所列第一个单位牵头，其余配合"


def first_unit_leads(parsed: ParsedPlan) -> ParsedPlan:
    """The plan read with the convention that an item's first listed unit leads and the
    others support (plans that give only 责任单位, e.g. 杭州's): applied to items that list
    several leads and no support, and said in the parse report."""
    changed = parsed.model_copy(deep=True)
    for item in changed.items:
        if len(item.lead) > 1 and not item.support:
            item.lead, item.support = item.lead[:1], item.lead[1:]
    changed.warnings.append(ParseWarning(line=0, reason=FIRST_UNIT_LEADS))
    return changed


def read_plan_file(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """Read a plan file by extension: text, .docx, .xlsx, .yaml/.yml or .json.

    Raises `InputError` (one line) for missing, oversized, binary or malformed files.
    """
    size = _regular_file_size(path)
    if size > MAX_BYTES:
        raise InputError(
            f"文件过大（{size / 1048576:.1f} MB），上限为 {MAX_BYTES // 1048576} MB", path=path
        )
    suffix = path.suffix.lower()
    name = path.name
    if suffix == ".docx":
        from models.plan_reader.docx import read_docx

        return read_docx(path, default_year=default_year)
    if suffix == ".pdf":
        from models.plan_reader.pdf import read_pdf

        return read_pdf(path, default_year=default_year)
    if suffix in {".doc", ".wps"}:
        from models.plan_reader.word97 import read_word97

        return read_word97(path, default_year=default_year)
    if suffix in {".xlsx", ".xlsm"}:
        from models.plan_reader.xlsx import read_xlsx

        return read_xlsx(path, default_year=default_year)
    data = read_bounded(path)
    if suffix in {".yaml", ".yml", ".json"}:
        decoded = decode_text(data, source_name=name)
        try:
            loaded = yaml.load(decoded.text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
        except (yaml.YAMLError, RecursionError) as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = " ".join(str(getattr(exc, "problem", "") or "").split())[:120]
            raise InputError(
                f"不是有效的 YAML/JSON（{problem or '格式错误'}），请检查该行",
                path=path,
                line=mark.line + 1 if mark else 0,
            ) from exc
        return parse_plan_data(loaded, source_name=name, source_text=decoded.text)
    if suffix not in TEXT_SUFFIXES:
        kind = sniff_binary(data)
        if kind is not None:
            raise InputError(f"这是{kind}，不是支持的计划文档", path=path)
    decoded = decode_text(data, source_name=name)
    return parse_plan_text(
        decoded.text, source_name=name, default_year=default_year, encoding=decoded.encoding
    )
