"""The calendar file a supervisor imports, and how imported years change the work calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.calendar import CalendarSource, CalendarYear, DayKind, WorkCalendar
from models.calendar_change import OpenCheckin, checkin_moves
from models.calendar_file import CalendarFileError, parse_calendar_file, read_calendar_file

ROOT = Path(__file__).resolve().parents[2]
D = date

GOOD = """\
year: 2027
holidays:
  - name: 春节
    from: 2027-02-06
    to: 2027-02-12
  - name: 国庆节
    dates: [2027-10-01, 2027-10-04]
workdays:
  - name: 春节调休
    dates: [2027-02-14]
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar_file(text, path="cal.yaml")
    return str(caught.value).splitlines()


def test_good_file_lists_every_day() -> None:
    parsed = parse_calendar_file(GOOD, path="cal.yaml")
    assert parsed.year == 2027
    assert parsed.holidays is not None and len(parsed.holidays) == 9
    assert parsed.holidays[D(2027, 2, 9)] == "春节"
    assert parsed.workdays == {D(2027, 2, 14): "春节调休"}
    assert parsed.closures is None
    assert parsed.national


def test_date_in_wrong_year_names_file_line_and_fix() -> None:
    lines = _problems(GOOD.replace("2027-10-04", "2026-10-04"))
    assert lines == [
        "cal.yaml:7: 日期 2026-10-04 不在 2027 年；请改为 2027 年内的日期，或写入 2026 年的日历文件"
    ]


def test_day_both_holiday_and_workday() -> None:
    lines = _problems(GOOD.replace("dates: [2027-02-14]", "dates: [2027-02-08]"))
    assert len(lines) == 1
    assert lines[0].startswith("cal.yaml:10: 2027-02-08 既列为法定节假日（第4行）又列为调休上班")
    assert "请只保留一处" in lines[0]


def test_unknown_keys_each_get_one_line() -> None:
    text = GOOD.replace("year: 2027", "year: 2027\nholiday: []").replace(
        "    to: 2027-02-12", "    to: 2027-02-12\n    until: 2027-02-13"
    )
    lines = _problems(text)
    assert len(lines) == 2
    assert lines[0].startswith("cal.yaml:2: 未知的键“holiday”")
    assert lines[1].startswith("cal.yaml:7: 未知的键“until”")
    assert all("请删除或改正" in line for line in lines)


def test_bad_dates_and_missing_year() -> None:
    assert _problems("holidays:\n  - name: x\n    dates: [2027-02-30]\n") == [
        "cal.yaml:1: 缺少 year（如：year: 2027）；请补上",
        "cal.yaml:3: 日期格式应为 YYYY-MM-DD，收到：2027-02-30；请改正",
    ]
    assert _problems("year: 2027\nholidays: [\n")[0].startswith("cal.yaml:")


def test_shipped_example_is_refused_as_placeholder_until_edited(tmp_path: Path) -> None:
    example = ROOT / "examples" / "calendar-2027.example.yaml"
    with pytest.raises(CalendarFileError) as caught:
        read_calendar_file(example)
    assert "占位" in str(caught.value) and "placeholder" in str(caught.value)
    edited = tmp_path / "calendar-2027.yaml"
    edited.write_text(
        "\n".join(
            line
            for line in example.read_text(encoding="utf-8").splitlines()
            if not line.startswith("placeholder:")
        ),
        encoding="utf-8",
    )
    parsed = read_calendar_file(edited)
    assert parsed.year == 2027 and parsed.closures == {}


def test_imported_year_replaces_library_and_closures_add_on_top() -> None:
    year = CalendarYear(
        year=2027,
        holidays={D(2027, 2, 8): "春节"},
        workdays={D(2027, 2, 14): "春节调休"},
        closures={D(2027, 3, 1): "单位年休"},
    )
    only_closure = CalendarYear(year=2021, closures={D(2021, 10, 11): "单位年休"})
    cal = WorkCalendar(years={2027: year, 2021: only_closure})
    assert cal.source(2027) is CalendarSource.imported
    assert cal.covers(2027) and not cal.warnings
    assert not cal.is_workday(D(2027, 2, 8))  # Monday, imported holiday
    assert cal.is_workday(D(2027, 2, 14))  # Sunday, 调休
    assert not cal.is_workday(D(2027, 3, 1))  # own closure
    assert cal.is_workday(D(2027, 2, 9))  # not listed: plain Tuesday
    # 2021: the library's 国庆 and 调休 still hold, the closure is added.
    assert cal.source(2021) is CalendarSource.library
    assert not cal.is_workday(D(2021, 10, 4))
    assert cal.is_workday(D(2021, 10, 9))
    assert not cal.is_workday(D(2021, 10, 11))
    kinds = [(d.day, d.kind) for d in cal.special_days(2027)]
    assert kinds == [
        (D(2027, 2, 8), DayKind.holiday),
        (D(2027, 2, 14), DayKind.workday),
        (D(2027, 3, 1), DayKind.closure),
    ]
    library_days = {d.day: d for d in cal.special_days(2021)}
    assert library_days[D(2021, 10, 1)].name == "国庆节"
    assert library_days[D(2021, 10, 9)].kind is DayKind.workday


def test_missing_year_warns_once_with_the_fix() -> None:
    heard: list[str] = []
    cal = WorkCalendar(on_warning=heard.append)
    assert cal.source(2099) is CalendarSource.weekends_only
    for day in (D(2099, 1, 5), D(2099, 6, 1), D(2099, 10, 1)):
        cal.is_workday(day)
    assert len(heard) == 1 and heard == cal.warnings
    assert "duban calendar import" in heard[0]


def test_checkin_moves_follow_the_new_schedule_and_extended_dates_stay_on_workdays() -> None:
    cal = WorkCalendar(years={2027: CalendarYear(year=2027, holidays={D(2027, 3, 31): "x"})})
    checkins = [
        OpenCheckin(1, 7, "lead", "implement", 1, D(2027, 3, 31), D(2027, 3, 31)),
        OpenCheckin(2, 7, "lead", "implement", 2, D(2027, 4, 30), D(2027, 4, 30)),
        OpenCheckin(3, 7, "lead", "implement", 3, D(2027, 3, 31), D(2027, 3, 15)),
    ]
    scheduled = {
        7: {("lead", "implement", 1): D(2027, 3, 30), ("lead", "implement", 2): D(2027, 4, 30)}
    }
    moves = checkin_moves(checkins, scheduled, cal)
    assert [(m.checkin_id, m.old, m.new, m.extended) for m in moves] == [
        (1, D(2027, 3, 31), D(2027, 3, 30), False),
        (3, D(2027, 3, 31), D(2027, 4, 1), True),
    ]
