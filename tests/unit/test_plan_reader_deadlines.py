"""完成时限 and 时序进度 phrases, as a table of text -> result (models.plan_reader.deadlines)."""

from __future__ import annotations

from datetime import date

import pytest

from models.plan_reader.deadlines import (
    Deadline,
    DeadlineKind,
    Recurrence,
    deadline_problem,
    labelled_fields,
    prose_schedule,
    read_deadline,
    read_milestones,
)

DATES = [
    ("2023年6月底前", date(2023, 6, 30)),
    ("10月底前完成", date(2023, 10, 31)),
    ("6月30日前", date(2023, 6, 30)),
    ("2023年12月31日", date(2023, 12, 31)),
    ("2023-09-15", date(2023, 9, 15)),
    ("年内完成", date(2023, 12, 31)),
    ("年底前", date(2023, 12, 31)),
    ("上半年", date(2023, 6, 30)),
    ("下半年完成", date(2023, 12, 31)),
    ("第三季度", date(2023, 9, 30)),
    ("二季度末", date(2023, 6, 30)),
    ("3月上旬", date(2023, 3, 10)),
    ("11月中旬前", date(2023, 11, 20)),
    ("6月底前完成并长期坚持", date(2023, 6, 30)),
    ("2月底", date(2023, 2, 28)),
    ("2024年上半年", date(2024, 6, 30)),
    ("2022年底前", date(2022, 12, 31)),
    ("年中", date(2023, 6, 30)),
    ("2023—2025年", date(2025, 12, 31)),
    ("二〇二三年六月底前", date(2023, 6, 30)),
    ("十二月底前", date(2023, 12, 31)),
    ("二〇二三年十月三十一日前", date(2023, 10, 31)),
    # The last date named is the deadline.
    ("6月底前、12月底前", date(2023, 12, 31)),
    ("上半年完成初稿，年底前完成", date(2023, 12, 31)),
    ("7月1日—9月30日", date(2023, 9, 30)),
    ("9月—10月", date(2023, 10, 31)),
]


@pytest.mark.parametrize(("text", "due"), DATES)
def test_date_deadlines(text: str, due: date) -> None:
    assert read_deadline(text, year=2023) == Deadline(DeadlineKind.DATE, text, due=due)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("每季度末", Recurrence.QUARTERLY),
        ("每季报送", Recurrence.QUARTERLY),
        ("每月", Recurrence.MONTHLY),
        ("按月推进", Recurrence.MONTHLY),
        ("每半年", Recurrence.HALF_YEARLY),
        ("每年", Recurrence.YEARLY),
        ("全年每季度", Recurrence.QUARTERLY),
    ],
)
def test_recurring_deadlines(text: str, rule: Recurrence) -> None:
    assert read_deadline(text, year=2023) == Deadline(DeadlineKind.RECURRING, text, rule=rule)


@pytest.mark.parametrize(
    "text", ["长期坚持", "持续推进", "常态化推进", "長期堅持", "2023年起", "长期任务"]
)
def test_ongoing_deadlines(text: str) -> None:
    assert read_deadline(text, year=2023) == Deadline(DeadlineKind.ONGOING, text)


@pytest.mark.parametrize("text", ["", "尽快", "视情况而定", "13月底前", "2月30日", "2023-02-30"])
def test_unreadable_deadlines_are_none(text: str) -> None:
    assert read_deadline(text, year=2023) is None


def test_deadline_outside_the_year_or_before_the_start_is_a_problem() -> None:
    assert deadline_problem(read_deadline("2024年3月底前", year=2023), year=2023) == (  # type: ignore[arg-type]
        "完成时限 2024年3月底前 不在计划年度 2023 年内"
    )
    early = read_deadline("1月底前", year=2023)
    assert early is not None
    assert deadline_problem(early, year=2023, starts=date(2023, 3, 1)) == (
        "完成时限 1月底前 早于计划开始日期"
    )
    assert deadline_problem(early, year=2023, starts=date(2023, 1, 1)) is None
    ongoing = read_deadline("长期坚持", year=2023)
    assert ongoing is not None and deadline_problem(ongoing, year=2023) is None


def test_month_milestones_with_a_range() -> None:
    text = "3月：召集相关部门研讨 4月：发布实施办法 4月—12月：推进落实"
    milestones, problems = read_milestones(text, year=2023)
    assert problems == []
    assert [(m.start, m.end, m.output, m.text) for m in milestones] == [
        (date(2023, 3, 1), date(2023, 3, 31), "召集相关部门研讨", "3月"),
        (date(2023, 4, 1), date(2023, 4, 30), "发布实施办法", "4月"),
        (date(2023, 4, 1), date(2023, 12, 31), "推进落实", "4月—12月"),
    ]


def test_quarter_and_half_year_milestones() -> None:
    text = "一季度：完成摸底调查；二季度：制定方案；下半年：全面推开。"
    milestones, problems = read_milestones(text, year=2023)
    assert problems == []
    assert [(m.start, m.end, m.output) for m in milestones] == [
        (date(2023, 1, 1), date(2023, 3, 31), "完成摸底调查"),
        (date(2023, 4, 1), date(2023, 6, 30), "制定方案"),
        (date(2023, 7, 1), date(2023, 12, 31), "全面推开"),
    ]


