"""The work-calendar file (YAML) a supervisor writes from the 国务院办公厅 notice.

```yaml
year: 2027
holidays:            # 放假日期（含放假期间的周末）
  - name: 春节
    from: 2027-02-06
    to: 2027-02-12
workdays:            # 调休上班日
  - name: 春节调休
    dates: [2027-02-14]
closures:            # 本单位自定休息日（可选）
  - name: 单位年休
    dates: [2027-08-02]
```

`parse_calendar_file` checks the whole file and raises `CalendarFileError` listing every
problem (one `file:line: reason` line each) or returns a `CalendarFile`; it never returns a
partial result. A file marked `placeholder: true` (the shipped example) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from models.calendar import CalendarYear, DayKind
from models.errors import DubanError, InputError

__all__ = ["CalendarFile", "CalendarFileError", "parse_calendar_file", "read_calendar_file"]

_TOP_KEYS = ("year", "holidays", "workdays", "closures", "placeholder", "note")
_ENTRY_KEYS = ("name", "dates", "from", "to")
_LIST_KINDS = {
    "holidays": DayKind.holiday,
    "workdays": DayKind.workday,
    "closures": DayKind.closure,
}
_MAX_RANGE_DAYS = 31


class CalendarFileError(DubanError):
    """Every problem found in a calendar file, one `file:line: reason` line each."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        super().__init__("\n".join(problem.render() for problem in problems))


