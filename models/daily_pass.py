"""The daily pass as a pure decision: a chunk's facts in, the actions to apply out.

`decide_chunk(facts)` is what a supervision pass does for a chunk of items of one plan at
`as_of`, with no session and no Prefect: the assignment notices not yet sent, the prompts,
reminders and escalations the ladder (`models.ladder`) says are due, each check-in's new
escalation level, each item's colour (`models.rag`) and state, and the domain events of all
of it. `checkins_to_create` says which check-ins the schedule asks for and are missing.
`tasks.daily_pass` loads the facts in a fixed number of queries and applies the actions with
set-based statements; the city-mode preview calls the same functions and writes nothing.

The rules that used to hide in I/O code live here: the item state (`item_state`), the
candidate window (`request_horizon`, `RECENT_SUBMISSION_DAYS`), the phase of a day
(`phase_on`) and the quarter-end / year-end gates (`is_quarter_end`, `is_year_end`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from models.attainment import PaceStatus, pace_status
from models.calendar import WorkCalendar
from models.catch_up import CatchUpSummary, cap_catch_up
from models.clock import local_date
from models.directory import Department
from models.item_schedule import ItemCheckin, stored_schedule
from models.ladder import (
    CheckinFacts,
    CheckinState,
    checkin_state,
    decide_notices,
    escalation_level_due,
)
from models.plan import Item, Target
from models.policy import SupervisionPolicy
from models.rag import ItemSignals, SelfStatus, item_colour
from models.report_review import (
    ladder_epoch,
    review_due_date,
    review_notice_key,
    review_overdue,
)
from models.schedule import CheckinSpec
from models.supervision import Checkin, Submission
from models.vocabulary import (
    AssignmentRole,
    CheckinStatus,
    Colour,
    EventType,
    ItemState,
    NoticeKind,
    RecipientRole,
    SelfStatusValue,
)

__all__ = [
    "RECENT_SUBMISSION_DAYS",
    "SLOT_FIELD",
    "AssignmentFacts",
    "CheckinSlots",
    "ChunkDecision",
    "ChunkFacts",
    "ColourChange",
    "EventAction",
    "ItemResult",
    "NoticeAction",
    "checkin_slot",
    "checkin_slots",
    "checkins_to_create",
    "closed_item_ids",
    "decide_chunk",
    "is_quarter_end",
    "is_year_end",
    "item_label",
    "item_state",
    "phase_on",
    "recipients_for",
    "related",
    "request_horizon",
    "review_escalations",
]

RECENT_SUBMISSION_DAYS = 7
"""A submission this many days old still makes its item a batch-pass candidate."""


def item_label(item: Item) -> str:
    """The name a supervisor knows an item by: `第4项 搭建高水平科技开放交流平台`."""
    return f"第{item.number}项 {item.title}"


def request_horizon(today: date, policy: SupervisionPolicy) -> date:
    """The last due date a pass looks at on `today`: a check-in due later cannot need a
    notice yet (its request comes `request_lead_workdays` working days before it)."""
    return today + timedelta(days=policy.request_lead_workdays * 2 + 14)


def submitted_since(as_of: datetime) -> datetime:
    """Submissions at or after this moment still make an item a batch-pass candidate."""
    return as_of - timedelta(days=RECENT_SUBMISSION_DAYS)


def phase_on(phases: Sequence[tuple[str, date, date]], today: date) -> str:
    """The key of the phase containing `today`, or the nearest upcoming/previous one
    (`phases` in date order; `none` without phases)."""
    for key, start, end in phases:
        if start <= today <= end:
            return key
    upcoming = [key for key, start, _ in phases if start > today]
    if upcoming:
        return upcoming[0]
    return phases[-1][0] if phases else "none"


def is_quarter_end(day: date, calendar: WorkCalendar) -> bool:
    """True if `day` is the last working day of its quarter."""
    quarter = (day.month - 1) // 3 + 1
    return day == calendar.last_workday_of_quarter(day.year, quarter)


def is_year_end(day: date, calendar: WorkCalendar) -> bool:
    """True if `day` is the last working day of its year."""
    return day == calendar.last_workday_of_quarter(day.year, 4)


def closed_item_ids(items: Iterable[Item]) -> frozenset[int]:
    """Ids of the closed (已办结, 销号) items among `items`: the pass sends them nothing,
    creates no check-in for them and keeps their colour; their state is `Closed`."""
    return frozenset(item.id for item in items if item.closed_at is not None)


def item_state(*, max_level: int, overdue: int, awaiting: int) -> ItemState:
    """An item's state from its open check-ins: `Escalated` from level 2, else `Overdue` if
    one is overdue, else `AwaitingCheckin` if one is asked for, else `OnTrack`."""
    if max_level >= 2:
        return ItemState.ESCALATED
    if overdue:
        return ItemState.OVERDUE
    if awaiting:
        return ItemState.AWAITING
    return ItemState.ON_TRACK


def related(kind: str, object_id: int | str, name: str = "") -> dict[str, str]:
    """A Prefect related-resource dict (`duban.<kind>.<id>`, role `kind`, optional name)."""
    value = {"prefect.resource.id": f"duban.{kind}.{object_id}"}
    if name:
        value["prefect.resource.name"] = name
    value["prefect.resource.role"] = kind
    return value


def recipients_for(
    department: Department, roles: Iterable[str], offices: Sequence[Department]
) -> list[dict[str, str]]:
    """`{role, name, email}` for each role (`contact`, `leader`, `head`, `office`).

    A role without an address is skipped; `office` expands to every supervision-office
    department's contacts. Duplicate addresses keep their first role.
    """
    found: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(role: str, name: str, email: str) -> None:
        if email and email not in seen:
            seen.add(email)
            found.append({"role": role, "name": name, "email": email})

    for role in roles:
        if role == RecipientRole.CONTACT:
            for email in department.contact_emails:
                add(role, department.contact_name, str(email))
        elif role == RecipientRole.LEADER:
            add(role, department.leader_name, department.leader_email)
        elif role == RecipientRole.HEAD:
            add(role, department.head_name, department.head_email)
        elif role == RecipientRole.OFFICE:
            for office in offices:
                for email in office.contact_emails:
                    add(role, office.contact_name or office.name, str(email))
    return found


class AssignmentRow(Protocol):
    """What the pass reads of an assignment: an ORM `Assignment`, or a plain row of its
    columns (the pass loads rows; 15,000 ORM objects cost a quiet day a fifth of its time)."""

    @property
    def id(self) -> int: ...
    @property
    def item_id(self) -> int: ...
    @property
    def department_id(self) -> int: ...
    @property
    def role(self) -> AssignmentRole: ...


@dataclass(frozen=True, slots=True)
class AssignmentFacts:
    """An open assignment, its department, and whether its notice was already sent."""

    assignment: AssignmentRow
    department: Department
    notified: bool


@dataclass(frozen=True)
class ChunkFacts:
    """Everything the pass decides from, for a chunk of items of one plan at `as_of`.

    `checkins` are the pending check-ins due by `request_horizon` of open assignments, with
    their department, in (item, due date, id) order; `epochs` the approved extensions per
    check-in id; `done_keys` the notice keys already recorded for those check-ins; `latest`
    the latest submission per (item id, department id) made by `as_of` (`latest_submission`
    defines which); `targets` the
    items' targets. Rows are read only.
    """

    plan_id: int
    plan_title: str
    year: int
    started_on: date
    as_of: datetime
    policy: SupervisionPolicy
    calendar: WorkCalendar
    items: Sequence[Item]
    assignments: Sequence[AssignmentFacts]
    offices: Sequence[Department]
    checkins: Sequence[tuple[Checkin, Department]]
    epochs: Mapping[int, int]
    done_keys: Collection[str]
    latest: Mapping[tuple[int, int], Submission]
    targets: Sequence[Target]
    awaiting_review: Sequence[tuple[Checkin, Department]] = ()
    """Submitted check-ins the policy reviews and the office has not accepted yet (loaded
    only when the policy sets `review.office_workdays`)."""
    review_done_keys: Collection[str] = frozenset()
    """The review-escalation keys already recorded for `awaiting_review`."""


@dataclass(frozen=True, slots=True)
class EventAction:
    """A domain event row to write (see `models.outbox.DomainEvent`)."""

    type: EventType
    resource_id: str
    related: list[dict[str, str]]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NoticeAction:
    """A notice to record under its unique business `key`, with the events written only if
    this insert is the one that records it (a concurrent pass may have won)."""

    key: str
    kind: NoticeKind
    level: int
    item_id: int
    department_id: int
    checkin_id: int | None
    recipients: list[dict[str, str]]
    reason: str
    events: tuple[EventAction, ...]


@dataclass(frozen=True, slots=True)
class ColourChange:
    """An item's colour moves from `previous` to `colour`; `event` is written only by the
    writer whose guarded update changed it."""

    item_id: int
    previous: str
    colour: Colour
    event: EventAction


@dataclass
class ItemResult:
    """What one pass did (or, in a preview, would do) to one item, and its state afterwards."""

    item_id: int
    label: str
    state: str = ItemState.ON_TRACK
    colour: str = "none"
    previous_colour: str = "none"
    assignments_notified: int = 0
    checkins_created: int = 0
    notices: list[str] = field(default_factory=list)
    max_level: int = 0
    overdue: int = 0
    awaiting: int = 0
    pending: int = 0
    submitted: int = 0
    next_due: date | None = None

    @property
    def changed(self) -> bool:
        """True if this pass wrote anything."""
        return bool(
            self.notices
            or self.assignments_notified
            or self.checkins_created
            or self.colour != self.previous_colour
        )


@dataclass
class ChunkDecision:
    """The actions of one chunk: notices (in order), escalation levels to raise (check-in id
    -> level), colour changes, each item's result as if every action applies, and the
    catch-up summaries of escalations the cap held back (`models.catch_up`)."""

    notices: list[NoticeAction] = field(default_factory=list)
    levels: dict[int, int] = field(default_factory=dict)
    colours: list[ColourChange] = field(default_factory=list)
    results: dict[int, ItemResult] = field(default_factory=dict)
    summaries: list[CatchUpSummary] = field(default_factory=list)


SLOT_FIELD = "\x1f"
"""Separates the phase key and the sequence number in a check-in's slot (`checkin_slot`)."""

