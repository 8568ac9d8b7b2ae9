"""The Prefect tasks of the supervision flows: each one I/O step on the database it is given.

`flows.supervise` orchestrates; every read and write of a pass is one of these tasks, and
each takes the session factory (`sessions`) of the database to use, so a flow opens its
database once and passes it down. Reconciling a chunk retries (it is idempotent: unique
notice keys); the others are reads or idempotent publishing. `NO_CACHE`: a session factory
is not an input to cache on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.daily_pass import (
    ItemResult,
    item_label,
    phase_on,
    request_horizon,
    submitted_since,
)
from models.db import transaction
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.vocabulary import ItemState
from tasks.calendar_store import work_calendar
from tasks.checkins import items_with_pending_before
from tasks.events import publish_after_pass
from tasks.reconcile import load_supervised_plan, preview_items, reconcile_items
from tasks.status_card import ItemTags, item_tags, plan_table, status_card

Sessions = sessionmaker[Session]


def plan_policy(plan: Plan) -> SupervisionPolicy:
    """The plan's stored policy (the default policy when it has none)."""
    return parse_policy(plan.policy or None)


def _plan(session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"没有编号为 {plan_id} 的计划。")
    return plan


def item_run_label(sessions: Sessions, item_id: int) -> str:
    """`第4项 标题` (at most 120 characters) of an item, for its flow run's name; a closed
    item's name ends with `（已办结）`."""
    with sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            return f"任务 {item_id}"
        suffix = f"（{ItemState.CLOSED.label}）" if item.closed_at is not None else ""
        return item_label(item)[: 120 - len(suffix)] + suffix


def plan_of_item(sessions: Sessions, item_id: int) -> int:
    """The plan id of an item; `NotFoundError` for an unknown item."""
    with sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFoundError(f"没有编号为 {item_id} 的任务。")
        return item.plan_id


def reconcile_now(
    sessions: Sessions, plan_id: int, item_ids: list[int], as_of: datetime
) -> list[ItemResult]:
    """Reconcile items of one plan in one transaction; what the pass did to each item.

    Idempotent (unique notice keys), so a re-run after a crash finishes without duplicates.
    """
    with transaction(sessions) as session:
        plan = _plan(session, plan_id)
        results = reconcile_items(
            session=session,
            plan_id=plan_id,
            item_ids=item_ids,
            as_of=as_of,
            policy=plan_policy(plan),
            calendar=work_calendar(session=session),
        )
    return results


reconcile_chunk = task(
    name="reconcile-items", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE
)(reconcile_now)


def preview_pass(
    sessions: Sessions, plan_id: int, item_ids: list[int], as_of: datetime
) -> list[ItemResult]:
    """What a reconcile at `as_of` would do, decided in pure code from the facts: reads only."""
    with sessions() as session:
        plan = _plan(session, plan_id)
        return preview_items(
            session=session,
            plan_id=plan_id,
            item_ids=item_ids,
            as_of=as_of,
            policy=plan_policy(plan),
            calendar=work_calendar(session=session),
        )


def publish_events(sessions: Sessions, part: tuple[int, int] | None = None) -> int:
    """Emit the pending domain events to Prefect, or leave them to the event relay
    (`tasks.events.publish_after_pass`, by `DUBAN_EVENT_PUBLISHER`).

    A plain call, not a task run: publishing drives Prefect's own clients on a thread of its
    own, and wrapping it in a task run inside a nested async flow (the demo's
    simulate → supervise-plan → supervise-item) left the task's concurrency-slot request
    waiting forever."""
    return publish_after_pass(sessions=sessions, now=clock.now(), part=part)


@dataclass(frozen=True)
class PassScope:
    """What a pass covers: the plan's title, its item count, the candidates and the phase."""

    title: str
    total: int
    use_batch: bool
    candidates: list[int]
    phase_key: str


def _candidates(session: Session, plan: Plan, moment: datetime, *, all_items: bool) -> list[int]:
    if all_items:
        return sorted(session.scalars(select(Item.id).where(Item.plan_id == plan.id)))
    return items_with_pending_before(
        session=session,
        plan_id=plan.id,
        horizon=request_horizon(clock.local_date(moment), plan_policy(plan)),
        submitted_since=submitted_since(moment),
    )


def pass_scope(
    sessions: Sessions, plan_id: int, moment: datetime, batch: bool | None, threshold: int
) -> PassScope:
    """The scope of a pass at `moment`: all items at city scale, or (batch mode, `batch`
    or more than `threshold` items) those with a pending check-in inside the request
    horizon or a recent submission. Raises for an unknown or unstarted plan.

    A plain call, not a task run: on Prefect's SQLite server a task run's state events are
    written by the server's task-run recorder while the pass creates its first
    `supervise-item` subflow (whose parent task run is a `POST /task_runs/`); the two writes
    race, the server answers 503 "database is locked" to about half of those creations and
    the client waits 2 s before retrying (measured: 2.7 s against 1.1 s per simulated day
    with two item runs). A read-only scope gains nothing from a task run."""
    today = clock.local_date(moment)
    with sessions() as session:
        plan = load_supervised_plan(session=session, plan_id=plan_id, today=today)
        total = int(
            session.scalar(select(func.count()).select_from(Item).where(Item.plan_id == plan_id))
            or 0
        )
        use_batch = batch if batch is not None else total > threshold
        phases = sorted(
            (p.key, p.start_date, p.end_date)
            for p in session.scalars(select(Phase).where(Phase.plan_id == plan_id))
        )
        return PassScope(
            title=plan.title,
            total=total,
            use_batch=use_batch,
            candidates=_candidates(session, plan, moment, all_items=not use_batch),
            phase_key=phase_on(phases, today),
        )


def batch_candidates(sessions: Sessions, plan_id: int, moment: datetime) -> list[int]:
    """The batch-mode candidates of a started plan at `moment` (raises if unknown/unstarted)."""
    with sessions() as session:
        plan = load_supervised_plan(
            session=session, plan_id=plan_id, today=clock.local_date(moment)
        )
        return _candidates(session, plan, moment, all_items=False)


def run_tags(sessions: Sessions, item_ids: list[int], phase_key: str) -> dict[int, ItemTags]:
    """Run names and tags of items' flow runs (`tasks.status_card.item_tags`)."""
    with sessions() as session:
        return item_tags(session=session, item_ids=item_ids, phase_key=phase_key)


def item_card(sessions: Sessions, item_id: int, state: str, moment: datetime) -> str:
    """An item's markdown status card at `moment`."""
    with sessions() as session:
        return status_card(
            session=session, item_id=item_id, state=state, today=clock.local_date(moment)
        )


def plan_summary(sessions: Sessions, plan_id: int, moment: datetime) -> list[dict[str, Any]]:
    """The plan's summary table at `moment` (`tasks.status_card.plan_table`)."""
    with sessions() as session:
        return plan_table(session=session, plan_id=plan_id, today=clock.local_date(moment))