@dataclass(frozen=True)
class CalendarFile:
    """A checked calendar file: the year and the lists it gives (None when a list is absent).

    Importing replaces the stored national days of the year when `holidays` or `workdays` is
    given, and its stored closures when `closures` is given.
    """

    year: int
    holidays: dict[date, str] | None
    workdays: dict[date, str] | None
    closures: dict[date, str] | None

    @property
    def national(self) -> bool:
        """True if the file gives the year's public holidays or 调休 workdays."""
        return self.holidays is not None or self.workdays is not None

    def days(self, kind: DayKind) -> dict[date, str] | None:
        """The file's list of `kind` (None when absent)."""
        return {
            DayKind.holiday: self.holidays,
            DayKind.workday: self.workdays,
            DayKind.closure: self.closures,
        }[kind]

    def merged_into(self, stored: CalendarYear | None) -> CalendarYear:
        """The year as it will be stored once this file is imported over `stored`."""
        before = stored or CalendarYear(year=self.year)
        national = self.national
        return CalendarYear(
            year=self.year,
            holidays=(self.holidays or {}) if national else dict(before.holidays),
            workdays=(self.workdays or {}) if national else dict(before.workdays),
            closures=dict(before.closures) if self.closures is None else self.closures,
        )


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[InputError] = []

    def problem(self, node: Node | None, reason: str) -> None:
        line = _line(node) if node is not None else 0
        self.problems.append(InputError(reason, path=self.path, line=line))

    def scalar(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(node, f"{what}应为单个值；请改正")
            return None
        return str(node.value).strip()

    def day(self, node: Node, year: int | None) -> date | None:
        text = self.scalar(node, "日期")
        if text is None:
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            self.problem(node, f"日期格式应为 YYYY-MM-DD，收到：{text}；请改正")
            return None
        if year is not None and day.year != year:
            self.problem(
                node,
                f"日期 {day.isoformat()} 不在 {year} 年；请改为 {year} 年内的日期，"
                f"或写入 {day.year} 年的日历文件",
            )
            return None
        return day

    def known(self, node: MappingNode, keys: tuple[str, ...]) -> dict[str, tuple[Node, Node]]:
        """The mapping's entries by key; each unknown key is reported and left out."""
        found: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in keys:
                found[key] = (key_node, value_node)
            else:
                self.problem(key_node, f"未知的键“{key}”（可用：{'、'.join(keys)}）；请删除或改正")
        return found

    def entry(self, node: Node, year: int | None, list_name: str) -> list[tuple[date, str, int]]:
        if not isinstance(node, MappingNode):
            self.problem(node, f"{list_name} 的每一项应写成 name/dates 或 name/from/to；请改正")
            return []
        fields = {key: value for key, (_, value) in self.known(node, _ENTRY_KEYS).items()}
        name = self.scalar(fields["name"], "name") if "name" in fields else ""
        if not name:
            self.problem(node, f"{list_name} 的这一项缺少 name（如：春节）；请补上")
        days: list[tuple[date, str, int]] = []
        if "dates" in fields:
            values = fields["dates"]
            items = values.value if isinstance(values, SequenceNode) else [values]
            for item in items:
                day = self.day(item, year)
                if day is not None:
                    days.append((day, name or "", _line(item)))
        if "from" in fields or "to" in fields:
            if "from" not in fields or "to" not in fields:
                self.problem(node, "from 和 to 须同时给出；请补上")
                return days
            first, last = self.day(fields["from"], year), self.day(fields["to"], year)
            if first is None or last is None:
                return days
            if last < first:
                self.problem(fields["to"], f"to（{last}）早于 from（{first}）；请改正")
                return days
            if (last - first).days >= _MAX_RANGE_DAYS:
                self.problem(fields["to"], f"from 至 to 超过 {_MAX_RANGE_DAYS} 天；请分段填写")
                return days
            day = first
            while day <= last:
                days.append((day, name or "", _line(fields["from"])))
                day += timedelta(days=1)
        if "dates" not in fields and "from" not in fields and "to" not in fields:
            self.problem(node, f"{list_name} 的这一项没有日期（dates 或 from/to）；请补上")
        return days


def parse_calendar_file(text: str, *, path: Path | str) -> CalendarFile:
    """Check a calendar file's text; return it, or raise `CalendarFileError` with every problem.

    Checks: YAML syntax, known keys only, `year`, each date a real date in that year, no day
    both a holiday (or closure) and a workday, and no `placeholder: true`.
    """
    reader = _Reader(str(path))
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise CalendarFileError(
            [InputError("YAML 格式错误；请检查缩进和冒号", path=str(path), line=line)]
        ) from None
    if not isinstance(root, MappingNode):
        raise CalendarFileError(
            [InputError("日历文件应以 year: 开头（见示例文件）", path=str(path), line=1)]
        )
    top = reader.known(root, _TOP_KEYS)
    year: int | None = None
    if "year" not in top:
        reader.problem(root, "缺少 year（如：year: 2027）；请补上")
    else:
        text_year = reader.scalar(top["year"][1], "year") or ""
        if text_year.isdigit() and 2000 <= int(text_year) <= 2100:
            year = int(text_year)
        else:
            reader.problem(top["year"][1], f"year 应为四位年份（如 2027），收到：{text_year}")
    if "placeholder" in top:
        flag = reader.scalar(top["placeholder"][1], "placeholder")
        if flag is not None and flag.lower() in {"true", "yes", "1"}:
            reader.problem(
                top["placeholder"][0],
                "这是示例文件，日期只是占位、不是官方安排；请按国务院办公厅通知填写后删除"
                " placeholder 这一行",
            )
    lists: dict[DayKind, dict[date, str]] = {}
    lines: dict[date, tuple[DayKind, int]] = {}
    for list_name, kind in _LIST_KINDS.items():
        if list_name not in top:
            continue
        key_node, value_node = top[list_name]
        found: dict[date, str] = {}
        if isinstance(value_node, ScalarNode) and value_node.value in {"", "null", "~"}:
            lists[kind] = found
            continue
        if not isinstance(value_node, SequenceNode):
            reader.problem(key_node, f"{list_name} 应为列表（每项以 - 开头）；请改正")
            continue
        for entry_node in value_node.value:
            for day, name, line in reader.entry(entry_node, year, list_name):
                other = lines.get(day)
                if other is not None and other[0] is not kind:
                    if DayKind.workday in (kind, other[0]):
                        reader.problems.append(
                            InputError(
                                f"{day.isoformat()} 既列为{other[0].label}（第{other[1]}行）"
                                f"又列为{kind.label}；请只保留一处",
                                path=str(path),
                                line=line,
                            )
                        )
                        continue
                lines.setdefault(day, (kind, line))
                found[day] = name
        lists[kind] = found
    if reader.problems or year is None:
        raise CalendarFileError(reader.problems)
    if not lists:
        raise CalendarFileError(
            [InputError("文件中没有 holidays、workdays 或 closures；请至少填写一项", path=path)]
        )
    return CalendarFile(
        year=year,
        holidays=lists.get(DayKind.holiday),
        workdays=lists.get(DayKind.workday),
        closures=lists.get(DayKind.closure),
    )


def read_calendar_file(path: Path) -> CalendarFile:
    """Read and check the calendar file at `path` (UTF-8); see `parse_calendar_file`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("找不到日历文件；请检查路径", path=path) from None
    except UnicodeDecodeError:
        raise InputError("日历文件不是 UTF-8 编码；请另存为 UTF-8", path=path) from None
    return parse_calendar_file(text, path=path)