CheckinSlots = Mapping[tuple[int, int], Set[str]]
"""The check-ins that exist, per `(item id, department id)`: the set of their slots."""


def checkin_slot(phase_key: str, seq: int) -> str:
    """A check-in's place in its department's schedule of an item, `phase␟seq`: unique per
    (item, department), as the table's unique key says."""
    return f"{phase_key}{SLOT_FIELD}{seq}"


def checkin_slots(keys: Iterable[tuple[int, int, str, int]]) -> dict[tuple[int, int], set[str]]:
    """`CheckinSlots` of check-ins given as `(item id, department id, phase key, seq)`."""
    slots: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
    for item_id, department_id, phase_key, seq in keys:
        slots[(item_id, department_id)].add(checkin_slot(phase_key, seq))
    return dict(slots)


_Wanted = tuple[list[tuple[CheckinSpec | ItemCheckin, str]], frozenset[str]]


def _wanted(specs: Iterable[CheckinSpec | ItemCheckin], today: date) -> _Wanted:
    """The specs due from `today` with their slots, and the set of those slots."""
    due = [
        (spec, checkin_slot(spec.phase_key, spec.seq)) for spec in specs if spec.due_date >= today
    ]
    return due, frozenset(slot for _, slot in due)


def checkins_to_create(
    *,
    assignments: Iterable[tuple[int, int, str]],
    specs: Mapping[str, Sequence[CheckinSpec]],
    existing: CheckinSlots,
    today: date,
    now: datetime,
    per_item: Mapping[tuple[int, str], Sequence[ItemCheckin]] | None = None,
) -> list[dict[str, object]]:
    """Rows of the check-ins the schedule asks of each open `(item id, department id, role)`
    and whose slot does not exist yet among `existing` (`checkin_slots`); none due before
    `today` (a department given an item mid-year owes what is due from then on). `per_item`
    holds the schedule of items whose own 完成时限 / 时序进度 change it
    (`models.item_schedule`). An assignment whose every slot exists (the usual day) costs
    one set comparison."""
    rows: list[dict[str, object]] = []
    own = per_item or {}
    due_by_role: dict[str, _Wanted] = {}  # the shared schedules' specs due from today
    nothing: frozenset[str] = frozenset()
    for item_id, department_id, role in assignments:
        key = (item_id, role)
        if key in own:
            wanted, slots = _wanted(own[key], today)
        elif role in due_by_role:
            wanted, slots = due_by_role[role]
        else:
            wanted, slots = due_by_role[role] = _wanted(specs.get(role, ()), today)
        have = existing.get((item_id, department_id), nothing)
        if slots <= have:
            continue
        for spec, slot in wanted:
            if slot in have:
                continue
            rows.append(
                {
                    "item_id": item_id,
                    "department_id": department_id,
                    "phase_key": spec.phase_key,
                    "seq": spec.seq,
                    "kind": spec.kind,
                    "role": role,
                    "due_date": spec.due_date,
                    "original_due_date": spec.due_date,
                    "status": CheckinStatus.PENDING,
                    "escalation_level": 0,
                    "created_at": now,
                    "asks": spec.asks if isinstance(spec, ItemCheckin) else "",
                }
            )
    return rows


