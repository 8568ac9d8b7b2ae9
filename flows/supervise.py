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
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast

from prefect import State, flow, get_run_logger, tags
from prefect.artifacts import acreate_markdown_artifact
from prefect.context import SyncClientContext
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, Failed
from prefect.utilities.annotations import quote

from flows.shards import fan_out, shard_count, shard_items, shard_label, shard_run_name
from models import clock
from models.daily_pass import ItemResult
from models.settings import DEFAULT_PASS_CHUNK_SIZE, get_settings
from models.vocabulary import Colour, ItemState
from tasks.artifacts import create_table_artifacts
from tasks.digest import compose_digests_now
from tasks.store import store_for
from tasks.supervision import (
    Sessions,
    batch_candidates,
    item_card,
    item_run_label,
    pass_scope,
    plan_of_item,
    plan_summary,
    preview_pass,
    publish_events,
    reconcile_chunk,
    reconcile_now,
    run_tags,
)

BATCH_THRESHOLD = 200
_T = TypeVar("_T")
CHUNK_SIZE = DEFAULT_PASS_CHUNK_SIZE
# True inside a city-scale `supervise_plan` pass, which publishes the domain events of all
# its `supervise_item` runs once after them (one events connection per pass, not per item).
_PASS_PUBLISHES: ContextVar[bool] = ContextVar("duban_pass_publishes", default=False)


def _database() -> Sessions:
    """The session factory of the configured database, opened once per process."""
    return store_for(get_settings().effective_database_url).sessions


def _item_run_name() -> str:
    """Flow run name of `supervise_item`: the item's label, read from the database."""
    return item_run_label(_database(), int(flow_run.parameters.get("item_id", 0)))


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


def preview_items(*, plan_id: int, item_ids: list[int], as_of: datetime) -> list[ItemResult]:
    """What a reconcile at `as_of` would do, decided in pure code: writes nothing."""
    return preview_pass(_database(), plan_id, item_ids, as_of)


def state_name(state: str) -> str:
    """The name of an item run's final state: the item state, `已办结` for a closed item."""
    return ItemState.CLOSED.label if state == ItemState.CLOSED else state


@flow(name="supervise-item", flow_run_name=_item_run_name)
async def supervise_item(item_id: int, as_of: datetime | None = None) -> State[Any]:
    """Reconcile one item at `as_of` (default now), emit its events, leave its status card.

    Inside a city-scale `supervise_plan` pass the pass emits the events after its item runs.

    Finishes in a Completed state named `Escalated`, `Overdue`, `AwaitingCheckin`,
    `OnTrack`, or `已办结` for a closed item. Running it again at the same `as_of` changes nothing.
    """
    moment = clock.resolve(as_of)
    sessions = _database()
    result = reconcile_now(sessions, plan_of_item(sessions, item_id), [item_id], moment)[0]
    if not _PASS_PUBLISHES.get():
        publish_events(sessions)
    card = item_card(sessions, item_id, result.state, moment)
    await acreate_markdown_artifact(
        markdown=card, key=f"duban-item-{item_id}", description=result.label[:200]
    )
    colour = Colour.label_of(result.colour)
    message = (
        f"{result.label}：{colour}，新通知 {len(result.notices)} 条，"
        f"逾期 {result.overdue}，督办级别 {result.max_level}"
    )
    return Completed(name=state_name(result.state), message=message)


def _run_batches(
    sessions: Sessions,
    plan_id: int,
    candidates: list[int],
    moment: datetime,
    *,
    events_part: tuple[int, int] | None = None,
) -> tuple[list[ItemResult], list[dict[str, Any]]]:
    """Reconcile `candidates` in chunks (one task run each) and publish the pending events
    (only the part `events_part` of them if given, see `publish_pending_events`); returns the
    results and the rows of the table artifact of the items that changed (`_changes_table`)."""
    size = get_settings().pass_chunk_size
    results: list[ItemResult] = []
    # One Prefect API client for all the chunk task runs: without it each sync task run
    # opens its own (a new TLS context each, ~20 ms), a tenth of a no-op chunk's time.
    with SyncClientContext.get_or_create():
        for number, start in enumerate(range(0, len(candidates), size), start=1):
            chunk = candidates[start : start + size]
            named = reconcile_chunk.with_options(
                task_run_name=f"批次{number}（任务 {chunk[0]}–{chunk[-1]}，共{len(chunk)}项）"
            )
            # `quote`: the task gets the list itself, but Prefect does not walk its 500 ids
            # twice per task run looking for upstream futures and states (there are none).
            ids = cast(list[int], quote(chunk))
            results.extend(named(sessions, plan_id, ids, moment))
    publish_events(sessions, events_part)
    return results, _changes_table(results)