def test_bare_month_range_and_deadline_points() -> None:
    text = "1-3月：调研；6月底前：出台办法；年底前：总结"
    milestones, _ = read_milestones(text, year=2023)
    assert [(m.start, m.end) for m in milestones] == [
        (date(2023, 1, 1), date(2023, 3, 31)),
        (date(2023, 4, 1), date(2023, 6, 30)),
        (date(2023, 7, 1), date(2023, 12, 31)),
    ]


def test_out_of_order_and_impossible_milestones_are_reported() -> None:
    milestones, problems = read_milestones("5月：启动 3月：研讨 13月：总结", year=2023)
    assert [m.text for m in milestones] == ["5月", "3月"]
    assert problems == ["时序进度顺序颠倒：3月 早于 5月", "无法识别的时间：13月"]


def test_text_without_periods_has_no_milestones() -> None:
    assert read_milestones("加强科普阵地建设，提升服务能力。", year=2023) == ([], [])
    # A month inside a sentence, not followed by a colon, is not a milestone.
    assert read_milestones("力争在6月完成全部任务。", year=2023) == ([], [])


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("加强科普阵地建设。（完成时限：2023年6月底前）", {"deadline": "2023年6月底前"}),
        (
            "加强阵地建设。时序进度：3月：研讨 4月：发布 "
            "完成时限：10月底前完成；考核要点：不少于10场",
            {
                "milestones": "3月：研讨 4月：发布",
                "deadline": "10月底前完成",
                "criteria": "不少于10场",
            },
        ),
        ("组织科普日活动（9月底前完成）。", {"deadline": "9月底前完成"}),
        ("牵头单位：学会部；完成时间：年内", {"deadline": "年内"}),
        ("组织科普日活动，力争9月完成。", {}),
        (
            "时间节点：每季度末。进度安排：一季度：调研；二季度：推进",
            {
                "deadline": "每季度末",
                "milestones": "一季度：调研；二季度：推进",
            },
        ),
    ],
)
def test_labelled_fields_in_prose(text: str, fields: dict[str, str]) -> None:
    assert labelled_fields(text) == fields


def test_labelled_fields_is_linear_on_repeated_labels() -> None:
    # 30,000 labels: one pass, each field the span to the next label.
    text = "完成时限：" * 30_000
    assert labelled_fields(text) == {}


def test_prose_schedule_reads_labelled_fields_and_warns_with_the_line() -> None:
    deadline, milestones, criteria, warnings = prose_schedule(
        "开展科普日活动。时序进度：8月：制定方案 9月：集中开展。"
        "完成时限：9月底前；考核要点：不少于200场次",
        year=2023,
        number="3",
        line=17,
    )
    assert deadline is not None and deadline.due == date(2023, 9, 30)
    assert [(m.text, m.line) for m in milestones] == [("8月", 17), ("9月", 17)]
    assert criteria == "不少于200场次"
    assert warnings == []
    _, _, _, late = prose_schedule("完成时限：2025年底前", year=2023, number="4", line=9)
    assert [(w.line, w.reason) for w in late] == [
        (9, "任务 4 完成时限 2025年底前 不在计划年度 2023 年内，按督办策略安排")
    ]


def test_milestones_opening_clauses_with_a_comma_and_chinese_numerals() -> None:
    milestones, problems = read_milestones(
        "3月底前，完成调研；6月底前，出台办法；十二月，总结。", year=2023
    )
    assert problems == []
    assert [(m.text, m.start, m.end, m.output) for m in milestones] == [
        ("3月底前", date(2023, 1, 1), date(2023, 3, 31), "完成调研"),
        ("6月底前", date(2023, 4, 1), date(2023, 6, 30), "出台办法"),
        ("12月", date(2023, 12, 1), date(2023, 12, 31), "总结"),
    ]
    # A month with a comma inside a sentence is not a milestone.
    assert read_milestones("力争在6月，完成全部任务。", year=2023) == ([], [])


def test_prose_items_carry_their_schedule_and_a_dated_task_is_not_a_phase() -> None:
    from models.plan_reader.document import parse_plan_text

    plan = parse_plan_text(
        "某市科协2023年工作方案\n"
        "一、加强建设\n"
        "1.开展科普日活动。时序进度：8月：制定方案 9月：集中开展。"
        "完成时限：9月底前；考核要点：不少于200场次（牵头部室：普及部）\n"
        "2.推进学会改革（10月底前完成）。（牵头部室：学会部）\n"
        "3.建设科普阵地。（牵头部室：普及部）\n",
        source_name="plan.txt",
    )
    assert [item.number for item in plan.items] == ["1", "2", "3"]
    first, second, third = plan.items
    assert first.deadline is not None and first.deadline.due == date(2023, 9, 30)
    assert [m.text for m in first.milestones] == ["8月", "9月"]
    assert first.criteria == "不少于200场次"
    assert second.lead == ["学会部"]
    assert second.deadline is not None and second.deadline.due == date(2023, 10, 31)
    assert third.deadline is None and third.milestones == []
    assert all(phase.name != "推进学会改革" for phase in plan.phases)