def _item_links(item: Item, department: Department) -> list[dict[str, str]]:
    return [
        related("item", item.id, item_label(item)[:200]),
        related("department", department.id, department.name),
        related("plan", item.plan_id),
    ]


def notice_events(
    *, item: Item, department: Department, checkin: Checkin, kind: NoticeKind, level: int
) -> tuple[EventAction, ...]:
    """Domain events of a new check-in notice: requested, reminded, overdue (level 1) and
    escalated."""
    payload: dict[str, Any] = {
        "item_id": item.id,
        "checkin_id": checkin.id,
        "department_id": department.id,
        "due_date": checkin.due_date.isoformat(),
        "kind": checkin.kind,
    }
    if kind == NoticeKind.ESCALATION:
        payload = {**payload, "level": level}
    links = _item_links(item, department)
    on_checkin = f"duban.checkin.{checkin.id}"
    on_item = f"duban.item.{item.id}"
    with_checkin = [related("checkin", checkin.id), *links]
    if kind == NoticeKind.REQUEST:
        types = [(EventType.CHECKIN_REQUESTED, on_checkin)]
    elif kind == NoticeKind.REMINDER:
        types = [(EventType.CHECKIN_REMINDED, on_checkin)]
    elif level == 1:
        types = [(EventType.CHECKIN_OVERDUE, on_checkin), (EventType.ITEM_ESCALATED, on_item)]
    else:
        types = [(EventType.ITEM_ESCALATED, on_item)]
    return tuple(
        EventAction(
            type=event_type,
            resource_id=resource_id,
            related=links if resource_id == on_checkin else with_checkin,
            payload=dict(payload),
        )
        for event_type, resource_id in types
    )


