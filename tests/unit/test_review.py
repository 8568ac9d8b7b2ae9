"""Pure review computations: periods, check-in outcomes, attainment, colours, ranking, wording."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from models.clock import LOCAL_TZ
from models.errors import InputError
from models.review import (
    AssignmentRow,
    CheckinRow,
    DepartmentRow,
    EscalationRow,
    ExtensionRow,
    ItemRow,
    PlanRow,
    ReviewInputs,
    SectionRow,
    StatusChange,
    SubmissionRow,
    TargetRow,
    default_quarter,
    parse_period,
    quarter_period,
)
from models.review_figures import (
    attainment,
    build_review,
    classify,
    colours_at,
    excerpt,
    week_ends,
)
from tasks.reporting import charts
from tasks.reporting.markdown import md_escape, render_markdown
from tasks.reporting.outline import Chart, Heading, Paragraph, Table, build_outline

AS_OF = datetime(2021, 9, 30, 17, 0, tzinfo=LOCAL_TZ)


def local(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2021, month, day, hour, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2021Q1", "2021Q1", date(2021, 1, 1), date(2021, 3, 31)),
        ("2021q3", "2021Q3", date(2021, 7, 1), date(2021, 9, 30)),
        (" 2021 Q4 ", "2021Q4", date(2021, 10, 1), date(2021, 12, 31)),
        ("2021", "2021", date(2021, 1, 1), date(2021, 12, 31)),
    ],
)
def test_parse_period(text: str, label: str, start: date, end: date) -> None:
    period = parse_period(text, plan_year=2021)
    assert (period.label, period.start, period.end) == (label, start, end)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2022Q1", "不在计划年度"),
        ("2020", "不在计划年度"),
        ("2021Q5", "无法识别"),
        ("Q3", "无法识别"),
    ],
)
def test_parse_period_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_period(text, plan_year=2021)


@pytest.mark.parametrize(
    ("as_of", "label"),
    [
        (date(2021, 9, 30), "2021Q3"),
        (date(2021, 10, 3), "2021Q3"),
        (date(2021, 10, 8), "2021Q4"),
        (date(2021, 1, 2), "2021Q1"),
        (date(2022, 1, 5), "2021Q4"),
    ],
)
def test_default_quarter(as_of: date, label: str) -> None:
    assert default_quarter(as_of, plan_year=2021).label == label


def test_default_quarter_before_plan_year_is_an_error() -> None:
    with pytest.raises(InputError, match="早于计划年度"):
        default_quarter(date(2020, 12, 31), plan_year=2021)


def checkin(due: date, submitted: datetime | None, *, dept: int = 1, item: int = 1) -> CheckinRow:
    return CheckinRow(
        id=0, item_id=item, department_id=dept, due_date=due, status="x", submitted_at=submitted
    )


@pytest.mark.parametrize(
    ("due", "submitted", "outcome"),
    [
        (date(2021, 9, 10), local(9, 10, 23), "on_time"),
        (date(2021, 9, 10), local(9, 9), "on_time"),
        (date(2021, 9, 10), local(9, 11, 0), "late"),
        (date(2021, 9, 10), None, "missing"),
        (date(2021, 9, 30), None, "open"),
        # 23:30 local on the due day is 15:30 UTC the same day: still on time
        (date(2021, 9, 10), datetime(2021, 9, 10, 15, 30, tzinfo=UTC), "on_time"),
        # 00:30 local the next day is 16:30 UTC on the due day: late
        (date(2021, 9, 10), datetime(2021, 9, 10, 16, 30, tzinfo=UTC), "late"),
    ],
)
def test_classify(due: date, submitted: datetime | None, outcome: str) -> None:
    assert classify(checkin(due, submitted), date(2021, 9, 30)) == outcome


@pytest.mark.parametrize(
    ("comparator", "target", "reported", "percent"),
    [
        ("ge", 200, 150, 75.0),
        ("ge", 200, 260, 130.0),
        ("gt", 5, 5, 100.0),
        ("le", 5, 3, 100.0),
        ("le", 5, 10, 50.0),
        ("ge", 200, None, None),
        ("ge", 0, 3, None),
        ("approx", 200, 180, 90.0),
        ("between", 5, 3, None),
    ],
)
def test_attainment(
    comparator: str, target: float, reported: float | None, percent: float | None
) -> None:
    assert attainment(comparator, target, reported) == percent


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("一\n二\t三\r\n四", 50, "一 二 三 四"),
        ("控制\x00字符\x1f", 50, "控制 字符"),
        ("长" * 10, 5, "长长长长…"),
        ("😀" * 3, 5, "😀😀😀"),
    ],
)
def test_excerpt(text: str, limit: int, expected: str) -> None:
    assert excerpt(text, limit) == expected


def test_week_ends_are_sundays_and_the_last_day() -> None:
    ends = week_ends(date(2021, 7, 1), date(2021, 7, 20))
    assert ends == [date(2021, 7, 4), date(2021, 7, 11), date(2021, 7, 18), date(2021, 7, 20)]
    assert week_ends(date(2021, 7, 1), date(2021, 7, 4)) == [date(2021, 7, 4)]


def test_colours_at_uses_last_event_and_stored_colour_without_events() -> None:
    items = (
        ItemRow(1, None, 1, "1", "a", "green", False),
        ItemRow(2, None, 2, "2", "b", "amber", False),
    )
    changes = (StatusChange(1, local(8, 1), "amber"), StatusChange(1, local(9, 1), "red"))
    snapshots = colours_at(items, changes, [local(7, 1), local(8, 15), local(9, 15)])
    assert [s[1] for s in snapshots] == ["none", "amber", "red"]
    assert [s[2] for s in snapshots] == ["amber", "amber", "amber"]


def small_inputs(**overrides: object) -> ReviewInputs:
    base = {
        "plan": PlanRow(1, "工作要点", "某市科协", 2021),
        "period": quarter_period(2021, 3),
        "as_of": AS_OF,
        "sections": (SectionRow(10, 0, "一", "学会工作"),),
        "items": (
            ItemRow(1, 10, 1, "1", "第一项", "green", False),
            ItemRow(2, 10, 2, "2", "第二项", "red", False),
            ItemRow(3, None, 3, "3", "第三项", "none", True),
        ),
        "targets": (TargetRow(7, 1, 0, "不少于10场", "ge", 10.0, "场"),),
        "departments": (
            DepartmentRow(1, "甲部"),
            DepartmentRow(2, "乙部"),
            DepartmentRow(3, "丙部"),
        ),
        "assignments": (
            AssignmentRow(1, 1, "lead"),
            AssignmentRow(2, 2, "lead"),
            AssignmentRow(2, 3, "support"),
        ),
        "checkins": (
            checkin(date(2021, 7, 5), local(7, 5), dept=1, item=1),
            checkin(date(2021, 8, 5), local(8, 6), dept=1, item=1),
            checkin(date(2021, 8, 5), local(8, 5), dept=2, item=2),
            checkin(date(2021, 9, 6), None, dept=2, item=2),
            checkin(date(2021, 6, 1), None, dept=2, item=2),
        ),
        "submissions": (
            SubmissionRow(1, 1, local(8, 6), "on_track", "<b>好</b>", "", "", {"7": 4.0}),
            SubmissionRow(2, 2, local(8, 5), "blocked", "", "缺人", "", {}),
        ),
        "extensions": (
            ExtensionRow(0, 1, "approved", local(8, 1)),
            ExtensionRow(0, 1, "rejected", local(8, 2)),
            ExtensionRow(0, 1, "approved", local(6, 2)),
        ),
        "escalations": (
            EscalationRow(2, 2, None, 1, local(9, 8)),
            EscalationRow(2, 2, None, 2, local(9, 15)),
            EscalationRow(2, 2, None, 1, local(6, 8)),
        ),
        "status_changes": (),
    }
    base.update(overrides)
    return ReviewInputs(**base)  # type: ignore[arg-type]


def test_build_review_figures() -> None:
    review = build_review(small_inputs())
    c = review.checkins
    assert (c.due, c.on_time, c.late, c.missing, c.open) == (4, 2, 1, 1, 0)
    assert c.on_time_rate == pytest.approx(50.0)
    assert review.escalations_by_level == {1: 1, 2: 1}
    assert review.extensions_granted == 1
    assert dict(review.colours) == {"green": 1, "amber": 0, "red": 1, "none": 1}
    ranked = [(d.rank, d.name, d.escalations) for d in review.departments]
    assert ranked == [(1, "甲部", 0), (2, "乙部", 2), (None, "丙部", 0)]
    assert [(o.number, o.days_overdue, o.level) for o in review.overdue] == [("2", 121, 2)]
    assert review.unassigned == (("3", "第三项"),)
    assert [(b.number, b.problems) for b in review.blocked] == [("2", "缺人")]
    first = review.sections[0].items[0]
    assert first.targets[0].percent == pytest.approx(40.0)
    assert review.sections[0].attainment == pytest.approx(40.0)
    assert [s.title for s in review.sections] == ["学会工作", "未归入章节的任务"]


def test_empty_plan_says_what_is_missing() -> None:
    review = build_review(
        small_inputs(
            items=(),
            targets=(),
            checkins=(),
            submissions=(),
            assignments=(),
            departments=(),
            escalations=(),
            extensions=(),
        )
    )
    title, blocks = build_outline(review, generated_at=AS_OF)
    text = "\n".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "尚未录入任何任务" in text
    assert "本期尚无到期的报送事项" in text
    assert "本期未发生督办" in text
    assert "尚未向任何部室交办任务" in text
    assert "2021年第三季度" in title


def test_outline_has_numbered_headings_and_no_placeholders() -> None:
    review = build_review(small_inputs())
    title, blocks = build_outline(review, generated_at=AS_OF)
    headings = [b.text for b in blocks if hasattr(b, "level") and b.level == 1]  # type: ignore[union-attr]
    assert [h[:2] for h in headings] == ["一、", "二、", "三、", "四、", "五、"]
    everything = title + "".join(
        b.text if isinstance(b, Paragraph) else "".join(map("".join, b.rows))
        for b in blocks
        if isinstance(b, Paragraph | Table)
    )
    assert not re.search(r"None|\{|\}|nan", everything)
    assert "按时报送率为50.0%" in everything


def test_svg_escapes_labels_and_png_is_valid_and_deterministic() -> None:
    chart = Chart("x", "图", "bar", bars=(("<b>甲</b>", 50.0), ("乙", None)))
    svg = charts.svg(chart)
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "无数据" in svg
    png = charts.numbered_png(chart)
    assert png == charts.numbered_png(chart)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (charts.WIDTH, 20 + 22 * 2)
    raw = zlib.decompress(png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8])
    assert len(raw) == height * (width * 3 + 1)
    assert len(set(raw)) > 3


def test_markdown_escapes_html_and_pipes() -> None:
    assert md_escape("<b>a|b</b>") == "&lt;b&gt;a\\|b&lt;/b&gt;"
    review = build_review(small_inputs())
    markdown = render_markdown(review, generated_at=AS_OF)
    assert "<b>" not in markdown
    assert "&lt;b&gt;好&lt;/b&gt;" in markdown


def test_markdown_row_budget_cuts_tables_with_a_note() -> None:
    review = build_review(small_inputs())
    full = render_markdown(review, generated_at=AS_OF)
    cut = render_markdown(review, generated_at=AS_OF, row_budget=1)
    assert "| 2 | 第二项 |" in full and "| 2 | 第二项 |" not in cut
    assert "此处列出前1行" in cut and "此处列出前0行" in cut
    assert "此处列出前" not in full


def test_overdue_ties_keep_plan_order_even_with_repeated_numbers() -> None:
    items = (
        ItemRow(5, 10, 2, "1", "后一项", "red", False),
        ItemRow(4, 10, 1, "1", "前一项", "red", False),
    )
    late = (
        checkin(date(2021, 9, 1), None, dept=1, item=5),
        checkin(date(2021, 9, 1), None, dept=1, item=4),
    )
    review = build_review(small_inputs(items=items, checkins=late, submissions=(), targets=()))
    assert [o.title for o in review.overdue] == ["前一项", "后一项"]
    assert all(o.days_overdue == 29 for o in review.overdue)


def test_department_with_no_submissions_is_named_in_words() -> None:
    silent = (
        checkin(date(2021, 9, 1), None, dept=2, item=2),
        checkin(date(2021, 7, 5), local(7, 5), dept=1, item=1),
    )
    review = build_review(small_inputs(checkins=silent))
    _, blocks = build_outline(review, generated_at=AS_OF)
    text = "".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "乙部共1个部室本期有到期事项但未报送任何材料" in text
    assert "丙部共1个部室本期没有到期的报送事项" in text


def test_milestones_reported_late_or_not_at_all_are_listed() -> None:
    def asking(due: date, submitted: datetime | None, asks: str, **kw: int) -> CheckinRow:
        return replace(checkin(due, submitted, **kw), asks=asks)

    review = build_review(
        small_inputs(
            checkins=(
                asking(date(2021, 7, 30), local(7, 29), "7月：完成调研", dept=1, item=1),
                asking(date(2021, 8, 31), local(9, 3), "8月：出台办法", dept=1, item=1),
                asking(date(2021, 9, 10), None, "9月上旬：组织验收", dept=2, item=2),
                checkin(date(2021, 9, 6), None, dept=2, item=2),
            )
        )
    )
    assert [
        (m.number, m.department, m.asks, m.due_date, m.submitted_on)
        for m in review.missed_milestones
    ] == [
        ("1", "甲部", "8月：出台办法", date(2021, 8, 31), date(2021, 9, 3)),
        ("2", "乙部", "9月上旬：组织验收", date(2021, 9, 10), None),
    ]
    _, blocks = build_outline(review, generated_at=AS_OF)
    texts = [b.text for b in blocks if isinstance(b, Paragraph | Heading)]
    assert "（四）未按时序进度报送的节点" in texts
    assert "本期共有2个时序进度节点未按期报送，其中1个至今未报。" in texts
    assert build_review(small_inputs()).missed_milestones == ()
