"""The fault tests' invariant: every check-in due has exactly its notices, none lost or doubled.

`expected_keys` derives, from `models.ladder.ladder_schedule` (the policy's timeline on the
work calendar) and the days on which passes ran, the notice keys a check-in must have; it does
not call the reconcile code or `decide_notices`. `notice_problems` compares the database with
that expectation (notices, their outbox rows and their domain events) and lists every breach.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import local_date
from models.ladder import ladder_schedule, notice_key
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.policy import SupervisionPolicy
from models.supervision import Assignment, Checkin, Notice

EVENTS_BY_KIND = {
    "request": ("duban.checkin.requested",),
    "reminder": ("duban.checkin.reminded",),
}


def expected_keys(
    *,
    checkin_id: int,
    due_date: date,
    submitted_on: date | None,
    pass_days: Iterable[date],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> set[str]:
    """Keys a check-in must have after passes on `pass_days` (ladder epoch 0).

    A rung fires when some pass day falls in its window [on, until) and the check-in was not
    submitted on or before that day.
    """
    days = sorted(set(pass_days))
    keys: set[str] = set()
    for step in ladder_schedule(due_date, policy, calendar):
        for day in days:
            if submitted_on is not None and submitted_on <= day:
                break
            if day >= step.on and (step.until is None or day < step.until):
                keys.add(notice_key(checkin_id, step.kind, level=step.level))
                break
    return keys


def _events_for(kind: str, level: int) -> tuple[str, ...]:
    if kind in EVENTS_BY_KIND:
        return EVENTS_BY_KIND[kind]
    if level == 1:
        return ("duban.checkin.overdue", "duban.item.escalated")
    return ("duban.item.escalated",)


def notice_problems(
    *,
    session: Session,
    plan_id: int,
    pass_days: Sequence[date],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[str]:
    """Every breach of the invariant for `plan_id` after passes on `pass_days` ([] if none).

    Checks: each live check-in's notice keys equal `expected_keys`; each open assignment has
    one assignment notice; each notice has exactly one outbox row; each check-in notice has
    exactly its domain events (per check-in, type and level).
    """
    problems: list[str] = []
    item_ids = list(session.scalars(select(Item.id).where(Item.plan_id == plan_id)))
    checkins = session.scalars(
        select(Checkin)
        .join(
            Assignment,
            (Assignment.item_id == Checkin.item_id)
            & (Assignment.department_id == Checkin.department_id)
            & Assignment.ended_at.is_(None),
        )
        .where(Checkin.item_id.in_(item_ids), Checkin.status != "cancelled")
    ).all()
    notices = list(session.scalars(select(Notice).where(Notice.item_id.in_(item_ids))))
    by_checkin: defaultdict[int, list[str]] = defaultdict(list)
    for notice in notices:
        if notice.checkin_id is not None:
            by_checkin[notice.checkin_id].append(notice.key)
    expected_total = 0
    for checkin in checkins:
        want = expected_keys(
            checkin_id=checkin.id,
            due_date=checkin.due_date,
            submitted_on=local_date(checkin.submitted_at) if checkin.submitted_at else None,
            pass_days=pass_days,
            policy=policy,
            calendar=calendar,
        )
        expected_total += len(want)
        got = by_checkin.pop(checkin.id, [])
        if sorted(got) != sorted(want):
            problems.append(
                f"checkin {checkin.id} due {checkin.due_date}: lost {sorted(want - set(got))}, "
                f"extra {sorted(set(got) - want)}, doubled {len(got) - len(set(got))}"
            )
    for checkin_id, keys in by_checkin.items():
        problems.append(f"notices {keys} for checkin {checkin_id}, which is not live")
    assigned = Counter(
        session.scalars(
            select(Notice.item_id).where(Notice.item_id.in_(item_ids), Notice.kind == "assignment")
        )
    )
    owed = Counter(
        session.scalars(
            select(Assignment.item_id).where(
                Assignment.item_id.in_(item_ids), Assignment.ended_at.is_(None)
            )
        )
    )
    if assigned != owed:
        problems.append(f"assignment notices per item {dict(assigned)} != owed {dict(owed)}")
    problems.extend(_outbox_problems(session=session, notices=notices))
    problems.extend(
        _event_problems(session=session, notices=notices, checkin_ids={c.id for c in checkins})
    )
    return problems


def _outbox_problems(*, session: Session, notices: Sequence[Notice]) -> list[str]:
    rows = Counter(
        session.scalars(select(OutboxMessage.notice_id).where(OutboxMessage.notice_id.is_not(None)))
    )
    return [
        f"notice {notice.key} has {rows.get(notice.id, 0)} outbox rows"
        for notice in notices
        if rows.get(notice.id, 0) != 1
    ]


def _event_problems(
    *, session: Session, notices: Sequence[Notice], checkin_ids: set[int]
) -> list[str]:
    want: Counter[tuple[str, int, int]] = Counter()
    for notice in notices:
        if notice.checkin_id is None:
            continue
        for event_type in _events_for(notice.kind, notice.level):
            want[(event_type, notice.checkin_id, notice.level)] += 1
    types = ("duban.checkin.requested", "duban.checkin.reminded", "duban.checkin.overdue")
    got: Counter[tuple[str, int, int]] = Counter()
    for event in session.scalars(
        select(DomainEvent).where(DomainEvent.type.in_((*types, "duban.item.escalated")))
    ):
        checkin_id = int(event.payload.get("checkin_id", 0))
        if checkin_id in checkin_ids:
            got[(event.type, checkin_id, int(event.payload.get("level", 0)))] += 1
    return [
        f"events {key}: expected {want.get(key, 0)}, found {got.get(key, 0)}"
        for key in sorted(set(want) | set(got))
        if want.get(key, 0) != got.get(key, 0)
    ]
