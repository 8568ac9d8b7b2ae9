"""Resolve unit names as written to canonical departments (pure; no database).

Order: exact name or alias; the simplified form of either (via zhconv); then the name with a
leading `市` / `机关` / `本级` stripped. Unresolved names get the closest known names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import zhconv

from models.script import load_dictionary

_PREFIXES = ("市", "机关", "本级", "本会", "本")


@lru_cache(maxsize=65536)
def simplified(name: str) -> str:
    """`name` in simplified script with spaces removed (used as the matching key)."""
    load_dictionary()
    return str(zhconv.convert(name.strip(), "zh-cn")).replace(" ", "").replace("\u3000", "")


def _stripped(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix) + 1:
            return key[len(prefix) :]
    return key


@dataclass(frozen=True)
class Resolution:
    """One unit as written: the department it names (or None) and, if none, suggestions."""

    written: str
    department: str | None
    how: str
    suggestions: tuple[str, ...] = ()


@dataclass
class DepartmentMatcher:
    """Matcher over a directory given as (canonical name, aliases) pairs."""

    exact: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    short: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, entries: Iterable[tuple[str, Iterable[str]]]) -> DepartmentMatcher:
        """Index every name and alias exactly, simplified, and with prefixes stripped."""
        matcher = cls()
        for name, aliases in entries:
            for written in (name, *aliases):
                matcher.exact.setdefault(written, name)
                key = simplified(written)
                matcher.keys.setdefault(key, name)
                matcher.short.setdefault(_stripped(key), name)
        return matcher

    def resolve(self, written: str) -> Resolution:
        """Resolve one unit name; `how` is exact, alias, simplified, prefix or unresolved."""
        found = self.exact.get(written)
        if found is not None:
            return Resolution(written, found, "exact" if found == written else "alias")
        key = simplified(written)
        found = self.keys.get(key)
        if found is not None:
            return Resolution(written, found, "simplified")
        found = self.short.get(_stripped(key)) or self.keys.get(_stripped(key))
        if found is not None:
            return Resolution(written, found, "prefix")
        return Resolution(written, None, "unresolved", self.suggest(written))

    def suggest(self, written: str, *, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` canonical names closest to `written` (difflib ratio on simplified)."""
        key = _stripped(simplified(written))
        close = difflib.get_close_matches(key, list(self.keys), n=limit * 3, cutoff=0.4)
        names = dict.fromkeys(self.keys[match] for match in close)
        return tuple(list(names)[:limit])

    def resolve_all(self, names: Iterable[str]) -> list[Resolution]:
        """Resolve every name, in order."""
        return [self.resolve(name) for name in names]