def assignment_key(assignment: AssignmentRow) -> str:
    """The business key of an assignment's notice (one per item, department and row)."""
    return f"assign:{assignment.item_id}:{assignment.department_id}:{assignment.id}"


def assignment_notice(
    *,
    item: Item,
    assignment: AssignmentRow,
    department: Department,
    offices: Sequence[Department],
    plan_id: int,
    plan_title: str,
) -> NoticeAction:
    """The assignment notice (交办) of one open assignment and its `duban.item.assigned`."""
    role = AssignmentRole.of(assignment.role)
    return NoticeAction(
        key=assignment_key(assignment),
        kind=NoticeKind.ASSIGNMENT,
        level=0,
        item_id=item.id,
        department_id=department.id,
        checkin_id=None,
        recipients=recipients_for(department, [RecipientRole.CONTACT], offices),
        reason=f"{item_label(item)}：{role.label if role else assignment.role}交办",
        events=(
            EventAction(
                type=EventType.ITEM_ASSIGNED,
                resource_id=f"duban.item.{item.id}",
                related=[
                    related("department", department.id, department.name),
                    related("plan", plan_id, plan_title),
                ],
                payload={
                    "item_id": item.id,
                    "department_id": department.id,
                    "role": assignment.role,
                    "assignment_id": assignment.id,
                },
            ),
        ),
    )


def deadline_ends(
    items: Iterable[Item], *, start: date, policy: SupervisionPolicy
) -> dict[int, date]:
    """Each item's own dated 完成时限, where it has one after `start` and the policy uses it:
    the end of the straight line its targets' pace is measured against."""
    if not policy.item_deadlines:
        return {}
    ends: dict[int, date] = {}
    for item in items:
        deadline, _ = stored_schedule(item.deadline, ())
        if deadline is not None and deadline.due is not None and deadline.due > start:
            ends[item.id] = deadline.due
    return ends


