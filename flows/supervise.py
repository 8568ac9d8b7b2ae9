"""Supervision flows: `supervise_item` (the reconcile loop of one item) and `supervise_plan`.

At city scale every item with something to do gets its own `supervise_item` flow run named
for the item and tagged by plan, section, lead departments and phase. At province scale
(`batch`, automatic above `BATCH_THRESHOLD` candidate items) the pass reconciles items in
chunks, one task run per chunk, so the number of Prefect runs grows with chunks, not items
(see docs/scaling.md). With `shards` > 1 (default `DUBAN_PASS_SHARDS`) a batch pass that runs
inside a deployment fans out: one `supervise-shard` deployment run per shard, each taking the
candidates with `item_id % shards == shard`, so several workers share one pass. The database
is the clock: flows only read `as_of`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from prefect import State, flow, get_run_logger, tags, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, Failed
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.runtime import Store, store_for
from flows.shards import fan_out, shard_count, shard_items, shard_label, shard_run_name
from models import clock
from models.db import transaction
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.settings import DEFAULT_PASS_CHUNK_SIZE, get_settings
from tasks.calendar_store import work_calendar
from tasks.checkins import items_with_pending_before
from tasks.events import publish_pending_events
from tasks.reconcile import ItemResult, load_supervised_plan, reconcile_items
from tasks.status_card import item_tags, phase_on, plan_table, status_card

BATCH_THRESHOLD = 200
CHUNK_SIZE = DEFAULT_PASS_CHUNK_SIZE
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


def _day_label(as_of: Any) -> str:
    return clock.local_date(clock.resolve(as_of)).isoformat() if as_of else "今日"


def _plan_run_name() -> str:
    day = _day_label(flow_run.parameters.get("as_of"))
    return f"督办巡检 计划{flow_run.parameters.get('plan_id')} {day}"


def _shard_run_name() -> str:
    parameters = flow_run.parameters
    return shard_run_name(
        int(parameters.get("plan_id", 0)),
        _day_label(parameters.get("as_of")),
        int(parameters.get("shard", 0)),
        int(parameters.get("shards", 1)),
    )


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
        calendar=work_calendar(session=session),
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


def _publish(part: tuple[int, int] | None = None) -> int:
    return publish_pending_events(sessions=_store().sessions, now=clock.now(), part=part)


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


async def _run_batches(
    plan_id: int,
    candidates: list[int],
    moment: datetime,
    *,
    changes_key: str,
    events_part: tuple[int, int] | None = None,
) -> list[ItemResult]:
    """Reconcile `candidates` in chunks (one task run each), publish the pending events (only
    the part `events_part` of them if given, see `publish_pending_events`) and leave a table
    artifact `changes_key` of the items that changed."""
    size = get_settings().pass_chunk_size
    results: list[ItemResult] = []
    for number, start in enumerate(range(0, len(candidates), size), start=1):
        chunk = candidates[start : start + size]
        named = reconcile_chunk.with_options(
            task_run_name=f"批次{number}（任务 {chunk[0]}–{chunk[-1]}，共{len(chunk)}项）"
        )
        results.extend(ItemResult(**row) for row in named(plan_id, chunk, moment))
    _publish(events_part)
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
            key=changes_key,
            description=f"本次巡检有变化的任务（{len(changed)}项）",
        )
    return results


def _batch_candidates(plan_id: int, moment: datetime) -> list[int]:
    """The batch-mode candidates of a started plan at `moment` (raises if unknown/unstarted)."""
    with _store().sessions() as session:
        plan = load_supervised_plan(
            session=session, plan_id=plan_id, today=clock.local_date(moment)
        )
        return _candidates(session, plan, moment, all_items=False)


@flow(name="supervise-shard", flow_run_name=_shard_run_name)
async def supervise_shard(
    plan_id: int,
    as_of: datetime | None = None,
    shard: int = 0,
    shards: int = 1,
) -> State[Any]:
    """One shard of a batch pass: the batch-mode candidates with `item_id % shards == shard`.

    Computes the candidates as `supervise_plan` does in batch mode, reconciles this shard's
    share in chunks (one task run each), publishes its part of the pending domain events (the
    rows with `id % shards == shard`: shards share the publishing without sending a row
    twice; the pass publishes whatever is left after them) and leaves a table artifact
    `duban-plan-<id>-changes-shard-<shard>` of the items that changed. Finishes Completed
    (named `Supervised`) with the counts in its message; returns nothing large, since the
    parent may run on another machine. Idempotent like every reconcile.
    """
    moment = clock.resolve(as_of)
    mine = shard_items(_batch_candidates(plan_id, moment), shard, shards)
    results = await _run_batches(
        plan_id,
        mine,
        moment,
        changes_key=f"duban-plan-{plan_id}-changes-shard-{shard}",
        events_part=(shard, shards),
    )
    changed = sum(result.changed for result in results)
    notices = sum(len(result.notices) for result in results)
    return Completed(
        name="Supervised",
        message=(
            f"{shard_label(shard, shards)}：巡检 {len(mine)} 项，{changed} 项有变化，"
            f"新通知 {notices} 条"
        ),
    )


@flow(name="supervise-plan", flow_run_name=_plan_run_name)
async def supervise_plan(
    plan_id: int,
    as_of: datetime | None = None,
    batch: bool | None = None,
    shards: int | None = None,
) -> State[Any]:
    """One supervision pass over a plan at `as_of` (default now).

    City scale: a `supervise_item` flow run per item with something to do, named for the
    item and tagged plan/section/departments/phase. Batch mode (`batch=True`, or automatic
    above `BATCH_THRESHOLD` items): chunks of `pass_chunk_size` items, one task run each.
    Batch mode with `shards` (default `DUBAN_PASS_SHARDS`) > 1 inside a deployment run: one
    `supervise-shard` deployment run per shard, waited for; the pass fails naming the shards
    that did not complete (a re-run repairs them). Outside a deployment the shards' work runs
    in this process. Leaves a table artifact summarising the plan. Raises for an unknown or
    unstarted plan.
    """
    moment = clock.resolve(as_of)
    today = clock.local_date(moment)
    count = shard_count(shards)
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
    missing: list[str] = []
    fanned_out = use_batch and count > 1 and deployment.id is not None
    if fanned_out:
        shard_messages, missing = await fan_out(plan_id, moment, count)
        _publish()
        runs = count
        detail = "；".join(shard_messages)
    elif use_batch:
        if count > 1:
            get_run_logger().info(
                "分片数 %d 未生效：本次巡检不在部署中运行，没有工作进程可分派，"
                "改为在本进程内批量巡检。",
                count,
            )
        results = await _run_batches(
            plan_id, candidates, moment, changes_key=f"duban-plan-{plan_id}-changes"
        )
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
    if missing:
        return Failed(
            message=(
                f"分片巡检未全部完成：{'、'.join(missing)}。已完成的分片结果已保存；"
                "督办可重复执行，重新运行本次巡检即可补齐。"
            )
        )
    if fanned_out:
        return Completed(
            name="Supervised",
            message=f"分片巡检 {len(candidates)} 项，分 {count} 片，子流程 {runs} 个：{detail}",
        )
    mode = "批量" if use_batch else "逐项"
    return Completed(
        name="Supervised",
        message=f"{mode}巡检 {len(candidates)} 项，{changed} 项有变化，子流程 {runs} 个",
    )
