"""The escalation ladder around 国庆 2021, worked out by hand from the real calendar.

A check-in due Thu 2021-09-30 under the default policy: request 5 workdays before (Fri
09-24; Sat 09-25 is off, Sun 09-26 is a 调休 workday), reminder on 09-30, then 国庆
(10-01..07) is skipped: L1 +1 = Fri 10-08, L2 +3 = Mon 10-11 (Sat 10-09 is 调休), L3 +5 =
Wed 10-13.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from models.calendar import WorkCalendar
from models.ladder import (
    CheckinFacts,
    checkin_state,
    decide_notices,
    escalation_level_due,
    ladder_schedule,
    next_notice_date,
    notice_key,
)
from models.policy import EscalationLevel, default_policy

D = date
CAL = WorkCalendar()
POLICY = default_policy()
DUE = D(2021, 9, 30)


def run_every_day(facts: CheckinFacts, start: date, end: date) -> list[tuple[date, str]]:
    """Reconcile once per calendar day (twice, to prove re-runs add nothing)."""
    done: set[str] = set()
    fired: list[tuple[date, str]] = []
    day = start
    while day <= end:
        for _ in range(2):
            for decision in decide_notices(facts, POLICY, CAL, today=day, done_keys=done):
                done.add(decision.key)
                fired.append((day, decision.key))
        day += timedelta(days=1)
    return fired


def test_full_ladder_when_nothing_arrives() -> None:
    fired = run_every_day(CheckinFacts(7, DUE), D(2021, 9, 1), D(2021, 11, 30))
    assert fired == [
        (D(2021, 9, 24), "checkin:7:request:e0"),
        (D(2021, 9, 30), "checkin:7:reminder:e0"),
        (D(2021, 10, 8), "checkin:7:escalation:1:e0"),
        (D(2021, 10, 11), "checkin:7:escalation:2:e0"),
        (D(2021, 10, 13), "checkin:7:escalation:3:e0"),
    ]


def test_recipients_and_reasons_per_level() -> None:
    decisions = {
        d.level: d
        for day in (D(2021, 10, 8), D(2021, 10, 11), D(2021, 10, 13))
        for d in decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=day, done_keys=())
        if d.kind == "escalation"
    }
    assert decisions[1].recipient_roles == ("contact",)
    assert decisions[2].recipient_roles == ("leader",)
    assert decisions[3].recipient_roles == ("head", "office")
    assert "第3级督办" in decisions[3].reason
    assert "主要负责人、督查室" in decisions[3].reason


@pytest.mark.parametrize(
    ("submitted_on", "expected_keys"),
    [
        (D(2021, 9, 23), []),  # before the request: nothing at all
        (D(2021, 9, 29), ["request"]),
        (D(2021, 10, 8), ["request", "reminder"]),  # arrived the morning L1 was due
        (D(2021, 10, 12), ["request", "reminder", "escalation:1", "escalation:2"]),
    ],
)
def test_a_submission_stops_the_ladder(submitted_on: date, expected_keys: list[str]) -> None:
    fired = run_every_day(CheckinFacts(7, DUE, submitted_on), D(2021, 9, 1), D(2021, 11, 30))
    assert [key for _, key in fired] == [f"checkin:7:{k}:e0" for k in expected_keys]


def test_catch_up_records_every_missed_level_once() -> None:
    done = {"checkin:7:request:e0"}
    late = decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=D(2021, 10, 12), done_keys=done)
    assert [(d.kind, d.level, d.due_on) for d in late] == [
        ("escalation", 1, D(2021, 10, 8)),
        ("escalation", 2, D(2021, 10, 11)),
    ]
    assert "补发" in late[0].reason
    assert "补发" in late[1].reason
    on_time = decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=D(2021, 10, 8), done_keys=())
    assert "补发" not in on_time[0].reason
    done |= {d.key for d in late}
    assert (
        decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=D(2021, 10, 12), done_keys=done)
        == []
    )


def test_request_not_sent_after_due_date_and_reminder_not_after_level_one() -> None:
    on_due = decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=DUE, done_keys=())
    assert [d.kind for d in on_due] == ["reminder"]
    on_l1 = decide_notices(CheckinFacts(7, DUE), POLICY, CAL, today=D(2021, 10, 8), done_keys=())
    assert [d.kind for d in on_l1] == ["escalation"]


def test_extension_restarts_the_ladder_under_new_keys() -> None:
    before = run_every_day(CheckinFacts(7, DUE), D(2021, 9, 1), D(2021, 10, 8))
    done = {key for _, key in before}
    extended = CheckinFacts(7, D(2021, 10, 15), ladder_epoch=1)
    # New due Fri 10-15: request 5 workdays before = Sat 10-09 (调休), already passed on 10-11.
    on_11 = decide_notices(extended, POLICY, CAL, today=D(2021, 10, 11), done_keys=done)
    assert [d.key for d in on_11] == ["checkin:7:request:e1"]
    on_18 = decide_notices(extended, POLICY, CAL, today=D(2021, 10, 18), done_keys=done)
    # The new request was never recorded, but once the new due date has passed it is not sent.
    assert [d.key for d in on_18] == ["checkin:7:escalation:1:e1"]


def test_policy_switches() -> None:
    quiet = POLICY.model_copy(
        update={
            "request_lead_workdays": 0,
            "reminder_on_due_date": False,
            "escalation": (EscalationLevel(level=1, delay_workdays=2, recipients=("office",)),),
        }
    )
    steps = ladder_schedule(DUE, quiet, CAL)
    assert [(s.kind, s.level, s.on) for s in steps] == [("escalation", 1, D(2021, 10, 9))]


def test_keys() -> None:
    assert notice_key(3, "request") == "checkin:3:request:e0"
    assert notice_key(3, "escalation", level=2, epoch=1) == "checkin:3:escalation:2:e1"


@pytest.mark.parametrize(
    ("today", "submitted_on", "state"),
    [
        (D(2021, 9, 23), None, "upcoming"),
        (D(2021, 9, 24), None, "awaiting"),  # request day
        (D(2021, 9, 29), None, "awaiting"),
        (D(2021, 9, 30), None, "due_today"),
        (D(2021, 10, 1), None, "overdue"),
        (D(2021, 10, 8), D(2021, 9, 30), "submitted"),
        (D(2021, 10, 8), D(2021, 10, 8), "submitted_late"),
        (D(2021, 10, 5), D(2021, 10, 8), "overdue"),  # a later submission is not seen yet
    ],
)
def test_checkin_state(today: date, submitted_on: date | None, state: str) -> None:
    facts = CheckinFacts(7, DUE, submitted_on)
    assert checkin_state(facts, POLICY, CAL, today=today) == state


@pytest.mark.parametrize(
    ("today", "level", "next_date"),
    [
        (D(2021, 9, 20), 0, D(2021, 9, 24)),
        (D(2021, 9, 30), 0, D(2021, 10, 8)),
        (D(2021, 10, 8), 1, D(2021, 10, 11)),
        (D(2021, 10, 12), 2, D(2021, 10, 13)),
        (D(2021, 10, 20), 3, None),
    ],
)
def test_level_due_and_next_notice_date(today: date, level: int, next_date: date | None) -> None:
    facts = CheckinFacts(7, DUE)
    assert escalation_level_due(facts, POLICY, CAL, today=today) == level
    assert next_notice_date(facts, POLICY, CAL, today=today) == next_date


def test_submitted_checkin_has_no_level_and_no_next_date() -> None:
    facts = CheckinFacts(7, DUE, D(2021, 10, 9))
    assert escalation_level_due(facts, POLICY, CAL, today=D(2021, 10, 20)) == 0
    assert next_notice_date(facts, POLICY, CAL, today=D(2021, 10, 20)) is None
