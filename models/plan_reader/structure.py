"""Paragraphs -> sections, grouped lists, items (title, body, units, targets) and phases.

Sections are `一、`; items are `1.`/`1、`, `（一）` or `(1)`. The style of the first item in
the document is the item style; a shallower numbered line followed by deeper ones is an
intermediate heading (otherwise an item); a deeper one is part of the current item's body.
A short line ending in a colon (`八项行动是:`) opens a grouped list. Dated steps
(`发动部署阶段(3月下旬5月上旬)`) are phases, not items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from models.errors import InputError
from models.plan_reader.deadlines import prose_schedule
from models.plan_reader.normalise import Paragraph
from models.plan_reader.phases import read_phase
from models.plan_reader.targets import find_targets
from models.plan_reader.units import Units, is_unit_line, parse_unit_clause, take_trailing_units
from models.plan_schema import ParsedGroup, ParsedItem, ParsedPhase, ParsedSection, ParseWarning

_CN = "一二三四五六七八九十"
_SECTION = re.compile(rf"^([{_CN}]{{1,3}})、\s*(.*)$", re.S)
_PAREN_CN = re.compile(rf"^([(（][{_CN}]{{1,3}}[)）])\s*(.*)$", re.S)
_DIGIT = re.compile(r"^(\d{1,4})[.、．](?![.、．])\s*(.*)$", re.S)
_PAREN_DIGIT = re.compile(r"^([(（]\d{1,4}[)）])\s*(.*)$", re.S)
_STYLES = (("paren_cn", _PAREN_CN), ("digit", _DIGIT), ("paren_digit", _PAREN_DIGIT))
_DEPTH = {"section": 0, "paren_cn": 1, "digit": 2, "paren_digit": 3}
_SENTENCE_END = re.compile(r"[。！？；!?;]")
_ENUMERATED = re.compile(rf"^(?:[{_CN}]+是|首先|其次|再次|最后|此外|同时)")
_GROUP_TAIL = re.compile(r"(?:主要)?(?:是|为|為|如下|包括|有)?\s{0,40}[:：]$")
MAX_ITEMS = 20000


@dataclass
class _Draft:
    number: str
    section: str | None
    group: str | None
    line: int
    parts: list[str]
    unit_lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


@dataclass
class Structure:
    """What the structure pass found, before plan metadata is attached."""

    sections: list[ParsedSection] = field(default_factory=list)
    groups: list[ParsedGroup] = field(default_factory=list)
    items: list[ParsedItem] = field(default_factory=list)
    phases: list[ParsedPhase] = field(default_factory=list)
    warnings: list[ParseWarning] = field(default_factory=list)


def _marker(text: str) -> tuple[str, str, str] | None:
    """(style, number as written without `.`/`、`, rest) for a numbered paragraph, else None."""
    match = _SECTION.match(text)
    if match:
        return "section", match.group(1), match.group(2)
    for style, pattern in _STYLES:
        match = pattern.match(text)
        if match:
            return style, match.group(1), match.group(2)
    return None


def split_title(text: str) -> tuple[str, str]:
    """An item's title is its first sentence (without the full stop); its body is the rest."""
    text = text.strip()
    match = _SENTENCE_END.search(text)
    if match is None:
        return _join_lines(text), ""
    return _join_lines(text[: match.start()].strip()), text[match.end() :].strip()


def _join_lines(title: str) -> str:
    """A title wrapped over lines is one line again (lines joined without a break)."""
    if "\n" not in title and "\r" not in title:
        return title
    return "".join(part.strip() for part in title.splitlines())


def _section_title(rest: str) -> tuple[str, str]:
    rest = rest.strip()
    match = re.search(r"\s|[。！？；!?;]", rest)
    if match is None:
        return rest, ""
    return rest[: match.start()], rest[match.end() :].strip()


def _finish(draft: _Draft, out: Structure, year: int) -> None:
    if len(out.items) >= MAX_ITEMS:
        raise InputError(
            f"任务条目超过 {MAX_ITEMS} 项（第{draft.line}行起），超出上限；请拆分为多个计划文件"
        )
    text, trailing = take_trailing_units(draft.text)
    own = parse_unit_clause(" ".join(draft.unit_lines))
    units = Units()
    units.add("lead", trailing.lead + own.lead)
    units.add("support", trailing.support + own.support)
    title, body = split_title(text)
    if not title:
        out.warnings.append(ParseWarning(line=draft.line, reason=f"第 {draft.number} 项没有标题"))
        return
    if not units.lead:
        out.warnings.append(
            ParseWarning(line=draft.line, reason=f"任务 {draft.number} 未写明牵头单位，需指定")
        )
    deadline, milestones, criteria, schedule_warnings = prose_schedule(
        text, year=year, number=draft.number, line=draft.line
    )
    out.warnings.extend(schedule_warnings)
    out.items.append(
        ParsedItem(
            number=draft.number,
            section=draft.section,
            group=draft.group,
            title=title[:2000],
            body=body,
            lead=units.lead,
            support=units.support,
            targets=find_targets(text),
            line=draft.line,
            deadline=deadline,
            milestones=milestones,
            criteria=criteria,
        )
    )


