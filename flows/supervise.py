"""Supervision flows: `supervise_item` (the reconcile loop of one item) and `supervise_plan`.

At city scale every item with something to do gets its own `supervise_item` flow run named
for the item and tagged by plan, section, lead departments and phase. At province scale
(`batch`, automatic above `BATCH_THRESHOLD` candidate items) the pass reconciles items in
chunks, one task run per chunk, so the number of Prefect runs grows with chunks, not items
(see docs/scaling.md). The database is the clock: flows only read `as_of`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from prefect import State, flow, tags, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.runtime import Store, store_for
from models import clock
from models.calendar import default_calendar
from models.db import transaction
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.settings import get_settings
from tasks.checkins import items_with_pending_before
from tasks.events import publish_pending_events
from tasks.reconcile import ItemResult, load_supervised_plan, reconcile_items
from tasks.status_card import item_tags, phase_on, plan_table, status_card

BATCH_THRESHOLD = 200
CHUNK_SIZE = 500
RECENT_SUBMISSION_DAYS = 7


def _store() -> Store:
    return store_for(get_settings().effective_database_url)


def _policy(plan: Plan) -> SupervisionPolicy:
    return parse_policy(plan.policy or None)


def _item_run_name() -> str:
    """Flow run name of `supervise_item`: the item's label, read from the database."""
    item_id = int(flow_run.parameters.get("item_id", 0))
    with _store().sessions() as session:
        item = session.get(Item, item_id)
        return f"第{item.number}项 {item.title}"[:120] if item else f"任务 {item_id}"


def _plan_run_name() -> str:
    as_of = flow_run.parameters.get("as_of")
    day = clock.local_date(clock.resolve(as_of)).isoformat() if as_of else "今日"
    return f"督办巡检 计划{flow_run.parameters.get('plan_id')} {day}"


def _reconcile_in(
    session: Session, plan_id: int, item_ids: list[int], as_of: datetime
) -> list[ItemResult]:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFoundError(f"没有编号为 {plan_id} 的计划。")
    return reconcile_items(
        session=session,
        plan_id=plan_id,
        item_ids=item_ids,
        as_of=as_of,
        policy=_policy(plan),
        calendar=default_calendar(),
    )


def reconcile_now(plan_id: int, item_ids: list[int], as_of: datetime) -> list[dict[str, Any]]:
    """Reconcile items of one plan in one transaction; returns each item's summary as a dict.

    Idempotent (unique notice keys), so a re-run after a crash finishes without duplicates.
    """
    with transaction(_store().sessions) as session:
        results = _reconcile_in(session, plan_id, item_ids, as_of)
    return [asdict(result) for result in results]


reconcile_chunk = task(name="reconcile-items", retries=2, retry_delay_seconds=1)(reconcile_now)


def preview_items(*, plan_id: int, item_ids: list[int], as_of: datetime) -> list[ItemResult]:
    """What a reconcile at `as_of` would do, computed in a transaction that is rolled back."""
    with _store().sessions() as session, session.begin():
        results = _reconcile_in(session, plan_id, item_ids, as_of)
        session.rollback()
    return results


def _publish() -> int:
    return publish_pending_events(sessions=_store().sessions, now=clock.now())


@flow(name="supervise-item", flow_run_name=_item_run_name)
async def supervise_item(item_id: int, as_of: datetime | None = None) -> State[Any]:
    """Reconcile one item at `as_of` (default now), emit its events, leave its status card.

    Finishes in a Completed state named `Escalated`, `Overdue`, `AwaitingCheckin` or
    `OnTrack`. Running it again at the same `as_of` changes nothing.
    """
    moment = clock.resolve(as_of)
    with _store().sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFoundError(f"没有编号为 {item_id} 的任务。")
        plan_id = item.plan_id
    summary = reconcile_now(plan_id, [item_id], moment)[0]
    _publish()
    today = clock.local_date(moment)
    with _store().sessions() as session:
        card = status_card(session=session, item_id=item_id, state=summary["state"], today=today)
    await acreate_markdown_artifact(
        markdown=card, key=f"duban-item-{item_id}", description=summary["label"][:200]
    )
    message = (
        f"{summary['label']}：{summary['colour']}，新通知 {len(summary['notices'])} 条，"
        f"逾期 {summary['overdue']}，督办级别 {summary['max_level']}"
    )
    return Completed(name=summary["state"], message=message)