def _changes_table(results: list[ItemResult]) -> list[dict[str, Any]]:
    """One row per changed item: label, state, colour, new notices, overdue, level."""
    states, colours = ItemState.labels(), Colour.labels()  # `label_of`, once per table
    return [
        {
            "任务": result.label[:60],
            "状态": states.get(result.state, result.state),
            "红黄绿灯": colours.get(result.colour, result.colour),
            "新通知": len(result.notices),
            "逾期": result.overdue,
            "督办级别": result.max_level,
        }
        for result in results
        if result.changed
    ]


async def _changes_artifact(changes: list[dict[str, Any]], key: str) -> None:
    """The table artifact `key` of the items that changed (none when nothing changed)."""
    if changes:
        await create_table_artifacts(
            table=changes, key=key, description=f"本次巡检有变化的任务（{len(changes)}项）"
        )


async def _alongside(upload: Coroutine[Any, Any, None], work: Callable[[], _T]) -> _T:
    """`work()` (the pass's last database steps) on a worker thread, in the run's context,
    while `upload` (artifact pages, mostly waiting on Prefect's server) runs on this loop.
    Both finish before it returns; an error of the upload is raised first."""
    outcomes = await asyncio.gather(upload, asyncio.to_thread(work), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(_T, outcomes[1])


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
    sessions = _database()
    mine = shard_items(batch_candidates(sessions, plan_id, moment), shard, shards)
    results, changes = _run_batches(sessions, plan_id, mine, moment, events_part=(shard, shards))
    await _changes_artifact(changes, f"duban-plan-{plan_id}-changes-shard-{shard}")
    changed = sum(result.changed for result in results)
    notices = sum(len(result.notices) for result in results)
    return Completed(
        name="Supervised",
        message=(
            f"{shard_label(shard, shards)}：巡检 {len(mine)} 项，{changed} 项有变化，"
            f"新通知 {notices} 条"
        ),
    )


def _compose_digests(sessions: Sessions, moment: datetime) -> None:
    """The pass's digests (`tasks.digest`), after all its chunks, item runs and shards."""
    keys = compose_digests_now(sessions, moment)
    if keys:
        get_run_logger().info("已生成每日汇总邮件 %d 封。", len(keys))


def _finish_pass(
    sessions: Sessions, plan_id: int, moment: datetime, *, digests: bool
) -> list[dict[str, Any]]:
    """The pass's digests (unless `digests` is False) and then the plan's summary table."""
    if digests:
        _compose_digests(sessions, moment)
    return plan_summary(sessions, plan_id, moment)


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
    sessions = _database()
    scope = pass_scope(sessions, plan_id, moment, batch, BATCH_THRESHOLD)
    use_batch, candidates = scope.use_batch, scope.candidates
    runs = 0
    missing: list[str] = []
    changes: list[dict[str, Any]] = []
    fanned_out = use_batch and count > 1 and deployment.id is not None
    if fanned_out:
        shard_messages, missing = await fan_out(plan_id, moment, count)
        publish_events(sessions)
        runs = count
        detail = "；".join(shard_messages)
    elif use_batch:
        if count > 1:
            get_run_logger().info(
                "分片数 %d 未生效：本次巡检不在部署中运行，没有工作进程可分派，"
                "改为在本进程内批量巡检。",
                count,
            )
        _, changes = _run_batches(sessions, plan_id, candidates, moment)
        changed = len(changes)
    else:
        preview = preview_pass(sessions, plan_id, candidates, moment)
        due = [result.item_id for result in preview if result.changed]
        labels = run_tags(sessions, due, scope.phase_key)
        token = _PASS_PUBLISHES.set(True)
        try:
            for item_id in due:
                with tags(*labels[item_id].tags):
                    await supervise_item(item_id=item_id, as_of=moment, return_state=True)
                runs += 1
        finally:
            _PASS_PUBLISHES.reset(token)
        if due:
            publish_events(sessions)
        changed = len(due)
    # A failed shard's re-run composes the day's digests once. In batch mode the digests and
    # the summary table are read on a worker thread while the changes table goes to Prefect.
    finish = partial(_finish_pass, sessions, plan_id, moment, digests=not missing)
    summary = (
        await _alongside(_changes_artifact(changes, f"duban-plan-{plan_id}-changes"), finish)
        if changes
        else finish()
    )
    await create_table_artifacts(
        table=summary,
        key=f"duban-plan-{plan_id}",
        description=f"{scope.title}：督办概况（截至 {today.isoformat()}）",
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
