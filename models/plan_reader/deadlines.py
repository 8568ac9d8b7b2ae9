"""An item's own time limits: 完成时限 phrases and 时序进度 / 任务分解 milestone lists.

`read_deadline("2023年6月底前")` is a date (30 June 2023); `年内完成` the year's last day;
`每季度末` a recurring rule; `长期坚持` / `持续推进` ongoing; anything else None, so the caller
warns and falls back to the policy instead of guessing. `read_milestones` splits
`3月：召集研讨 4月：发布办法 4月—12月：推进落实` or `一季度…；二季度…` into periods with their
expected output. Pure and linear in the length of the text: every pattern is anchored on a
literal (月, 季度, 半年) and has no nested repetition.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from models.plan_reader.phases import point_dates
from models.plan_schema import ParsedDeadline, ParsedMilestone, ParseWarning


class DeadlineKind(StrEnum):
    """What a 完成时限 says: one date, a recurring rule, or no end (ongoing)."""

    DATE = "date"
    RECURRING = "recurring"
    ONGOING = "ongoing"


class Recurrence(StrEnum):
    """The period of a recurring 完成时限 (`每月`, `每季度末`, `每半年`, `每年`)."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"
    YEARLY = "yearly"


@dataclass(frozen=True)
class Deadline:
    """A read 完成时限: its kind, the date (kind DATE) or rule (RECURRING), and the text."""

    kind: DeadlineKind
    text: str
    due: date | None = None
    rule: Recurrence | None = None


@dataclass(frozen=True)
class Milestone:
    """One period of a milestone list and what is due in it, inclusive dates."""

    start: date
    end: date
    output: str
    text: str


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_ONGOING = (
    "长期坚持",
    "長期堅持",
    "持续推进",
    "持續推進",
    "长期",
    "長期",
    "持续",
    "持續",
    "常态化",
    "常態化",
)
_RECURRING: tuple[tuple[str, Recurrence], ...] = (
    ("每月", Recurrence.MONTHLY),
    ("按月", Recurrence.MONTHLY),
    ("每季度", Recurrence.QUARTERLY),
    ("每季", Recurrence.QUARTERLY),
    ("按季度", Recurrence.QUARTERLY),
    ("每半年", Recurrence.HALF_YEARLY),
    ("每年", Recurrence.YEARLY),
)
_MONTH = r"(?:\d{4}年)?\d{1,2}月(?:上旬|中旬|下旬|初|中|底|末|份|\d{1,2}[日号號])?"
_DATE_POINT = re.compile(rf"{_MONTH}")
_QUARTER = re.compile(r"第?([一二三四1-4])季度")
_HALF = re.compile(r"(上|下)半年")
_YEAR_END = re.compile(r"年底|年末|年内|年內|全年|本年度|年度内|年度內")
_WRITTEN_YEAR = re.compile(r"(\d{4})\s*年")
_YEAR_RANGE = re.compile(r"(\d{4})\s*年?\s*[—–\-－~～至到]{1,2}\s*(\d{4})\s*年")
_MID_YEAR = re.compile(r"年中")
_FROM_YEAR = re.compile(r"\d{4}\s*年(?:起|开始|開始)")
_CN_VALUE = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_CN_VALUE.update({"七": 7, "八": 8, "九": 9})
_CN_NUMBER = re.compile(r"([〇零一二两三四五六七八九十]{1,4})(年|月|日|号|號)")
_FULL_DATE = re.compile(r"(\d{4})[-./年](\d{1,2})[-./月](\d{1,2})日?")

