"""Check-in schedules over phases on real 2021 dates: every due date is a working day."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import WorkCalendar
from models.errors import InputError
from models.plan import Phase
from models.plan_reader.phases import default_phases as reader_default_phases
from models.policy import PhaseRule, SupervisionPolicy, default_policy
from models.schedule import (
    CheckinSpec,
    PhaseWindow,
    default_phase_windows,
    plan_checkins,
    validate_phases,
)

D = date
CAL = WorkCalendar()


def with_rule(key: str, rule: PhaseRule) -> SupervisionPolicy:
    base = default_policy()
    return base.model_copy(update={"phases": {**base.phases, key: rule}})


def test_default_policy_over_default_2021_phases() -> None:
    policy = default_policy()
    phases = default_phase_windows(policy, 2021)
    specs = plan_checkins(phases, policy, CAL, role="lead")
    # Default mobilize phase ends Sun Feb 28; Sat Feb 27 is off too (Sat Feb 20 was 调休).
    assert specs[0] == CheckinSpec("mobilize", 1, "work_plan", D(2021, 2, 26))
    assert specs[-1] == CheckinSpec("review", 1, "self_assessment", D(2021, 12, 31))
    progress = [(s.seq, s.due_date) for s in specs if s.phase_key == "implement"]
    assert progress == [
        (1, D(2021, 3, 25)),
        (2, D(2021, 4, 25)),  # a Sunday, but a 调休 make-up workday for May Day
        (3, D(2021, 5, 25)),
        (4, D(2021, 6, 25)),
        (5, D(2021, 7, 23)),  # Jul 25 is a Sunday -> previous Friday
        (6, D(2021, 8, 25)),
        (7, D(2021, 9, 24)),  # Sep 25 is a plain Saturday (Sep 26 is the 调休 Sunday)
        (8, D(2021, 10, 25)),
        (9, D(2021, 11, 25)),
        # Dec 25 falls in the review phase (from Dec 1): no progress check-in.
    ]
    assert all(CAL.is_workday(s.due_date) for s in specs)
    assert {s.kind for s in specs if s.phase_key == "implement"} == {"progress"}


def test_support_departments_report_only_when_policy_says_so() -> None:
    phases = default_phase_windows(default_policy(), 2021)
    assert plan_checkins(phases, default_policy(), CAL, role="support") == []
    policy = default_policy().model_copy(update={"support_departments_report": True})
    assert plan_checkins(phases, policy, CAL, role="support") == plan_checkins(
        phases, policy, CAL, role="lead"
    )


def test_quarterly_progress_uses_quarter_end_months() -> None:
    policy = with_rule("implement", PhaseRule(kind="progress", cadence="quarterly", day=25))
    phases = [PhaseWindow("implement", D(2021, 5, 11), D(2021, 12, 15))]
    assert [s.due_date for s in plan_checkins(phases, policy, CAL, role="lead")] == [
        D(2021, 6, 25),
        D(2021, 9, 24),
    ]


@pytest.mark.parametrize(
    ("window", "day", "expected"),
    [
        # Oct 1 is 国庆: moved back to Sep 30, still inside the phase.
        ((D(2021, 9, 1), D(2021, 10, 31)), 1, [D(2021, 9, 1), D(2021, 9, 30)]),
        # Phase starts on Oct 1: moving back would leave the phase, so forward to Oct 8.
        ((D(2021, 10, 1), D(2021, 11, 30)), 1, [D(2021, 10, 8), D(2021, 11, 1)]),
        # Day 31 means the month's last day: Sep 30 (Thu), Oct 31 Sunday -> Oct 29.
        ((D(2021, 9, 1), D(2021, 10, 31)), 31, [D(2021, 9, 30), D(2021, 10, 29)]),
    ],
)
def test_monthly_day_moves_to_a_workday_inside_the_phase(
    window: tuple[date, date], day: int, expected: list[date]
) -> None:
    policy = with_rule("implement", PhaseRule(kind="progress", cadence="monthly", day=day))
    phases = [PhaseWindow("implement", *window)]
    assert [s.due_date for s in plan_checkins(phases, policy, CAL, role="lead")] == expected


def test_once_due_on_last_workday_of_phase() -> None:
    # 发动部署 ends on Sunday 2021-10-03 in 国庆: the last workday before it is Sep 30.
    phases = [PhaseWindow("mobilize", D(2021, 9, 1), D(2021, 10, 3))]
    specs = plan_checkins(phases, default_policy(), CAL, role="lead")
    assert specs == [CheckinSpec("mobilize", 1, "work_plan", D(2021, 9, 30))]


def test_not_before_drops_past_checkins_but_keeps_numbering() -> None:
    policy = default_policy()
    phases = default_phase_windows(policy, 2021)
    specs = plan_checkins(phases, policy, CAL, role="lead", not_before=D(2021, 5, 24))
    assert specs[0] == CheckinSpec("implement", 3, "progress", D(2021, 5, 25))
    assert all(s.due_date >= D(2021, 5, 24) for s in specs)


def test_phase_without_rule_asks_nothing() -> None:
    base = default_policy()
    policy = base.model_copy(update={"phases": {"implement": base.phases["implement"]}})
    phases = default_phase_windows(policy, 2021)
    assert {s.phase_key for s in plan_checkins(phases, policy, CAL, role="lead")} == {"implement"}


@pytest.mark.parametrize("year", [2021, 2024])
def test_default_phases_equal_the_plan_readers(year: int) -> None:
    reader = [PhaseWindow.of(p) for p in reader_default_phases(year)]
    assert default_phase_windows(default_policy(), year) == reader


def test_phase_window_of_orm_row() -> None:
    row = Phase(key="review", name="总结验收", start_date=D(2021, 12, 16), end_date=D(2021, 12, 31))
    assert PhaseWindow.of(row) == PhaseWindow("review", D(2021, 12, 16), D(2021, 12, 31))


@pytest.mark.parametrize(
    ("phases", "needle"),
    [
        ([PhaseWindow("mobilize", D(2021, 4, 1), D(2021, 3, 1))], "早于"),
        (
            [
                PhaseWindow("mobilize", D(2021, 3, 1), D(2021, 5, 10)),
                PhaseWindow("implement", D(2021, 5, 1), D(2021, 12, 15)),
            ],
            "重叠",
        ),
        (
            [
                PhaseWindow("implement", D(2021, 5, 1), D(2021, 12, 15)),
                PhaseWindow("mobilize", D(2021, 3, 1), D(2021, 4, 10)),
            ],
            "顺序",
        ),
        (
            [
                PhaseWindow("implement", D(2021, 5, 1), D(2021, 6, 15)),
                PhaseWindow("implement", D(2021, 7, 1), D(2021, 8, 15)),
            ],
            "重复",
        ),
    ],
)
def test_bad_phases_are_refused(phases: list[PhaseWindow], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        validate_phases(phases)
    with pytest.raises(InputError, match=needle):
        plan_checkins(phases, default_policy(), CAL, role="lead")


@settings(max_examples=150, deadline=None)
@given(
    year=st.integers(min_value=2005, max_value=2026),
    cuts=st.lists(st.integers(min_value=1, max_value=363), min_size=2, max_size=2, unique=True),
    day=st.integers(min_value=1, max_value=31),
    cadence=st.sampled_from(["monthly", "quarterly"]),
)
def test_every_due_date_is_a_workday_in_order(
    year: int, cuts: list[int], day: int, cadence: str
) -> None:
    first, second = sorted(cuts)
    jan1 = D(year, 1, 1)
    phases = [
        PhaseWindow("mobilize", jan1, jan1 + timedelta(days=first - 1)),
        PhaseWindow("implement", jan1 + timedelta(days=first), jan1 + timedelta(days=second - 1)),
        PhaseWindow("review", jan1 + timedelta(days=second), D(year, 12, 31)),
    ]
    policy = with_rule("implement", PhaseRule(kind="progress", cadence=cadence, day=day))
    specs = plan_checkins(phases, policy, CAL, role="lead")
    assert all(CAL.is_workday(s.due_date) for s in specs)
    for phase in phases:
        mine = [s for s in specs if s.phase_key == phase.key]
        assert [s.seq for s in mine] == list(range(1, len(mine) + 1))
        assert all(a.due_date < b.due_date for a, b in pairwise(mine))
    assert [s.phase_key for s in specs if s.phase_key != "implement"] == ["mobilize", "review"]