def _candidates(session: Session, plan: Plan, moment: datetime, *, all_items: bool) -> list[int]:
    """Items that may have something to do: all of them, or (at scale) those with a pending
    check-in inside the request horizon or a submission in the last days."""
    if all_items:
        return sorted(session.scalars(select(Item.id).where(Item.plan_id == plan.id)))
    policy = _policy(plan)
    horizon = clock.local_date(moment) + timedelta(days=policy.request_lead_workdays * 2 + 14)
    return items_with_pending_before(
        session=session,
        plan_id=plan.id,
        horizon=horizon,
        submitted_since=moment - timedelta(days=RECENT_SUBMISSION_DAYS),
    )


async def _run_batches(plan_id: int, candidates: list[int], moment: datetime) -> list[ItemResult]:
    results: list[ItemResult] = []
    for number, start in enumerate(range(0, len(candidates), CHUNK_SIZE), start=1):
        chunk = candidates[start : start + CHUNK_SIZE]
        named = reconcile_chunk.with_options(
            task_run_name=f"批次{number}（任务 {chunk[0]}–{chunk[-1]}，共{len(chunk)}项）"
        )
        results.extend(ItemResult(**row) for row in named(plan_id, chunk, moment))
    _publish()
    changed = [result for result in results if result.changed]
    if changed:
        await acreate_table_artifact(
            table=[
                {
                    "任务": result.label[:60],
                    "状态": result.state,
                    "红黄绿灯": result.colour,
                    "新通知": len(result.notices),
                    "逾期": result.overdue,
                    "督办级别": result.max_level,
                }
                for result in changed
            ],
            key=f"duban-plan-{plan_id}-changes",
            description=f"本次巡检有变化的任务（{len(changed)}项）",
        )
    return results


@flow(name="supervise-plan", flow_run_name=_plan_run_name)
async def supervise_plan(
    plan_id: int, as_of: datetime | None = None, batch: bool | None = None
) -> State[Any]:
    """One supervision pass over a plan at `as_of` (default now).

    City scale: a `supervise_item` flow run per item with something to do, named for the
    item and tagged plan/section/departments/phase. Batch mode (`batch=True`, or automatic
    above `BATCH_THRESHOLD` items): chunks of `CHUNK_SIZE` items, one task run each. Leaves a
    table artifact summarising the plan. Raises for an unknown or unstarted plan.
    """
    moment = clock.resolve(as_of)
    today = clock.local_date(moment)
    with _store().sessions() as session:
        plan = load_supervised_plan(session=session, plan_id=plan_id, today=today)
        total = len(list(session.scalars(select(Item.id).where(Item.plan_id == plan_id))))
        use_batch = batch if batch is not None else total > BATCH_THRESHOLD
        candidates = _candidates(session, plan, moment, all_items=not use_batch)
        phases = [
            (p.key, p.start_date, p.end_date)
            for p in session.scalars(select(Phase).where(Phase.plan_id == plan_id))
        ]
        title = plan.title
    runs = 0
    if use_batch:
        results = await _run_batches(plan_id, candidates, moment)
        changed = sum(result.changed for result in results)
    else:
        preview = preview_items(plan_id=plan_id, item_ids=candidates, as_of=moment)
        due = [result.item_id for result in preview if result.changed]
        with _store().sessions() as session:
            labels = item_tags(
                session=session, item_ids=due, phase_key=phase_on(sorted(phases), today)
            )
        for item_id in due:
            with tags(*labels[item_id].tags):
                await supervise_item(item_id=item_id, as_of=moment, return_state=True)
            runs += 1
        changed = len(due)
    with _store().sessions() as session:
        table = plan_table(session=session, plan_id=plan_id, today=today)
    await acreate_table_artifact(
        table=table,
        key=f"duban-plan-{plan_id}",
        description=f"{title}：督办概况（截至 {today.isoformat()}）",
    )
    mode = "批量" if use_batch else "逐项"
    return Completed(
        name="Supervised",
        message=f"{mode}巡检 {len(candidates)} 项，{changed} 项有变化，子流程 {runs} 个",
    )