def _phase_of(text: str, year: int, out: Structure) -> ParsedPhase | None:
    """A phase heading, unless the line names responsible units: a numbered task with a
    deadline (`2.推进学会改革（10月底前完成）（牵头部室：学会部）`) is an item, not a phase."""
    _, units = take_trailing_units(text)
    if units.lead or units.support:
        return None
    heading = split_title(text)[0] if len(text) > 60 else text
    previous = out.phases[-1].end_date if out.phases else None
    phase = read_phase(heading[:80], year=year, previous_end=previous)
    if phase is not None and any(p.key == phase.key for p in out.phases):
        return None
    return phase


def first_marker_index(paragraphs: list[Paragraph]) -> int | None:
    """Index of the first numbered paragraph (section or item), or None."""
    return next((i for i, para in enumerate(paragraphs) if _marker(para.text)), None)


def read_structure(paragraphs: list[Paragraph], *, year: int) -> Structure:
    """Read sections, groups, items and phases from cleaned paragraphs (pure, linear time).

    Raises `InputError` past `MAX_ITEMS` items.
    """
    out = Structure()
    section_numbers: set[str] = set()
    item_style: str | None = None
    section: str | None = None
    group: str | None = None
    group_counts: dict[int, int] = {}
    draft: _Draft | None = None
    last_digit = 0

    def close() -> None:
        nonlocal draft
        if draft is not None:
            before = len(out.items)
            _finish(draft, out, year)
            if len(out.items) > before and draft.group is not None:
                group_counts[len(out.groups) - 1] += 1
            draft = None

    for index, para in enumerate(paragraphs):
        text = para.text
        marker = _marker(text)
        if marker is not None and marker[0] == "digit":
            number = int(marker[1])
            if marker[2][:1].isdigit() and number not in {last_digit + 1, 1}:
                marker = None
            elif marker[2].startswith("%"):
                marker = None
        if marker is None:
            phase = _phase_of(text, year, out) if len(text) < 200 else None
            if phase is not None:
                close()
                out.phases.append(phase)
            elif draft is not None and is_unit_line(text):
                draft.unit_lines.append(text)
            elif len(text) <= 40 and _GROUP_TAIL.search(text) and not _SENTENCE_END.search(text):
                close()
                heading = _GROUP_TAIL.sub("", text).strip()
                out.groups.append(ParsedGroup(heading=heading or text, items=0))
                group_counts[len(out.groups) - 1] = 0
                group = out.groups[-1].heading
            elif _ENUMERATED.match(text) or draft is None:
                close()
                group = None
            elif len(draft.parts) == 1 and not draft.parts[0].strip():
                draft.parts = [text]
            else:
                draft.parts.append(text)
            continue
        style, number_text, rest = marker
        if style == "section":
            close()
            title, _ = _section_title(rest)
            section = number_text
            group = None
            if section in section_numbers:
                out.warnings.append(ParseWarning(line=para.line, reason=f"章节 {section} 重复"))
                section = f"{number_text}#{para.line}"
            section_numbers.add(section)
            if len(out.sections) >= MAX_ITEMS:
                raise InputError(f"章节超过 {MAX_ITEMS} 个（第{para.line}行起），超出上限")
            out.sections.append(ParsedSection(number=section, title=title[:2000]))
            continue
        if style == "digit":
            last_digit = int(number_text)
        phase = _phase_of(rest, year, out)
        if phase is not None:
            close()
            out.phases.append(phase)
            continue
        next_marker = _marker(paragraphs[index + 1].text) if index + 1 < len(paragraphs) else None
        heading_only = len(rest) <= 40 and not _SENTENCE_END.search(rest)
        deeper_next = next_marker is not None and _DEPTH[next_marker[0]] > _DEPTH[style]
        if item_style is None and heading_only and deeper_next:
            close()
            continue
        if item_style is None:
            item_style = style
        if _DEPTH[style] > _DEPTH[item_style] and draft is not None:
            draft.parts.append(text)
            continue
        close()
        if _DEPTH[style] < _DEPTH[item_style] and deeper_next:
            continue
        draft = _Draft(
            number=number_text, section=section, group=group, line=para.line, parts=[rest]
        )
    close()
    out.groups = [
        ParsedGroup(heading=g.heading, items=group_counts.get(i, 0))
        for i, g in enumerate(out.groups)
        if group_counts.get(i, 0) > 0
    ]
    return out


def promote_sections(paragraphs: list[Paragraph], structure: Structure) -> None:
    """For a document numbered only by sections, make each section an item of its own."""
    known = {section.number for section in structure.sections}
    for para in paragraphs:
        marker = _marker(para.text)
        if marker is None or marker[0] != "section":
            continue
        text, units = take_trailing_units(marker[2])
        title, body = split_title(text)
        if not title:
            continue
        structure.items.append(
            ParsedItem(
                number=marker[1],
                section=marker[1] if marker[1] in known else None,
                title=title[:2000],
                body=body,
                lead=units.lead,
                support=units.support,
                targets=find_targets(text),
                line=para.line,
            )
        )
    structure.warnings.append(
        ParseWarning(line=0, reason="文档只有“一、二、……”编号，已把每一部分作为一项任务")
    )
