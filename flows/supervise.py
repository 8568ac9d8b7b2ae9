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

import asyncio
import time
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import State, flow, get_run_logger, tags, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, Failed
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.runtime import Store, store_for
from models import clock
from models.calendar import default_calendar
from models.db import transaction
from models.errors import NotFoundError
from models.plan import Item, Phase, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.settings import DEFAULT_PASS_CHUNK_SIZE, get_settings
from tasks.checkins import items_with_pending_before
from tasks.events import publish_pending_events
from tasks.reconcile import ItemResult, load_supervised_plan, reconcile_items
from tasks.status_card import item_tags, phase_on, plan_table, status_card

BATCH_THRESHOLD = 200
CHUNK_SIZE = DEFAULT_PASS_CHUNK_SIZE
RECENT_SUBMISSION_DAYS = 7
SHARD_DEPLOYMENT = "supervise-shard/supervise-shard"
SHARD_POLL_SECONDS = 2.0
SHARD_TIMEOUT_SECONDS = 3600.0


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


def shard_label(shard: int, shards: int) -> str:
    """How a shard is named to supervisors: 1-based, `第1片（共2片）` for shard 0 of 2."""
    return f"第{shard + 1}片（共{shards}片）"


def shard_run_name(plan_id: int, day: str, shard: int, shards: int) -> str:
    """Flow run name of one shard of a pass."""
    return f"督办巡检 计划{plan_id} {day} {shard_label(shard, shards)}"


def _shard_run_name() -> str:
    parameters = flow_run.parameters
    return shard_run_name(
        int(parameters.get("plan_id", 0)),
        _day_label(parameters.get("as_of")),
        int(parameters.get("shard", 0)),
        int(parameters.get("shards", 1)),
    )


def shard_items(item_ids: Iterable[int], shard: int, shards: int) -> list[int]:
    """The ids of `item_ids` that belong to `shard` (0-based) of `shards`, in their order.

    An item belongs to the shard `item_id % shards`: a property of the id alone, so however
    the candidate list shifts between queries every item falls in exactly one shard.
    Raises ValueError if `shards` < 1 or `shard` is not in `0..shards-1`.
    """
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"分片编号 {shard} 无效：应在 0 到 {shards - 1} 之间（共 {shards} 片）。")
    return [item_id for item_id in item_ids if item_id % shards == shard]


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


async def _run_batches(
    plan_id: int,
    candidates: list[int],
    moment: datetime,
    *,
    changes_key: str,
    publish: bool = True,
) -> list[ItemResult]:
    """Reconcile `candidates` in chunks (one task run each), publish the events (unless
    `publish` is False) and leave a table artifact `changes_key` of the items that changed."""
    size = get_settings().pass_chunk_size
    results: list[ItemResult] = []
    for number, start in enumerate(range(0, len(candidates), size), start=1):
        chunk = candidates[start : start + size]
        named = reconcile_chunk.with_options(
            task_run_name=f"批次{number}（任务 {chunk[0]}–{chunk[-1]}，共{len(chunk)}项）"
        )
        results.extend(ItemResult(**row) for row in named(plan_id, chunk, moment))
    if publish:
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
    publish: bool = True,
) -> State[Any]:
    """One shard of a batch pass: the batch-mode candidates with `item_id % shards == shard`.

    Computes the candidates as `supervise_plan` does in batch mode, reconciles this shard's
    share in chunks (one task run each), publishes the events (unless `publish` is False: a
    fanned-out pass publishes once, after its shards, so that shards do not send the same
    pending events side by side) and leaves a table artifact
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
        publish=publish,
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


async def _await_final(run_ids: list[UUID], timeout: float) -> dict[UUID, FlowRun]:
    """The runs `run_ids` as last read, polled until all are final or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
            )
            by_id = {run.id: run for run in runs}
            done = all(run.state is not None and run.state.is_final() for run in runs)
            if (done and len(by_id) == len(run_ids)) or time.monotonic() >= deadline:
                return by_id
            await asyncio.sleep(SHARD_POLL_SECONDS)


async def _fan_out(plan_id: int, moment: datetime, shards: int) -> tuple[list[str], list[str]]:
    """Start one `supervise-shard` deployment run per shard (subflows of the current run,
    tagged `plan:<id>`) and wait for them all. Returns the completed shards' messages and
    a line for each shard that did not complete."""
    day = clock.local_date(moment).isoformat()
    started: list[tuple[int, FlowRun]] = []
    for shard in range(shards):
        try:
            run = await arun_deployment(
                SHARD_DEPLOYMENT,
                parameters={
                    "plan_id": plan_id,
                    "as_of": moment,
                    "shard": shard,
                    "shards": shards,
                    "publish": False,
                },
                flow_run_name=shard_run_name(plan_id, day, shard, shards),
                tags=[f"plan:{plan_id}", f"shard:{shard}"],
                timeout=0,
                as_subflow=True,
            )
        except ObjectNotFound as exc:
            raise NotFoundError(
                f"找不到分片部署 {SHARD_DEPLOYMENT}：请重新运行 duban deploy 以创建它，"
                "或把分片数设为 1。"
            ) from exc
        started.append((shard, run))
    final = await _await_final([run.id for _, run in started], SHARD_TIMEOUT_SECONDS)
    completed: list[str] = []
    missing: list[str] = []
    for shard, run in started:
        state = final[run.id].state if run.id in final else None
        if state is not None and state.is_completed():
            completed.append(state.message or shard_label(shard, shards))
        else:
            where = state.name if state is not None else "未知"
            missing.append(f"{shard_label(shard, shards)}（{run.name}，状态 {where}）")
    return completed, missing


def _shard_count(shards: int | None) -> int:
    count = shards if shards is not None else get_settings().pass_shards
    if count < 1:
        raise ValueError(f"分片数应为正整数，收到 {count}。")
    return count


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
    count = _shard_count(shards)
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
        shard_messages, missing = await _fan_out(plan_id, moment, count)
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
