"""The reconcile loop: do for an item what is due at `as_of` and not yet done, once.

`reconcile_items` checks the plan is supervised and runs one pass over a batch of its items
(`tasks.daily_pass.reconcile_chunk`): the facts load in a fixed number of queries, the pure
`models.daily_pass.decide_chunk` says what is due (assignment notices, missing check-ins,
prompts, reminders and escalations, levels, colours, events), and the actions apply in sets
in the caller's transaction. Every notice has a unique business key, so running it again at
the same `as_of`, or twice at once, sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import local_date
from models.daily_pass import ItemResult
from models.errors import DubanError, InputError, NotFoundError
from models.plan import Item, Plan
from models.policy import SupervisionPolicy
from models.vocabulary import ItemState
from tasks.daily_pass import preview_chunk, reconcile_chunk

__all__ = [
    "STATE_AWAITING",
    "STATE_ESCALATED",
    "STATE_ON_TRACK",
    "STATE_OVERDUE",
    "ItemResult",
    "load_supervised_plan",
    "preview_items",
    "reconcile_item",
    "reconcile_items",
]

STATE_ESCALATED = ItemState.ESCALATED.value
STATE_OVERDUE = ItemState.OVERDUE.value
STATE_AWAITING = ItemState.AWAITING.value
STATE_ON_TRACK = ItemState.ON_TRACK.value


def load_supervised_plan(*, session: Session, plan_id: int, today: date) -> Plan:
    """The plan, if it is being supervised and `today` is not before supervision started."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"没有编号为 {plan_id} 的计划。")
    if plan.status != "supervising" or plan.started_at is None:
        raise DubanError(f"计划「{plan.title}」尚未开始督办，请先运行：duban start {plan.id}")
    started = local_date(plan.started_at)
    if today < started:
        raise InputError(
            f"督办时点 {today.isoformat()} 早于计划「{plan.title}」开始督办的日期 "
            f"{started.isoformat()}。"
        )
    return plan


def reconcile_items(
    *,
    session: Session,
    plan_id: int,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemResult]:
    """Reconcile a batch of items of one supervised plan at `as_of` (aware datetime).

    Set-based: a fixed number of statements per batch whatever its size; the emails of the
    batch's new notices are enqueued together. Does not commit. Raises `NotFoundError` for
    an unknown plan or item, `InputError` for an `as_of` before supervision started,
    `DubanError` for a plan not being supervised.
    """
    plan = load_supervised_plan(session=session, plan_id=plan_id, today=local_date(as_of))
    return reconcile_chunk(
        session=session,
        plan=plan,
        item_ids=item_ids,
        as_of=as_of,
        policy=policy,
        calendar=calendar,
    )


def preview_items(
    *,
    session: Session,
    plan_id: int,
    item_ids: Sequence[int],
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemResult]:
    """What `reconcile_items` would do at `as_of`, decided from the facts alone: reads only.

    Raises like `reconcile_items`.
    """
    plan = load_supervised_plan(session=session, plan_id=plan_id, today=local_date(as_of))
    return preview_chunk(
        session=session,
        plan=plan,
        item_ids=item_ids,
        as_of=as_of,
        policy=policy,
        calendar=calendar,
    )


def reconcile_item(
    *,
    session: Session,
    item_id: int,
    as_of: datetime,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> ItemResult:
    """Reconcile one item at `as_of` (see `reconcile_items`); returns its summary."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"没有编号为 {item_id} 的任务。")
    return reconcile_items(
        session=session,
        plan_id=item.plan_id,
        item_ids=[item_id],
        as_of=as_of,
        policy=policy,
        calendar=calendar,
    )[0]
