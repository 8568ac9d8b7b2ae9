"""Responsible-unit clauses -> lead and support unit names, as written.

Recognised: `（牵头部室：…）`, `（牵头单位：…；配合单位：…）`, `（牵头部门：…）`,
`〔责任单位：…〕` at the end of an item, and lines of their own (`牵头单位:…`).
`责任单位` is lead when alone and support next to a 牵头 label. Traditional script works too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LEAD = r"[牵牽][头頭](?:[单單]位|部[门門室]|[处處]室|领导|領導)?"
_SUPPORT = r"(?:配合|[协協][办辦]|参与|參與)(?:[单單]位|部[门門室]|[处處]室)?"
_RESP = r"(?:[责責]任|[负負][责責]|主[责責]|承[办辦])(?:[单單]位|部[门門室]|[处處]室|领导|領導)"
_LEAD_RE = re.compile(_LEAD)
_SUPPORT_RE = re.compile(_SUPPORT)
_LABEL = re.compile(rf"(?P<label>{_LEAD}|{_SUPPORT}|{_RESP})\s*[:：]")
_OPEN, _CLOSE = "(（〔【[［", ")）〕】]］"
_LABEL_AT = re.compile(rf"(?<!\s)\s*+(?:{_LEAD}|{_SUPPORT}|{_RESP})\s*[:：]")
_BARE_LABEL_AT = re.compile(rf"(?<!\s)\s*+(?:{_LEAD}|{_RESP})\s*[:：]")
_OWN_LINE = re.compile(rf"^\s*(?:{_LEAD}|{_SUPPORT}|{_RESP})\s*[:：]")
_QUALIFIERS = (
    "按照职责分工负责", "按职责分工负责", "按職責分工負責", "按照职责分工", "按职责分工",
    "按職責分工", "分别负责", "分別負責", "按职责负责", "各负其责", "共同负责", "负责落实",
    "負責落實", "等单位", "等部门", "等",
)  # fmt: skip
_SEPARATORS = "、，,；;/"
_COLLECTIVE_TAIL = re.compile(r"^(?:县级市|縣級市|县|縣|区|區|市|县区|縣區|乡镇|鄉鎮|街道)")
_COLLECTIVE_HEAD = re.compile(r"^各.{1,2}$")


@dataclass
class Units:
    """Lead and support unit names in order of appearance, without duplicates."""

    lead: list[str] = field(default_factory=list)
    support: list[str] = field(default_factory=list)
    _seen: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)

    def add(self, role: str, names: list[str]) -> None:
        """Append `names` to `lead` or `support`, skipping ones already present (linear)."""
        target = self.lead if role == "lead" else self.support
        seen = self._seen.get(role)
        if seen is None:
            seen = self._seen[role] = set(target)
        for name in names:
            if name and name not in seen:
                seen.add(name)
                target.append(name)

    def __bool__(self) -> bool:
        return bool(self.lead or self.support)


def _strip_qualifiers(piece: str) -> str:
    """Drop trailing qualifiers (`按职责分工负责`, `等`), repeatedly; linear in `piece`."""
    end = len(piece)
    while True:
        while end and piece[end - 1].isspace():
            end -= 1
        qualifier = next((q for q in _QUALIFIERS if piece.endswith(q, 0, end)), None)
        if qualifier is None:
            return piece[:end].strip()
        end -= len(qualifier)


def split_units(text: str) -> list[str]:
    """Split a unit list on `、，,；;/` outside parentheses; keep collective names whole.

    `各区、县级市` stays one name; qualifiers such as `按职责分工负责` are dropped.
    """
    pieces: list[str] = []
    depth = 0
    start = 0
    for index, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch in _SEPARATORS and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    names: list[str] = []
    for raw in pieces:
        piece = raw.strip(" 。.:：")
        if names and _COLLECTIVE_HEAD.match(names[-1]) and _COLLECTIVE_TAIL.match(piece):
            names[-1] = f"{names[-1]}、{piece}"
            continue
        piece = _strip_qualifiers(piece)
        if piece:
            names.append(piece)
    return names


def _roles(inner: str) -> list[tuple[str, str]]:
    labels = list(_LABEL.finditer(inner))
    has_lead = any(_LEAD_RE.match(m.group("label")) for m in labels)
    result: list[tuple[str, str]] = []
    for index, match in enumerate(labels):
        stop = labels[index + 1].start() if index + 1 < len(labels) else len(inner)
        value = inner[match.end() : stop].strip().strip("；;,，。 ")
        label = match.group("label")
        if _LEAD_RE.match(label):
            role = "lead"
        elif _SUPPORT_RE.match(label):
            role = "support"
        else:
            role = "support" if has_lead else "lead"
        result.append((role, value))
    return result


def parse_unit_clause(clause: str) -> Units:
    """Read `牵头单位：A、B；配合单位：C` (no brackets) into lead and support names."""
    units = Units()
    for role, value in _roles(clause):
        units.add(role, split_units(value))
    return units


def _bracketed_tail(text: str) -> tuple[int, str] | None:
    """(start, inner) of a bracketed unit clause closing `text`, found from the end."""
    end = len(text)
    if end == 0 or text[end - 1] not in _CLOSE:
        return None
    depth = 0
    for index in range(end - 1, -1, -1):
        ch = text[index]
        if ch in _CLOSE:
            depth += 1
        elif ch in _OPEN:
            depth -= 1
            if depth == 0:
                inner = text[index + 1 : end - 1]
                if _LABEL_AT.match(inner):
                    return index, inner.strip()
                return None
    return None


def _bare_tail(text: str) -> tuple[int, str] | None:
    """(start, inner) of an unbracketed clause after the last full stop (`…。牵头单位：A`)."""
    stop = max(text.rfind(mark) for mark in "。！？!?")
    candidates = [stop + 1] if stop == -1 or text[stop] == "。" else []
    tail = text[stop + 1 :]
    candidates += [stop + 2 + i for i, ch in enumerate(tail) if ch in "；;"]
    for start in candidates:
        start = max(start, 0)
        if _BARE_LABEL_AT.match(text, start):
            return start, text[start:].strip()
    return None


def take_trailing_units(text: str) -> tuple[str, Units]:
    """Split a unit clause off the end of an item's text: (text without it, units).

    The clause is bracketed, or follows a full stop (`…。牵头单位：A；配合单位：B。`).
    Found by scanning back from the end, so linear in the length of `text`.
    """
    body = text.rstrip()
    if body.endswith(("。", ".", ";", "；")):
        body = body[:-1].rstrip()
    found = _bracketed_tail(body)
    if found is None:
        bare = text.rstrip()
        if bare.endswith(("。", ".")):
            bare = bare[:-1].rstrip()
        found = _bare_tail(bare)
    if found is None:
        return text, Units()
    start, inner = found
    return text[:start].rstrip(), parse_unit_clause(inner)


def is_unit_line(text: str) -> bool:
    """True for a line that is only a unit clause (`牵头单位：…`), not an item body."""
    return bool(_OWN_LINE.match(text)) and len(text) < 300