def reported_signals(
    *,
    latest: Mapping[tuple[int, int], Submission],
    targets: Sequence[Target],
    today: date,
    start: date,
    end: date,
    ends: Mapping[int, date] | None = None,
) -> dict[int, tuple[tuple[SelfStatus, ...], tuple[PaceStatus, ...]]]:
    """Per item: the departments' latest self-reported statuses and each target's pace.

    A target's reported value is the highest of the departments' latest reported values
    (departments that share a target report the item's running total; the highest cannot
    double count). Pace (序时进度) runs on a straight line from `start` to the item's own
    deadline in `ends`, else to `end`.
    """
    statuses: defaultdict[int, list[SelfStatus]] = defaultdict(list)
    values: defaultdict[int, dict[str, float]] = defaultdict(dict)
    for (item_id, _), report in latest.items():
        status = SelfStatusValue.of(report.status)
        if status is not None:
            statuses[item_id].append(status.value)
        for target_id, value in report.values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                known = values[item_id].get(str(target_id))
                values[item_id][str(target_id)] = max(float(value), known or float(value))
    pace: defaultdict[int, list[PaceStatus]] = defaultdict(list)
    for target in targets:
        reported = values[target.item_id].get(str(target.id))
        if reported is not None:
            pace[target.item_id].append(
                pace_status(
                    reported,
                    target.comparator,
                    target.value,
                    start=start,
                    as_of=today,
                    end=(ends or {}).get(target.item_id, end),
                )
            )
    return {
        item_id: (tuple(statuses.get(item_id, ())), tuple(pace.get(item_id, ())))
        for item_id in set(statuses) | set(pace)
    }


def decide_chunk(facts: ChunkFacts) -> ChunkDecision:
    """What the pass does for the chunk at `facts.as_of` (module doc). Pure.

    Items without an open assignment keep their colour. Notice keys already in
    `facts.done_keys` and assignments already notified produce nothing, so deciding again
    after the actions applied returns no notice and no colour change.
    """
    today = local_date(facts.as_of)
    items = {item.id: item for item in facts.items}
    labels = {item.id: item_label(item) for item in facts.items}
    decision = ChunkDecision(
        results={
            item.id: ItemResult(
                item_id=item.id,
                label=labels[item.id],
                colour=item.colour,
                previous_colour=item.colour,
            )
            for item in facts.items
        }
    )
    supervised: set[int] = set()
    closed = closed_item_ids(facts.items)
    for entry in facts.assignments:
        if entry.assignment.item_id in closed:
            continue
        supervised.add(entry.assignment.item_id)
        if entry.notified:
            continue
        item = items[entry.assignment.item_id]
        decision.notices.append(
            assignment_notice(
                item=item,
                assignment=entry.assignment,
                department=entry.department,
                offices=facts.offices,
                plan_id=facts.plan_id,
                plan_title=facts.plan_title,
            )
        )
        decision.results[item.id].assignments_notified += 1
    states: defaultdict[int, list[CheckinState]] = defaultdict(list)
    policy, calendar = facts.policy, facts.calendar
    late: set[str] = set()
    # A check-in's state and level depend only on its due date and submission day: the
    # chunk's thousands of check-ins share a few dozen of those pairs.
    verdicts: dict[tuple[date, date | None], tuple[CheckinState, int]] = {}
    for checkin, department in facts.checkins:
        if checkin.item_id in closed:
            continue
        item = items[checkin.item_id]
        result = decision.results[item.id]
        submitted_at = checkin.submitted_at
        ladder = CheckinFacts(
            checkin_id=checkin.id,
            due_date=checkin.due_date,
            submitted_on=local_date(submitted_at) if submitted_at else None,
            ladder_epoch=ladder_epoch(facts.epochs.get(checkin.id, 0), checkin.returns or 0),
        )
        for due in decide_notices(ladder, policy, calendar, today=today, done_keys=facts.done_keys):
            kind = NoticeKind(due.kind)
            if kind == NoticeKind.ESCALATION and due.due_on < today:
                late.add(due.key)
            decision.notices.append(
                NoticeAction(
                    key=due.key,
                    kind=kind,
                    level=due.level,
                    item_id=item.id,
                    department_id=department.id,
                    checkin_id=checkin.id,
                    recipients=recipients_for(department, due.recipient_roles, facts.offices),
                    reason=f"{labels[item.id]}（{department.name}）：{due.reason}",
                    events=notice_events(
                        item=item,
                        department=department,
                        checkin=checkin,
                        kind=kind,
                        level=due.level,
                    ),
                )
            )
            result.notices.append(due.key)
        verdict = verdicts.get((ladder.due_date, ladder.submitted_on))
        if verdict is None:
            verdict = verdicts[(ladder.due_date, ladder.submitted_on)] = (
                checkin_state(ladder, policy, calendar, today=today),
                escalation_level_due(ladder, policy, calendar, today=today),
            )
        state, level = verdict
        if level > checkin.escalation_level:
            decision.levels[checkin.id] = level
        states[item.id].append(state)
        if state in ("submitted", "submitted_late"):
            result.submitted += 1
            continue
        result.pending += 1
        result.max_level = max(result.max_level, level)
        if state == "overdue":
            result.overdue += 1
        elif state in ("awaiting", "due_today"):
            result.awaiting += 1
        if result.next_due is None or ladder.due_date < result.next_due:
            result.next_due = ladder.due_date
    for action in review_escalations(facts, today=today):
        if action.item_id in closed:
            continue
        decision.notices.append(action)
        decision.results[action.item_id].notices.append(action.key)
    signals = reported_signals(
        latest=facts.latest,
        targets=facts.targets,
        today=today,
        start=facts.started_on,
        end=date(facts.year, 12, 31),
        ends=deadline_ends(facts.items, start=facts.started_on, policy=facts.policy),
    )
    colours: dict[ItemSignals, Colour] = {}
    for item in facts.items:
        result = decision.results[item.id]
        result.state = item_state(
            max_level=result.max_level, overdue=result.overdue, awaiting=result.awaiting
        )
        if item.id in closed:
            result.state = ItemState.CLOSED
        if item.id not in supervised:
            continue
        statuses, pace = signals.get(item.id, ((), ()))
        signal = ItemSignals(
            checkin_states=tuple(states[item.id]),
            escalation_level=result.max_level,
            department_statuses=statuses,
            pace=pace,
        )
        colour = colours.get(signal)
        if colour is None:  # items with the same signals (most of a chunk) share a colour
            colour = colours[signal] = Colour(item_colour(signal))
        result.colour = colour
        if colour != item.colour:
            decision.colours.append(
                ColourChange(
                    item_id=item.id,
                    previous=item.colour,
                    colour=colour,
                    event=EventAction(
                        type=EventType.ITEM_STATUS_CHANGED,
                        resource_id=f"duban.item.{item.id}",
                        related=[related("plan", item.plan_id)],
                        payload={
                            "item_id": item.id,
                            "previous": item.colour,
                            "colour": colour.value,
                            "state": result.state,
                        },
                    ),
                )
            )
    if late:
        decision.notices, decision.summaries = cap_catch_up(
            decision.notices,
            late=late,
            limit=policy.catch_up_limit,
            plan_id=facts.plan_id,
            today=today,
            first_item_id=min(items),
            labels=labels,
        )
    return decision


