"""Fanning a batch pass out across workers: which shard an item is in, shard run names,
and starting and awaiting one `supervise-shard` deployment run per shard.

Pure helpers (`shard_items`, `shard_label`, `shard_run_name`, `shard_count`) and the
Prefect side (`fan_out`, `await_final`); the `supervise-shard` flow itself lives with the
other supervision flows in `flows/supervise.py`. See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectNotFound

from models import clock
from models.errors import NotFoundError
from models.settings import get_settings

SHARD_DEPLOYMENT = "supervise-shard/supervise-shard"
SHARD_POLL_SECONDS = 2.0
SHARD_TIMEOUT_SECONDS = 3600.0


def shard_label(shard: int, shards: int) -> str:
    """How a shard is named to supervisors: 1-based, `第1片（共2片）` for shard 0 of 2."""
    return f"第{shard + 1}片（共{shards}片）"


def shard_run_name(plan_id: int, day: str, shard: int, shards: int) -> str:
    """Flow run name of one shard of a pass."""
    return f"督办巡检 计划{plan_id} {day} {shard_label(shard, shards)}"


def shard_items(item_ids: Iterable[int], shard: int, shards: int) -> list[int]:
    """The ids of `item_ids` that belong to `shard` (0-based) of `shards`, in their order.

    An item belongs to the shard `item_id % shards`: a property of the id alone, so however
    the candidate list shifts between queries every item falls in exactly one shard.
    Raises ValueError if `shards` < 1 or `shard` is not in `0..shards-1`.
    """
    if shards < 1 or not 0 <= shard < shards:
        raise ValueError(f"分片编号 {shard} 无效：应在 0 到 {shards - 1} 之间（共 {shards} 片）。")
    return [item_id for item_id in item_ids if item_id % shards == shard]


async def await_final(run_ids: list[UUID], timeout: float) -> dict[UUID, FlowRun]:
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


async def fan_out(plan_id: int, moment: datetime, shards: int) -> tuple[list[str], list[str]]:
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
    final = await await_final([run.id for _, run in started], SHARD_TIMEOUT_SECONDS)
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


def shard_count(shards: int | None) -> int:
    count = shards if shards is not None else get_settings().pass_shards
    if count < 1:
        raise ValueError(f"分片数应为正整数，收到 {count}。")
    return count
