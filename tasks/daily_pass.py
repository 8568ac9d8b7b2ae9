"""The daily pass's I/O: load a chunk's facts in a fixed number of queries, apply in sets.

`reconcile_chunk` is one pass over a chunk of items: it loads the facts
(`load_chunk_facts`), inserts the missing check-ins (one statement), loads the check-ins the
ladder looks at, asks `models.daily_pass.decide_chunk` what to do, and applies the actions
(`apply_decision`) with set-based statements: one `INSERT … ON CONFLICT DO NOTHING
RETURNING` for the notices (a key a concurrent pass recorded first is skipped, with its
events and email), one UPDATE per escalation level, one guarded UPDATE per colour change
pair, one INSERT for the domain events and one for the emails, which compose from the rows
already loaded. The number of statements does not grow with the chunk's items (up to the
drivers' page of 1,000 rows per INSERT … RETURNING). Nothing commits here.
"""

from __future__ import annotations

import gc
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

from models.calendar import WorkCalendar
from models.clock import local_date
from models.daily_pass import (
    SLOT_FIELD,
    AssignmentFacts,
    CheckinSlots,
    ChunkDecision,
    ChunkFacts,
    EventAction,
    ItemResult,
    NoticeAction,
    assignment_key,
    checkins_to_create,
    closed_item_ids,
    decide_chunk,
    request_horizon,
)
from models.directory import Department
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy
from models.schedule import CheckinSpec, plan_checkins
from models.supervision import LATEST_FIRST, Assignment, Checkin, Extension, Notice, Submission
from models.vocabulary import AssignmentRole, CheckinStatus, ExtensionDecision, NoticeKind
from notifications.chat import escalation_chat_messages
from notifications.compose import escalation_label, insert_notice_emails, messages_from_rows
from notifications.context import ContextRows, next_pending_checkins
from notifications.outbox import NewMessage, insert_messages
from tasks.catch_up import record_summaries
from tasks.checkins import own_schedules, phase_windows
from tasks.digest import hold_for_digest
from tasks.orders import issue_orders
from tasks.report_review import enqueue_review_escalation_emails, review_keys, review_pass_facts
from tasks.sql import in_ids, insert_events, insert_rows, table_of


@dataclass(frozen=True)
class LoadedChunk:
    """A chunk's facts, the rows its emails compose from (plan phases, departments), the
    schedule's specs by role and the slots (`checkin_slot`) of the check-ins due from
    today on (only specs due from today are created, and an extension only moves a
    due date later, so an existing row of such a spec is always among them)."""

    facts: ChunkFacts
    phases: list[Phase]
    departments: dict[int, Department]
    specs: dict[str, list[CheckinSpec]]
    existing: CheckinSlots


def latest_submissions(
    *, session: Session, item_ids: Sequence[int], as_of: datetime
) -> dict[tuple[int, int], Submission]:
    """The latest submission (`models.supervision.LATEST_FIRST`) made by `as_of` of each
    (item id, department id) among `item_ids`, in one query."""
    ranked = (
        select(
            Submission.id.label("row_id"),
            func.row_number()
            .over(partition_by=(Checkin.item_id, Checkin.department_id), order_by=LATEST_FIRST)
            .label("rank"),
        )
        .join(Checkin, Submission.checkin_id == Checkin.id)
        .where(in_ids(Checkin.item_id, item_ids), Submission.submitted_at <= as_of)
        .subquery()
    )
    rows = session.execute(
        select(Submission, Checkin.item_id, Checkin.department_id)
        .join(ranked, ranked.c.row_id == Submission.id)
        .join(Checkin, Checkin.id == Submission.checkin_id)
        .where(ranked.c.rank == 1)
    ).tuples()
    return {(item_id, department_id): row for row, item_id, department_id in rows}


