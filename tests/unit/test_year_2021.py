"""A whole supervised year, pure: seed 001's phases, the default policy, the real 2021
calendar, a reconcile pass on every working day from 2021-05-24 to 2021-12-31.

Phases as the plan reads them: 发动部署 3月下旬–5月上旬 (03-21..05-10), 落实达标 5月中旬–12月中旬
(05-11..12-20), 总结验收 12月下旬 (12-21..12-31). Every date below was worked out by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from models.calendar import WorkCalendar
from models.ladder import CheckinFacts, checkin_state, decide_notices, escalation_level_due
from models.policy import default_policy
from models.rag import ItemSignals, item_colour
from models.schedule import CheckinSpec, PhaseWindow, plan_checkins

D = date
CAL = WorkCalendar()
POLICY = default_policy()
START, END = D(2021, 5, 24), D(2021, 12, 31)
PHASES = [
    PhaseWindow("mobilize", D(2021, 3, 21), D(2021, 5, 10)),
    PhaseWindow("implement", D(2021, 5, 11), D(2021, 12, 20)),
    PhaseWindow("review", D(2021, 12, 21), D(2021, 12, 31)),
]
FactsOn = Callable[[date], list[CheckinFacts]]


def specs() -> list[CheckinSpec]:
    return plan_checkins(PHASES, POLICY, CAL, role="lead", not_before=START)


def simulate(facts_on: FactsOn) -> list[tuple[date, str]]:
    """Reconcile every working day (twice a day: the second pass must add nothing)."""
    done: set[str] = set()
    fired: list[tuple[date, str]] = []
    day = START
    while day <= END:
        if CAL.is_workday(day):
            for attempt in range(2):
                for facts in facts_on(day):
                    for decision in decide_notices(facts, POLICY, CAL, today=day, done_keys=done):
                        assert attempt == 0, f"re-run on {day} decided {decision.key}"
                        done.add(decision.key)
                        fired.append((day, decision.key.removeprefix("checkin:")))
        day += timedelta(days=1)
    return fired


def test_schedule_of_a_lead_department() -> None:
    assert [(s.phase_key, s.seq, s.due_date) for s in specs()] == [
        # mobilize's work plan was due 05-10, before supervision started: not scheduled.
        ("implement", 1, D(2021, 5, 25)),
        ("implement", 2, D(2021, 6, 25)),
        ("implement", 3, D(2021, 7, 23)),  # 07-25 is a Sunday
        ("implement", 4, D(2021, 8, 25)),
        ("implement", 5, D(2021, 9, 24)),  # 09-25 is a Saturday
        ("implement", 6, D(2021, 10, 25)),
        ("implement", 7, D(2021, 11, 25)),
        # 12-25 is after the implement phase ends on 12-20.
        ("review", 1, D(2021, 12, 31)),
    ]


def test_a_department_that_never_answers() -> None:
    ids = {spec.due_date: n for n, spec in enumerate(specs(), start=1)}

    def facts_on(_: date) -> list[CheckinFacts]:
        return [CheckinFacts(n, due) for due, n in ids.items()]

    fired = simulate(facts_on)

    def ladder(n: int, *days: date) -> list[tuple[date, str]]:
        names = ["request", "reminder", "escalation:1", "escalation:2", "escalation:3"]
        return [(day, f"{n}:{name}:e0") for day, name in zip(days, names, strict=False)]

    expected = (
        # 05-25: request day 05-18 was before the start, so it goes out on the first pass.
        ladder(1, D(2021, 5, 24), D(2021, 5, 25), D(2021, 5, 26), D(2021, 5, 28), D(2021, 6, 1))
        + ladder(2, D(2021, 6, 18), D(2021, 6, 25), D(2021, 6, 28), D(2021, 6, 30), D(2021, 7, 2))
        + ladder(3, D(2021, 7, 16), D(2021, 7, 23), D(2021, 7, 26), D(2021, 7, 28), D(2021, 7, 30))
        + ladder(4, D(2021, 8, 18), D(2021, 8, 25), D(2021, 8, 26), D(2021, 8, 30), D(2021, 9, 1))
        # 09-24: request over 中秋 (09-19..21) and the 调休 Saturday 09-18; level 1 on the
        # 调休 Sunday 09-26.
        + ladder(5, D(2021, 9, 16), D(2021, 9, 24), D(2021, 9, 26), D(2021, 9, 28), D(2021, 9, 30))
        + ladder(
            6, D(2021, 10, 18), D(2021, 10, 25), D(2021, 10, 26), D(2021, 10, 28), D(2021, 11, 1)
        )
        + ladder(
            7, D(2021, 11, 18), D(2021, 11, 25), D(2021, 11, 26), D(2021, 11, 30), D(2021, 12, 2)
        )
        # 12-31: level 1 would be 2022-01-04, after the simulated year.
        + ladder(8, D(2021, 12, 24), D(2021, 12, 31))
    )
    assert sorted(fired) == sorted(expected)


def test_submissions_and_an_extension() -> None:
    """Check-in 5 (due 09-24) arrives 09-27, after level 1; check-in 6 (due 10-25) is extended
    on 10-20 to 11-05 and arrives 11-09, after the new level 1."""

    def facts_on(day: date) -> list[CheckinFacts]:
        first = CheckinFacts(5, D(2021, 9, 24), submitted_on=D(2021, 9, 27))
        if day < D(2021, 10, 20):
            second = CheckinFacts(6, D(2021, 10, 25))
        else:
            second = CheckinFacts(6, D(2021, 11, 5), D(2021, 11, 9), ladder_epoch=1)
        return [first, second]

    assert simulate(facts_on) == [
        (D(2021, 9, 16), "5:request:e0"),
        (D(2021, 9, 24), "5:reminder:e0"),
        (D(2021, 9, 26), "5:escalation:1:e0"),
        (D(2021, 10, 18), "6:request:e0"),
        # The new due date 11-05 restarts the ladder under epoch 1.
        (D(2021, 10, 29), "6:request:e1"),
        (D(2021, 11, 5), "6:reminder:e1"),
        (D(2021, 11, 8), "6:escalation:1:e1"),
    ]


def test_states_and_colours_around_the_september_check_in() -> None:
    facts = CheckinFacts(5, D(2021, 9, 24))
    table = [
        (D(2021, 9, 15), "upcoming", 0, "green"),
        (D(2021, 9, 16), "awaiting", 0, "green"),
        (D(2021, 9, 24), "due_today", 0, "green"),
        (D(2021, 9, 26), "overdue", 1, "amber"),
        (D(2021, 9, 28), "overdue", 2, "red"),
        (D(2021, 9, 30), "overdue", 3, "red"),
    ]
    for day, state, level, colour in table:
        current = checkin_state(facts, POLICY, CAL, today=day)
        reached = escalation_level_due(facts, POLICY, CAL, today=day)
        signals = ItemSignals(checkin_states=(current,), escalation_level=reached)
        assert (current, reached, item_colour(signals)) == (state, level, colour), day
