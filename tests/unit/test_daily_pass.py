"""The daily pass's pure decision: facts in, actions out, no session and no Prefect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from models.calendar import WorkCalendar
from models.clock import resolve
from models.daily_pass import (
    AssignmentFacts,
    ChunkFacts,
    checkin_slots,
    checkins_to_create,
    decide_chunk,
    is_quarter_end,
    is_year_end,
    item_state,
    phase_on,
    request_horizon,
)
from models.directory import Department
from models.plan import Item, Target
from models.policy import default_policy, parse_policy
from models.schedule import CheckinSpec
from models.supervision import Assignment, Checkin, Submission
from models.vocabulary import Colour, EventType, ItemState, NoticeKind

CALENDAR = WorkCalendar()
POLICY = default_policy()
DUE = date(2021, 6, 30)


def department(number: int, *, office: bool = False) -> Department:
    return Department(
        id=number,
        name=f"部门{number}",
        contact_name=f"联系人{number}",
        contact_emails=[f"c{number}@example.org"],
        leader_name=f"分管{number}",
        leader_email=f"l{number}@example.org",
        head_name="主要负责人",
        head_email="head@example.org",
        is_supervision_office=office,
    )


def facts(
    day: date,
    *,
    colour: str = "none",
    notified: bool = True,
    done: frozenset[str] = frozenset(),
    epoch: int = 0,
    submitted: datetime | None = None,
    assigned: bool = True,
    latest: dict[tuple[int, int], Submission] | None = None,
    targets: list[Target] | None = None,
) -> ChunkFacts:
    item = Item(id=1, plan_id=7, number="4", title="搭建平台", colour=colour)
    lead = department(2)
    checkin = Checkin(
        id=10,
        item_id=1,
        department_id=2,
        phase_key="mobilize",
        seq=1,
        kind="work_plan",
        role="lead",
        due_date=DUE,
        status="pending",
        escalation_level=0,
        submitted_at=submitted,
    )
    assignment = Assignment(id=3, item_id=1, department_id=2, role="lead")
    return ChunkFacts(
        plan_id=7,
        plan_title="工作要点",
        year=2021,
        started_on=date(2021, 5, 24),
        as_of=resolve(day),
        policy=POLICY,
        calendar=CALENDAR,
        items=[item],
        assignments=[AssignmentFacts(assignment, lead, notified)] if assigned else [],
        offices=[department(1, office=True)],
        checkins=[(checkin, lead)],
        epochs={10: epoch} if epoch else {},
        done_keys=done,
        latest=latest or {},
        targets=targets or [],
    )


def test_request_day_records_the_request_its_event_and_a_first_colour() -> None:
    decision = decide_chunk(facts(date(2021, 6, 23)))
    [notice] = decision.notices
    assert (notice.key, notice.kind, notice.checkin_id) == ("checkin:10:request:e0", "request", 10)
    assert notice.recipients == [{"role": "contact", "name": "联系人2", "email": "c2@example.org"}]
    assert notice.reason.startswith("第4项 搭建平台（部门2）：报送截止日为2021-06-30")
    assert [event.type for event in notice.events] == [EventType.CHECKIN_REQUESTED]
    result = decision.results[1]
    assert (result.state, result.colour, result.notices) == (
        ItemState.AWAITING,
        Colour.GREEN,
        ["checkin:10:request:e0"],
    )
    [change] = decision.colours
    assert (change.previous, change.colour, change.event.type) == (
        "none",
        Colour.GREEN,
        EventType.ITEM_STATUS_CHANGED,
    )
    assert decision.levels == {}


def test_catch_up_escalates_every_level_due_and_colours_red() -> None:
    decision = decide_chunk(facts(date(2021, 7, 7), colour="green"))
    assert [(n.kind, n.level) for n in decision.notices] == [
        ("escalation", 1),
        ("escalation", 2),
        ("escalation", 3),
    ]
    head_and_office = decision.notices[2].recipients
    assert [r["role"] for r in head_and_office] == ["head", "office"]
    assert [e.type for e in decision.notices[0].events] == [
        EventType.CHECKIN_OVERDUE,
        EventType.ITEM_ESCALATED,
    ]
    assert decision.notices[1].events[0].payload["level"] == 2
    assert decision.levels == {10: 3}
    assert decision.results[1].state == ItemState.ESCALATED
    assert [c.colour for c in decision.colours] == [Colour.RED]


def test_deciding_again_after_applying_decides_nothing() -> None:
    first = decide_chunk(facts(date(2021, 7, 7)))
    done = frozenset(notice.key for notice in first.notices)
    again = decide_chunk(facts(date(2021, 7, 7), colour="red", done=done))
    assert again.notices == [] and again.colours == []
    assert again.results[1].changed is False


def test_an_extension_restarts_the_ladder_under_new_keys() -> None:
    decision = decide_chunk(facts(date(2021, 6, 23), epoch=1))
    assert [n.key for n in decision.notices] == ["checkin:10:request:e1"]


def test_a_submission_stops_the_ladder() -> None:
    decision = decide_chunk(facts(date(2021, 7, 7), submitted=datetime(2021, 6, 29, tzinfo=UTC)))
    assert decision.notices == [] and decision.levels == {}
    assert decision.results[1].submitted == 1
    assert decision.results[1].state == ItemState.ON_TRACK


def test_an_assignment_not_yet_notified_gets_its_notice_once() -> None:
    decision = decide_chunk(facts(date(2021, 6, 1), notified=False))
    [notice] = decision.notices
    assert (notice.key, notice.kind, notice.checkin_id) == (
        "assign:1:2:3",
        NoticeKind.ASSIGNMENT,
        None,
    )
    assert notice.reason == "第4项 搭建平台：牵头交办"
    assert notice.events[0].payload == {
        "item_id": 1,
        "department_id": 2,
        "role": "lead",
        "assignment_id": 3,
    }
    assert decision.results[1].assignments_notified == 1
    assert decide_chunk(facts(date(2021, 6, 1), notified=True)).notices == []


def test_an_item_without_an_open_assignment_keeps_its_colour() -> None:
    decision = decide_chunk(facts(date(2021, 7, 7), colour="amber", assigned=False))
    assert decision.colours == []
    assert decision.results[1].colour == "amber"


def test_self_reported_status_and_pace_colour_the_item() -> None:
    blocked = Submission(id=5, checkin_id=9, status="blocked", values={})
    decision = decide_chunk(facts(date(2021, 6, 1), latest={(1, 2): blocked}))
    assert decision.results[1].colour == Colour.RED
    behind = Submission(id=6, checkin_id=9, status="on_track", values={"20": 10})
    target = Target(id=20, item_id=1, comparator="ge", value=200.0)
    decision = decide_chunk(facts(date(2021, 9, 1), latest={(1, 2): behind}, targets=[target]))
    assert decision.results[1].colour == Colour.RED  # far behind the straight line


def test_a_policy_changes_the_recipients_of_each_level() -> None:
    policy = parse_policy(
        {"escalation": [{"level": 1, "delay_workdays": 1, "recipients": ["head"]}]}
    )
    decision = decide_chunk(replace(facts(date(2021, 7, 7)), policy=policy))
    [notice] = decision.notices
    assert [r["role"] for r in notice.recipients] == ["head"]


def test_checkins_to_create_skips_existing_and_past_ones() -> None:
    specs = {
        "lead": [
            CheckinSpec("mobilize", 1, "work_plan", date(2021, 6, 30)),
            CheckinSpec("implement", 1, "progress", date(2021, 7, 23)),
            CheckinSpec("implement", 2, "progress", date(2021, 8, 25)),
        ]
    }
    rows = checkins_to_create(
        assignments=[(1, 2, "lead"), (1, 3, "support")],
        specs=specs,
        existing=checkin_slots([(1, 2, "implement", 1)]),
        today=date(2021, 7, 1),
        now=resolve(date(2021, 7, 1)),
    )
    assert [(row["phase_key"], row["seq"], row["status"]) for row in rows] == [
        ("implement", 2, "pending")
    ]


def test_the_small_rules() -> None:
    assert item_state(max_level=2, overdue=1, awaiting=1) == ItemState.ESCALATED
    assert item_state(max_level=1, overdue=1, awaiting=0) == ItemState.OVERDUE
    assert item_state(max_level=0, overdue=0, awaiting=2) == ItemState.AWAITING
    assert item_state(max_level=0, overdue=0, awaiting=0) == ItemState.ON_TRACK
    assert request_horizon(date(2021, 6, 1), POLICY) == date(2021, 6, 25)
    phases = [
        ("mobilize", date(2021, 1, 1), date(2021, 2, 28)),
        ("implement", date(2021, 3, 1), date(2021, 11, 30)),
    ]
    assert phase_on(phases, date(2021, 3, 5)) == "implement"
    assert phase_on(phases, date(2020, 12, 5)) == "mobilize"
    assert phase_on(phases, date(2021, 12, 5)) == "implement"
    assert phase_on([], date(2021, 12, 5)) == "none"
    assert is_quarter_end(date(2021, 3, 31), CALENDAR)
    assert not is_quarter_end(date(2021, 3, 30), CALENDAR)
    assert is_year_end(date(2021, 12, 31), CALENDAR)