_DASH = r"\s*(?:[—–\-－~～至到]{1,2})\s*"
_PERIOD = (
    rf"(?P<month>(?:\d{{1,2}}{_DASH}(?=\d{{1,2}}月))?{_MONTH}(?:{_DASH}{_MONTH})?(?:底前|以前|前)?)"
    r"|(?P<quarter>第?[一二三四1-4]季度(?:末|底)?(?:前)?)"
    r"|(?P<half>[上下]半年)"
    r"|(?P<yearend>年底前|年内|年內|全年)"
)
_BARE_START = re.compile(r"(\d{1,2})\s*[—–\-－~～至到]")
_MILESTONE = re.compile(rf"(?:^|(?<=[\s；;。，,、）)]))(?:{_PERIOD})\s*[：:]")
_MILESTONE_COMMA = re.compile(rf"(?:^|(?<=[；;。\n]))\s*(?:{_PERIOD})\s*[，,]")


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _day_after(day: date, year: int) -> date:
    return date.fromordinal(day.toordinal() + 1) if day < date(year, 12, 31) else day


def _quarter_span(quarter: int, year: int) -> tuple[date, date]:
    first = 3 * (quarter - 1) + 1
    return date(year, first, 1), _month_end(year, first + 2)


def arabic_dates(text: str) -> str:
    """`二〇二三年六月三十日` as `2023年6月30日`: Chinese numerals before 年, 月, 日 and 号."""
    return _CN_NUMBER.sub(_to_arabic, text)


def _to_arabic(match: re.Match[str]) -> str:
    written, unit = match.group(1), match.group(2)
    if unit == "年":
        if len(written) != 4 or "十" in written:
            return match.group(0)
        return "".join(str(_CN_VALUE[ch]) for ch in written) + unit
    tens, _, ones = written.partition("十")
    if "十" not in written:
        value = _CN_VALUE[written] if len(written) == 1 else 0
    else:
        value = (_CN_VALUE.get(tens, 0) if tens else 1) * 10 + (_CN_VALUE.get(ones, 0))
    return f"{value}{unit}" if value else match.group(0)


