"""An item's 完成时限 and 时序进度 reshape its check-ins (models.item_schedule), worked by hand
on 2023's calendar: 端午 Jun 22–24 with Sunday Jun 25 a make-up workday, 中秋国庆 Sep 29–Oct 6."""

from __future__ import annotations

from datetime import date

from models.calendar import default_calendar
from models.item_schedule import ItemCheckin, item_checkins
from models.plan_schema import ParsedDeadline, ParsedMilestone
from models.policy import default_policy
from models.schedule import default_phase_windows, plan_checkins

POLICY = default_policy()
CALENDAR = default_calendar()
PHASES = default_phase_windows(POLICY, 2023)
LEAD = plan_checkins(PHASES, POLICY, CALENDAR, role="lead")


def _checkins(
    deadline: ParsedDeadline | None = None,
    milestones: tuple[ParsedMilestone, ...] = (),
    **flags: bool,
) -> list[tuple[str, int, str, date, str]]:
    found = item_checkins(
        LEAD,
        phases=PHASES,
        policy=POLICY,
        calendar=CALENDAR,
        deadline=deadline,
        milestones=milestones,
        **flags,
    )
    return [(c.phase_key, c.seq, c.kind, c.due_date, c.asks) for c in found]


def _milestone(text: str, start: date, end: date, output: str) -> ParsedMilestone:
    return ParsedMilestone(text=text, start=start, end=end, output=output)


GENERIC = [
    ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
    *[
        ("implement", seq, "progress", day, "")
        for seq, day in enumerate(
            [
                date(2023, 3, 24),
                date(2023, 4, 25),
                date(2023, 5, 25),
                date(2023, 6, 25),
                date(2023, 7, 25),
                date(2023, 8, 25),
                date(2023, 9, 25),
                date(2023, 10, 25),
                date(2023, 11, 24),
            ],
            start=1,
        )
    ],
    ("review", 1, "self_assessment", date(2023, 12, 29), ""),
]
MILESTONES = (
    _milestone("3月", date(2023, 3, 1), date(2023, 3, 31), "制定学习方案"),
    _milestone("4月—6月", date(2023, 4, 1), date(2023, 6, 30), "开展专题宣讲"),
    _milestone("12月", date(2023, 12, 1), date(2023, 12, 31), "总结"),
)
YEAR_END = ParsedDeadline(kind="date", text="2023年12月底前", due=date(2023, 12, 31))


def test_the_policy_schedule_is_what_it_was() -> None:
    assert _checkins() == GENERIC
    assert _checkins(ParsedDeadline(kind="ongoing", text="长期坚持")) == GENERIC


def test_milestones_replace_the_monthly_reports_and_ask_for_their_output() -> None:
    assert _checkins(YEAR_END, MILESTONES) == [
        ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
        ("implement", 101, "progress", date(2023, 3, 31), "3月：制定学习方案"),
        ("implement", 102, "progress", date(2023, 6, 30), "4月—6月：开展专题宣讲"),
        # December's milestone ends on the day the self-assessment is due: one check-in.
        ("review", 1, "self_assessment", date(2023, 12, 29), "12月：总结"),
    ]


def test_a_deadline_ends_the_reports_with_a_final_one_due_then() -> None:
    october = ParsedDeadline(kind="date", text="10月底前完成", due=date(2023, 10, 31))
    assert _checkins(october) == [
        *GENERIC[:9],
        (
            "implement",
            200,
            "self_assessment",
            date(2023, 10, 31),
            "完成情况（完成时限：10月底前完成）",
        ),
    ]


def test_a_deadline_on_a_holiday_is_due_the_working_day_before() -> None:
    national_day = ParsedDeadline(kind="date", text="10月3日前", due=date(2023, 10, 3))
    assert _checkins(national_day)[-1] == (
        "implement",
        200,
        "self_assessment",
        date(2023, 9, 28),
        "完成情况（完成时限：10月3日前）",
    )


def test_a_quarterly_rule_puts_the_reports_at_quarter_ends() -> None:
    quarterly = ParsedDeadline(kind="recurring", text="每季度末", rule="quarterly")
    assert _checkins(quarterly) == [
        ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
        ("implement", 301, "progress", date(2023, 3, 31), ""),
        ("implement", 302, "progress", date(2023, 6, 30), ""),
        ("implement", 303, "progress", date(2023, 9, 28), ""),
        ("review", 1, "self_assessment", date(2023, 12, 29), ""),
    ]


def test_the_policy_can_turn_each_off() -> None:
    assert _checkins(YEAR_END, MILESTONES, use_milestones=False, use_deadlines=False) == GENERIC
    only_deadline = _checkins(YEAR_END, MILESTONES, use_milestones=False)
    final = (
        "review",
        1,
        "self_assessment",
        date(2023, 12, 29),
        "完成情况（完成时限：2023年12月底前）",
    )
    assert only_deadline == [*GENERIC[:-1], final]
    only_milestones = _checkins(
        ParsedDeadline(kind="date", text="9月底前", due=date(2023, 9, 30)),
        MILESTONES,
        use_deadlines=False,
    )
    assert [c[3] for c in only_milestones] == [
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 6, 30),
        date(2023, 12, 29),
    ]


def test_support_departments_owe_nothing_here_either() -> None:
    support = plan_checkins(PHASES, POLICY, CALENDAR, role="support")
    assert support == []
    assert item_checkins(support, phases=PHASES, policy=POLICY, calendar=CALENDAR) == []


def test_seq_numbers_are_stable_keys() -> None:
    first = item_checkins(
        LEAD, phases=PHASES, policy=POLICY, calendar=CALENDAR, milestones=MILESTONES
    )
    again = item_checkins(
        LEAD, phases=PHASES, policy=POLICY, calendar=CALENDAR, milestones=MILESTONES
    )
    assert first == again
    keys = [(c.phase_key, c.seq) for c in first]
    assert len(keys) == len(set(keys))
    assert isinstance(first[0], ItemCheckin)


def test_pace_runs_to_the_items_own_deadline() -> None:
    from models.daily_pass import deadline_ends, reported_signals
    from models.plan import Item, Target
    from models.supervision import Submission

    june = Item(id=1, deadline={"kind": "date", "text": "6月底前", "due": "2023-06-30"})
    ongoing = Item(id=2, deadline={"kind": "ongoing", "text": "长期坚持"})
    start = date(2023, 1, 1)
    ends = deadline_ends([june, ongoing], start=start, policy=POLICY)
    assert ends == {1: date(2023, 6, 30)}
    assert (
        deadline_ends(
            [june], start=start, policy=POLICY.model_copy(update={"item_deadlines": False})
        )
        == {}
    )
    targets = [
        Target(id=10, item_id=1, text="不少于100场次", comparator="ge", value=100, unit="场次"),
        Target(id=20, item_id=2, text="不少于100场次", comparator="ge", value=100, unit="场次"),
    ]
    latest = {
        (1, 5): Submission(status="on_track", values={"10": 40}),
        (2, 5): Submission(status="on_track", values={"20": 40}),
    }
    signals = reported_signals(
        latest=latest, targets=targets, today=date(2023, 4, 1), start=start,
        end=date(2023, 12, 31), ends=ends,
    )  # fmt: skip
    # 40 of 100 on 1 April: on pace for the year's end, behind for a June deadline.
    assert signals[2][1] == ("on_pace",)
    assert signals[1][1] == ("behind",)