def load_chunk_facts(
    *,
    session: Session,
    plan: Plan,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> LoadedChunk:
    """The facts of `item_ids` of `plan` at `as_of`, read in a fixed number of queries.

    Raises `NotFoundError` naming the first id that is not an item of the plan. Reads only.
    """
    items = list(
        session.scalars(
            select(Item)
            .where(in_ids(Item.id, item_ids), Item.plan_id == plan.id)
            .options(selectinload(Item.targets))
        )
    )
    for item in items:  # each is of `plan` (the query says so): no query to load it again
        set_committed_value(item, "plan", plan)
    found = {item.id for item in items}
    missing = sorted(set(item_ids) - found)
    if missing:
        raise NotFoundError(f"计划 {plan.id} 中没有编号为 {missing[0]} 的任务。")
    ids = sorted(found)
    open_assignment = in_ids(Assignment.item_id, ids) & Assignment.ended_at.is_(None)
    open_rows = list(
        session.execute(
            select(Assignment.id, Assignment.item_id, Assignment.department_id, Assignment.role)
            .where(open_assignment)
            .order_by(Assignment.id)
        )
    )
    # Departments once each (not one per assignment row: the identity map's per-row check
    # of a repeated entity costs more than loading it), by the ids the assignments name (an
    # `IN (subquery)` of the assignments was a nested loop over both on PostgreSQL without
    # statistics).
    departments = {
        department.id: department
        for department in session.scalars(
            select(Department)
            .where(in_ids(Department.id, {row.department_id for row in open_rows}))
            .order_by(Department.id)
        )
    }
    assignments = [(assignment, departments[assignment.department_id]) for assignment in open_rows]
    sent = set(
        session.scalars(
            select(Notice.key).where(
                in_ids(Notice.item_id, ids), Notice.kind == NoticeKind.ASSIGNMENT
            )
        )
    )
    offices = list(
        session.scalars(
            select(Department)
            .where(Department.is_supervision_office.is_(True))
            .order_by(Department.id)
        )
    )
    phases = list(session.scalars(select(Phase).where(Phase.plan_id == plan.id).order_by(Phase.id)))
    windows = phase_windows(phases=phases, policy=policy, year=plan.year)
    not_before = local_date(plan.started_at or as_of)
    specs = {
        role.value: plan_checkins(windows, policy, calendar, role=role.value, not_before=not_before)
        for role in AssignmentRole
    }
    existing = checkin_keys_from(session=session, item_ids=ids, today=local_date(as_of))
    latest = latest_submissions(session=session, item_ids=ids, as_of=as_of)
    # Review (审核): reports waiting past the office's time (no query unless the policy
    # chases the office).
    awaiting_review, review_done = review_pass_facts(session=session, item_ids=ids, policy=policy)
    departments.update((department.id, department) for _, department in awaiting_review)
    facts = ChunkFacts(
        plan_id=plan.id,
        plan_title=plan.title,
        year=plan.year,
        started_on=not_before,
        as_of=as_of,
        policy=policy,
        calendar=calendar,
        items=items,
        assignments=[
            AssignmentFacts(assignment, department, assignment_key(assignment) in sent)
            for assignment, department in assignments
        ],
        offices=offices,
        checkins=(),
        epochs={},
        done_keys=frozenset(),
        latest=latest,
        targets=[target for item in items for target in item.targets],
        awaiting_review=awaiting_review,
        review_done_keys=review_done,
    )
    loaded = LoadedChunk(
        facts=facts, phases=phases, departments=departments, specs=specs, existing=existing
    )
    return with_open_checkins(session=session, loaded=loaded)


_ROW = "\x1e"


def checkin_keys_from(*, session: Session, item_ids: Sequence[int], today: date) -> CheckinSlots:
    """The slots (`checkin_slot`) of every check-in of `item_ids` due from `today` on, per
    (item, department), in one statement that returns one aggregated string per (item,
    department) (a chunk has ~18,000 of them in January; one result row per key cost most
    of a quiet pass, and splitting the strings into keys most of the rest)."""
    return {
        (item_id, department_id): set(joined.split(_ROW))
        for item_id, department_id, joined in session.execute(
            select(
                Checkin.item_id,
                Checkin.department_id,
                func.aggregate_strings(
                    Checkin.phase_key + SLOT_FIELD + cast(Checkin.seq, String), _ROW
                ),
            )
            .where(in_ids(Checkin.item_id, item_ids), Checkin.due_date >= today)
            .group_by(Checkin.item_id, Checkin.department_id)
        ).tuples()
        if joined
    }


def with_open_checkins(*, session: Session, loaded: LoadedChunk) -> LoadedChunk:
    """`loaded` with the check-ins the ladder looks at (pending, due by the request horizon,
    of an open assignment), their ladder epochs (approved extensions) and their notice
    keys, in one query: the epoch and the keys are correlated subqueries on each check-in's
    row (the pass reads epochs and keys of these check-ins only)."""
    facts = loaded.facts
    ids = [item.id for item in facts.items]
    horizon = request_horizon(local_date(facts.as_of), facts.policy)
    epoch = (
        select(func.count())
        .where(Extension.checkin_id == Checkin.id, Extension.decision == ExtensionDecision.APPROVED)
        .scalar_subquery()
    )
    keys = (
        select(func.aggregate_strings(Notice.key, _ROW))
        .where(Notice.checkin_id == Checkin.id)
        .scalar_subquery()
    )
    rows: list[tuple[Checkin, Department]] = []
    epochs: dict[int, int] = {}
    done: set[str] = set()
    # Each check-in is of an open assignment of the chunk, so its department is loaded.
    for checkin, approved, joined in session.execute(
        select(Checkin, epoch, keys)
        .join(
            Assignment,
            (Assignment.item_id == Checkin.item_id)
            & (Assignment.department_id == Checkin.department_id)
            & Assignment.ended_at.is_(None),
        )
        .where(
            in_ids(Checkin.item_id, ids),
            Checkin.status == CheckinStatus.PENDING,
            Checkin.due_date <= horizon,
        )
        .order_by(Checkin.item_id, Checkin.due_date, Checkin.id)
    ).tuples():
        rows.append((checkin, loaded.departments[checkin.department_id]))
        if approved:
            epochs[checkin.id] = int(approved)
        if joined:
            done.update(joined.split(_ROW))
    return replace(
        loaded, facts=replace(facts, checkins=rows, epochs=epochs, done_keys=frozenset(done))
    )


def insert_checkins(*, session: Session, rows: list[dict[str, object]]) -> None:
    """Insert check-in rows in one statement (`insert_rows`); a row a concurrent pass
    inserted is ignored."""
    insert_rows(session=session, table=table_of(Checkin), rows=rows, ignore_conflicts=True)


def insert_notices(
    *, session: Session, actions: Sequence[NoticeAction], now: datetime
) -> tuple[list[Notice], list[dict[str, object]]]:
    """Insert the notices of `actions` in one `INSERT … ON CONFLICT DO NOTHING RETURNING`
    (`insert_rows`: one JSON recordset parameter on PostgreSQL).

    Returns the notices this insert recorded (transient rows carrying their new ids, for
    composing their emails) and the event rows of those notices, in `actions` order; a key
    that exists already (an earlier or concurrent pass) is skipped with its events.
    """
    if not actions:
        return [], []
    notices = table_of(Notice)
    inserted: dict[str, int] = dict(
        insert_rows(
            session=session,
            table=notices,
            rows=[
                {
                    "key": action.key,
                    "kind": action.kind.value,
                    "level": action.level,
                    "item_id": action.item_id,
                    "department_id": action.department_id,
                    "checkin_id": action.checkin_id,
                    "recipients": action.recipients,
                    "reason": action.reason,
                    "decided_at": now,
                }
                for action in actions
            ],
            ignore_conflicts=True,
            returning=("key", "id"),
        )
    )
    recorded: list[Notice] = []
    events: list[dict[str, object]] = []
    for action in actions:
        notice_id = inserted.get(action.key)
        if notice_id is None:
            continue
        recorded.append(
            _transient_notice(
                id=notice_id,
                key=action.key,
                kind=action.kind.value,
                level=action.level,
                item_id=action.item_id,
                department_id=action.department_id,
                checkin_id=action.checkin_id,
                recipients=action.recipients,
                reason=action.reason,
                decided_at=now,
            )
        )
        events.extend(event_row(event, now) for event in action.events)
    return recorded, events


def _transient_notice(**values: object) -> Notice:
    """A transient `Notice` holding `values` as its loaded state, as the ORM builds a row
    it reads (`Notice(**values)` runs an attribute event per column: 15,000 of them cost a
    request day ~0.15 s). Never added to a session; setting an attribute later works as on
    any instance."""
    notice: Notice = Notice.__mapper__.class_manager.new_instance()
    instance_dict(notice).update(values)
    return notice


def apply_decision(
    *,
    session: Session,
    loaded: LoadedChunk,
    decision: ChunkDecision,
    now: datetime,
) -> dict[int, ItemResult]:
    """Write `decision` in sets (module doc) and return each item's result as applied.

    A notice whose key exists already (a concurrent pass) is left out of the results with
    its events and email; a colour another writer changed first records no event. Loaded
    check-ins and items get their new level and colour without being marked dirty.
    """
    facts = loaded.facts
    results = decision.results
    recorded, events = insert_notices(session=session, actions=decision.notices, now=now)
    kept = {notice.key for notice in recorded}
    for action in decision.notices:
        if action.key not in kept:
            result = results[action.item_id]
            if action.kind == NoticeKind.ASSIGNMENT:
                result.assignments_notified -= 1
            else:
                result.notices.remove(action.key)
    by_level: defaultdict[int, list[int]] = defaultdict(list)
    for checkin_id, level in decision.levels.items():
        by_level[level].append(checkin_id)
    for level, checkin_ids in sorted(by_level.items()):
        session.execute(
            update(Checkin)
            .where(in_ids(Checkin.id, checkin_ids), Checkin.escalation_level < level)
            .values(escalation_level=level)
            .execution_options(synchronize_session=False)
        )
    checkins = {checkin.id: checkin for checkin, _ in facts.checkins}
    for checkin_id, level in decision.levels.items():
        set_committed_value(checkins[checkin_id], "escalation_level", level)
    by_pair: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    changes = {change.item_id: change for change in decision.colours}
    for change in decision.colours:
        by_pair[(change.previous, change.colour.value)].append(change.item_id)
    won: set[int] = set()
    for (previous, colour), item_ids in sorted(by_pair.items()):
        won.update(
            session.scalars(
                update(Item)
                .where(in_ids(Item.id, item_ids), Item.colour == previous)
                .values(colour=colour)
                .returning(Item.id)
                .execution_options(synchronize_session=False)
            )
        )
    items = {item.id: item for item in facts.items}
    for item_id in sorted(won):
        events.append(event_row(changes[item_id].event, now))
        set_committed_value(items[item_id], "colour", changes[item_id].colour.value)
    insert_events(session=session, rows=events)
    outgoing: list[NewMessage] = record_summaries(
        session=session,
        summaries=decision.summaries,
        plan_title=facts.plan_title,
        organisation=next(iter(items.values())).plan.organisation if items else "",
        now=now,
    )
    if recorded:
        orders = issue_orders(
            session=session,
            notices=recorded,
            items=items,
            departments=loaded.departments,
            checkins=checkins,
            calendar=facts.calendar,
            now=now,
        )
        # Digest delivery (tasks.digest): held notices wait for the end-of-pass digest.
        single = hold_for_digest(
            session=session,
            notices=recorded,
            policy=facts.policy,
            now=now,
            attachments=orders,
            departments=loaded.departments,
        )
        rows = ContextRows(
            items=items,
            phases={facts.plan_id: loaded.phases},
            latest=dict(facts.latest),
            next_pending=_next_pending(session, single),
        )
        messages = messages_from_rows(
            notices=single,
            rows=rows,
            checkins=checkins,
            departments=loaded.departments,
            now=now,
            attachments=orders,
        )
        messages += escalation_chat_messages(
            notices=recorded,
            items=items,
            checkins=checkins,
            departments=loaded.departments,
            offices=facts.offices,
            policy=facts.policy,
            level_label={
                rung.level: escalation_label(facts.policy, rung.level)
                for rung in facts.policy.escalation
            },
        )
        outgoing = messages + outgoing
    if outgoing:
        insert_messages(session=session, messages=outgoing, now=now)
    return results


def record_notice_emails(
    *,
    session: Session,
    notices: Sequence[Notice],
    items: Mapping[int, Item],
    departments: Mapping[int, Department],
    now: datetime,
) -> int:
    """Compose and insert the emails of new `notices` of `items` (plan and targets loaded),
    reading the plans' phases, the latest submissions and the next pending check-ins in
    three queries; returns rows added. Does not commit."""
    if not notices:
        return 0
    plan_ids = sorted({item.plan_id for item in items.values()})
    phases: defaultdict[int, list[Phase]] = defaultdict(list)
    for phase in session.scalars(
        select(Phase).where(Phase.plan_id.in_(plan_ids)).order_by(Phase.id)
    ):
        phases[phase.plan_id].append(phase)
    rows = ContextRows(
        items=dict(items),
        phases=dict(phases),
        latest=latest_submissions(session=session, item_ids=sorted(items), as_of=now),
        next_pending=_next_pending(session, notices),
    )
    return insert_notice_emails(
        session=session,
        notices=notices,
        rows=rows,
        checkins={},
        departments=departments,
        now=now,
    )


def _next_pending(session: Session, notices: Sequence[Notice]) -> dict[tuple[int, int], Checkin]:
    pairs = {
        (notice.item_id, notice.department_id)
        for notice in notices
        if notice.checkin_id is None and notice.item_id is not None and notice.department_id
    }
    return next_pending_checkins(session, pairs=pairs) if pairs else {}


def event_row(event: EventAction, now: datetime) -> dict[str, object]:
    """The `domain_event` row of `event`, occurring and created at `now`."""
    return {
        "type": event.type.value,
        "resource_id": event.resource_id,
        "related": event.related,
        "payload": event.payload,
        "occurred_at": now,
        "created_at": now,
    }


def _missing_checkins(loaded: LoadedChunk) -> list[dict[str, object]]:
    as_of = loaded.facts.as_of
    facts = loaded.facts
    windows = phase_windows(phases=loaded.phases, policy=facts.policy, year=facts.year)
    per_item = own_schedules(
        items=facts.items,
        windows=windows,
        specs=loaded.specs,
        policy=facts.policy,
        calendar=facts.calendar,
    )
    closed = closed_item_ids(facts.items)
    return checkins_to_create(
        per_item=per_item,
        assignments=[
            (entry.assignment.item_id, entry.assignment.department_id, entry.assignment.role)
            for entry in loaded.facts.assignments
            if entry.assignment.item_id not in closed
        ],
        specs=loaded.specs,
        existing=loaded.existing,
        today=local_date(as_of),
        now=as_of,
    )


_PAUSE_LOCK = threading.Lock()
_pauses = [0, False]  # chunks inside `collector_paused`, whether the first one disabled gc


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chunk runs, and resume it after.

    A chunk allocates hundreds of thousands of small containers (rows, dicts, template
    contexts) that reference counting frees; the collector still runs on the allocation
    count, and each of its full collections walks the whole heap (Prefect's and
    SQLAlchemy's modules included): a fifth of a pass's CPU. Paused, it catches up once
    afterwards on what one chunk left. Threads share the collector: it resumes when the
    last chunk inside leaves, and only if the first one found it running.
    """
    with _PAUSE_LOCK:
        if _pauses[0] == 0:
            _pauses[1] = gc.isenabled()
            gc.disable()
        _pauses[0] += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _pauses[0] -= 1
            if _pauses[0] == 0 and _pauses[1]:
                gc.enable()


@collector_paused()
def reconcile_chunk(
    *,
    session: Session,
    plan: Plan,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemResult]:
    """One pass over `item_ids` of the supervised `plan` at `as_of` (module doc), in the
    caller's transaction; returns each item's result in `item_ids` order. The garbage
    collector is paused meanwhile (`collector_paused`)."""
    loaded = load_chunk_facts(
        session=session, plan=plan, item_ids=item_ids, as_of=as_of, policy=policy, calendar=calendar
    )
    new = _missing_checkins(loaded)
    if new:
        insert_checkins(session=session, rows=new)
        loaded = with_open_checkins(session=session, loaded=loaded)
    decision = decide_chunk(loaded.facts)
    for row in new:
        decision.results[int(str(row["item_id"]))].checkins_created += 1
    results = apply_decision(session=session, loaded=loaded, decision=decision, now=as_of)
    _review_escalation_emails(loaded=loaded, results=results, session=session, now=as_of)
    return [results[item_id] for item_id in item_ids]


def _review_escalation_emails(
    *, session: Session, loaded: LoadedChunk, results: Mapping[int, ItemResult], now: datetime
) -> None:
    """The emails of the review escalations (审核超时) this pass recorded."""
    keys = review_keys(key for result in results.values() for key in result.notices)
    if keys:
        facts = loaded.facts
        enqueue_review_escalation_emails(
            session=session,
            keys=keys,
            items={item.id: item for item in facts.items},
            checkins={checkin.id: checkin for checkin, _ in facts.awaiting_review},
            departments=dict(loaded.departments),
            latest=facts.latest,
            calendar=facts.calendar,
            policy=facts.policy,
            now=now,
        )


def preview_chunk(
    *,
    session: Session,
    plan: Plan,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemResult]:
    """What `reconcile_chunk` would do, decided from the facts alone: reads only.

    Check-ins that would be created count in `checkins_created` (their own notices are
    not foreseen, which does not change whether an item has something to do).
    """
    with collector_paused():
        loaded = load_chunk_facts(
            session=session,
            plan=plan,
            item_ids=item_ids,
            as_of=as_of,
            policy=policy,
            calendar=calendar,
        )
        decision = decide_chunk(loaded.facts)
        for row in _missing_checkins(loaded):
            decision.results[int(str(row["item_id"]))].checkins_created += 1
        return [decision.results[item_id] for item_id in item_ids]