def review_escalations(facts: ChunkFacts, *, today: date) -> list[NoticeAction]:
    """Reports the office left unreviewed past `review.office_workdays` (审核超时): one
    notice each per review round (`models.report_review.review_notice_key`), to every
    supervision office's 主要负责人 with the office's contacts copied, and its
    `duban.checkin.review_overdue` event. Keys in `facts.review_done_keys` produce nothing."""
    rule = facts.policy.review
    items = {item.id: item for item in facts.items}
    actions: list[NoticeAction] = []
    for checkin, department in facts.awaiting_review:
        item = items.get(checkin.item_id)
        if item is None or checkin.submitted_at is None:
            continue
        arrived = local_date(checkin.submitted_at)
        if not review_overdue(rule, facts.calendar, submitted_on=arrived, today=today):
            continue
        key = review_notice_key(checkin.id, checkin.returns or 0)
        if key in facts.review_done_keys:
            continue
        recipients: list[dict[str, str]] = []
        for office in facts.offices:
            for recipient in recipients_for(
                office, [RecipientRole.HEAD, RecipientRole.OFFICE], facts.offices
            ):
                if recipient["email"] not in {r["email"] for r in recipients}:
                    recipients.append(recipient)
        due = review_due_date(rule, facts.calendar, submitted_on=arrived)
        links = _item_links(item, department)
        actions.append(
            NoticeAction(
                key=key,
                kind=NoticeKind.REVIEW_OVERDUE,
                level=0,
                item_id=item.id,
                department_id=department.id,
                checkin_id=checkin.id,
                recipients=recipients,
                reason=(
                    f"{item_label(item)}（{department.name}）：{arrived}报送，"
                    f"应于{due}前审核，至今未审核，督促督查室主要负责人"
                ),
                events=(
                    EventAction(
                        type=EventType.CHECKIN_REVIEW_OVERDUE,
                        resource_id=f"duban.checkin.{checkin.id}",
                        related=links,
                        payload={
                            "checkin_id": checkin.id,
                            "item_id": item.id,
                            "department_id": department.id,
                            "submitted_on": arrived.isoformat(),
                            "review_due": due.isoformat() if due else None,
                            "returns": checkin.returns or 0,
                        },
                    ),
                ),
            )
        )
    return actions