def _date_points(phrase: str, year: int) -> list[date]:
    """Every date a phrase names (last day of each month, quarter, half, year range)."""
    points = [
        date(int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in _FULL_DATE.finditer(phrase)
    ]
    points += [point_dates(m.group(0), year=year)[1] for m in _DATE_POINT.finditer(phrase)]
    written_year = _WRITTEN_YEAR.search(phrase)
    in_year = int(written_year.group(1)) if written_year else year
    points += [_quarter_span(_CN_DIGITS[m.group(1)], in_year)[1] for m in _QUARTER.finditer(phrase)]
    points += [_month_end(in_year, 6 if m.group(1) == "上" else 12) for m in _HALF.finditer(phrase)]
    points += [date(int(m.group(2)), 12, 31) for m in _YEAR_RANGE.finditer(phrase)]
    if _MID_YEAR.search(phrase):
        points.append(date(in_year, 6, 30))
    return points


def read_deadline(text: str, *, year: int) -> Deadline | None:
    """The 完成时限 in `text` for a plan of `year`, else None (unreadable: the caller warns).

    The last date named is the deadline (`9月—10月` and `6月底前、12月底前` are due at the
    end); a date wins over "ongoing" (`6月底前完成并长期坚持` is due 30 June); a recurring
    rule wins over the year's end alone (`每季度末` is quarterly, not 31 December); a year
    written in the phrase is kept (`2025年底前`). A date that does not exist makes the
    whole phrase unreadable rather than half-read.
    """
    phrase = arabic_dates(text.strip())
    if not phrase:
        return None
    written_year = _WRITTEN_YEAR.search(phrase)
    in_year = int(written_year.group(1)) if written_year else year
    try:
        points = _date_points(phrase, year)
    except ValueError:
        return None
    if points:
        if _YEAR_END.search(phrase):
            points.append(date(in_year, 12, 31))
        return Deadline(DeadlineKind.DATE, text.strip(), due=max(points))
    for word, rule in _RECURRING:
        if word in phrase:
            return Deadline(DeadlineKind.RECURRING, text.strip(), rule=rule)
    if _YEAR_END.search(phrase):
        return Deadline(DeadlineKind.DATE, text.strip(), due=date(in_year, 12, 31))
    if any(word in phrase for word in _ONGOING) or _FROM_YEAR.search(phrase):
        return Deadline(DeadlineKind.ONGOING, text.strip())
    return None


def _period_span(match: re.Match[str], year: int) -> tuple[date, date]:
    if match.group("month"):
        written = match.group("month")
        points = _DATE_POINT.findall(written)
        bare = _BARE_START.match(written)
        start = point_dates(f"{bare.group(1)}月" if bare else points[0], year=year)[0]
        end = point_dates(points[-1], year=year)[1]
        if end < start and "年" not in points[-1]:
            end = point_dates(points[-1], year=year + 1)[1]
        return start, end
    if match.group("quarter"):
        digit = next(ch for ch in match.group("quarter") if ch in _CN_DIGITS)
        return _quarter_span(_CN_DIGITS[digit], year)
    if match.group("half"):
        first = 1 if match.group("half").startswith("上") else 7
        return date(year, first, 1), _month_end(year, first + 5)
    return date(year, 1, 1), date(year, 12, 31)


def read_milestones(text: str, *, year: int) -> tuple[list[Milestone], list[str]]:
    """The milestones in `text` and the problems found: periods followed by `：`, or opening
    a clause and followed by `，` (`3月底前，完成调研；`); Chinese numerals are read.

    A period whose date does not exist is skipped with a problem; a period written as a
    deadline (`6月底前`) starts the day after the previous milestone ends (or on 1 January);
    periods that start before the one written before them are kept but reported.
    """
    text = arabic_dates(text)
    matches = sorted(
        [*_MILESTONE.finditer(text), *_MILESTONE_COMMA.finditer(text)], key=lambda m: m.start()
    )
    matches = [m for i, m in enumerate(matches) if i == 0 or m.start() >= matches[i - 1].end()]
    milestones: list[Milestone] = []
    problems: list[str] = []
    for index, match in enumerate(matches):
        stop = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        output = text[match.end() : stop].strip(" \t\r\n；;。，,、")
        period = match.group(0).strip().rstrip("：:，, ")
        try:
            start, end = _period_span(match, year)
        except ValueError:
            problems.append(f"无法识别的时间：{period}")
            continue
        if period.endswith("前") and "—" not in period:
            start = _day_after(milestones[-1].end, year) if milestones else date(year, 1, 1)
        if milestones and start < milestones[-1].start:
            problems.append(f"时序进度顺序颠倒：{period} 早于 {milestones[-1].text}")
        milestones.append(Milestone(start=start, end=end, output=output, text=period))
    return milestones, problems


_LABEL = re.compile(
    r"(?P<label>完成时限|完成時限|完成时间|完成時間|时间节点|時間節點|时限要求|時限要求|办结时限|辦結時限"
    r"|时序进度|時序進度|进度安排|進度安排|时间安排|時間安排|任务分解|任務分解|推进步骤|推進步驟"
    r"|考核要点|考核要點|考核标准|考核標準|验收标准|驗收標準|牵头单位|牽頭單位|责任单位|責任單位"
    r"|配合单位|配合單位)\s*[：:]"
)
_FIELD_OF = {
    "完成": "deadline",
    "时间节": "deadline",
    "時間節": "deadline",
    "时限": "deadline",
    "時限": "deadline",
    "办结": "deadline",
    "辦結": "deadline",
    "时序": "milestones",
    "時序": "milestones",
    "进度": "milestones",
    "進度": "milestones",
    "时间安": "milestones",
    "時間安": "milestones",
    "任务": "milestones",
    "任務": "milestones",
    "推进": "milestones",
    "推進": "milestones",
    "考核": "criteria",
    "验收": "criteria",
    "驗收": "criteria",
}
_TRAILING_DEADLINE = re.compile(
    r"[（(]\s*((?:\d{4}年)?(?:\d{1,2}月(?:上旬|中旬|下旬|初|底|末|\d{1,2}[日号號])?|年底|年内|年內)"
    r"前?完成)\s*[）)]\s*[。；;]?\s*$"
)


def labelled_fields(text: str) -> dict[str, str]:
    """The 完成时限, 时序进度 and 考核要点 an item's prose labels (`完成时限：6月底前`).

    Keys `deadline`, `milestones`, `criteria`; a field runs to the next label or, for a
    deadline, to the end of its clause. An unlabelled trailing `（6月底前完成）` is a deadline.
    One pass over the text: the labels are found once and the fields are the spans between.
    """
    found: dict[str, str] = {}
    labels = list(_LABEL.finditer(text))
    for index, match in enumerate(labels):
        label = match.group("label")
        field = next((f for prefix, f in _FIELD_OF.items() if label.startswith(prefix)), None)
        stop = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        value = text[match.end() : stop]
        if field == "deadline":
            value = re.split(r"[；;。）)\n]", value, maxsplit=1)[0]
        value = value.strip(" \t\r\n；;。，,、（()）")
        if field is not None and value and field not in found:
            found[field] = value
    if "deadline" not in found:
        trailing = _TRAILING_DEADLINE.search(text[-60:])
        if trailing is not None:
            found["deadline"] = trailing.group(1)
    return found


def deadline_problem(deadline: Deadline, *, year: int, starts: date | None = None) -> str | None:
    """Why a read date deadline cannot be used for a plan of `year` (None: it can).

    A deadline before the plan starts or after its year falls back to the policy.
    """
    if deadline.kind is not DeadlineKind.DATE or deadline.due is None:
        return None
    if deadline.due.year != year:
        return f"完成时限 {deadline.text} 不在计划年度 {year} 年内"
    if starts is not None and deadline.due < starts:
        return f"完成时限 {deadline.text} 早于计划开始日期"
    return None


def item_schedule(
    *, deadline_text: str, milestone_text: str, year: int | None, number: str, line: int
) -> tuple[ParsedDeadline | None, list[ParsedMilestone], list[ParseWarning]]:
    """An item's 完成时限 and 时序进度 read from their cells, and the warnings they raise.

    An unreadable deadline, one outside the plan's year, or a milestone that cannot be read
    is a warning on `line`; the item then falls back to the policy for it.
    """
    warnings: list[ParseWarning] = []
    if year is None:
        return None, [], warnings
    deadline: ParsedDeadline | None = None
    if deadline_text:
        read = read_deadline(deadline_text, year=year)
        problem = None if read is None else deadline_problem(read, year=year)
        if read is None:
            problem = f"无法识别的完成时限：{deadline_text[:40]}"
        if problem is not None:
            warnings.append(
                ParseWarning(line=line, reason=f"任务 {number} {problem}，按督办策略安排")
            )
        elif read is not None:
            deadline = ParsedDeadline(
                kind=read.kind.value,
                text=read.text[:200],
                due=read.due,
                rule=read.rule.value if read.rule else None,
            )
    found, problems = read_milestones(milestone_text, year=year) if milestone_text else ([], [])
    milestones = [
        ParsedMilestone(
            text=m.text[:100], start=m.start, end=m.end, output=m.output[:2000], line=line
        )
        for m in found
        if m.end.year == year
    ]
    if len(milestones) < len(found):
        problems.append(f"时序进度超出计划年度 {year} 年")
    warnings.extend(
        ParseWarning(line=line, reason=f"任务 {number} {problem}") for problem in problems
    )
    return deadline, milestones, warnings


def prose_schedule(
    text: str, *, year: int | None, number: str, line: int
) -> tuple[ParsedDeadline | None, list[ParsedMilestone], str, list[ParseWarning]]:
    """`item_schedule` for an item written as prose: its labelled fields, and its 考核要点."""
    fields = labelled_fields(text)
    deadline, milestones, warnings = item_schedule(
        deadline_text=fields.get("deadline", ""),
        milestone_text=fields.get("milestones", ""),
        year=year,
        number=number,
        line=line,
    )
    return deadline, milestones, fields.get("criteria", "")[:2000], warnings
