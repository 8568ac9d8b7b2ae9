"""The inbox's Prefect side: read the waiting runs, create and cancel them, and sync a plan.

A waiting run is a run of the `inbox-decision` deployment (flow `inbox_decision`) with the
parameters `kind` and `decision_id`, named and tagged by `models.inbox`. `sync_inbox`
compares the plan's pending decisions (database) with its live inbox runs (Prefect) through
the pure `models.inbox.reconcile_inbox`, then cancels and creates runs accordingly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled
from sqlalchemy.orm import Session, sessionmaker

from models.errors import NotFoundError
from models.inbox import (
    INBOX_TAG,
    LIVE_STATE_TYPES,
    InboxChanges,
    PendingDecision,
    WaitingRun,
    decision_key,
    reconcile_inbox,
    run_life,
    run_name,
    run_tags,
)
from models.vocabulary import InboxKind
from tasks import inbox_completion, inbox_review
from tasks.inbox import pending_decisions

logger = logging.getLogger(__name__)
SOURCES_LOADED = (inbox_review.__name__, inbox_completion.__name__)
"""Every kind's source module, imported so that its source is registered."""

INBOX_FLOW = "inbox_decision"
INBOX_DEPLOYMENT = f"{INBOX_FLOW}/inbox-decision"
PAGE = 200


def waiting_run_of(run: FlowRun, now: datetime) -> WaitingRun | None:
    """The sync's view of an inbox run, or None if its parameters name no decision."""
    parameters: dict[str, Any] = run.parameters or {}
    kind = InboxKind.of(str(parameters.get("kind")))
    decision_id = parameters.get("decision_id")
    if kind is None or not isinstance(decision_id, int):
        return None
    state = run.state
    state_type = state.type.value if state is not None else None
    pause_timeout = state.state_details.pause_timeout if state is not None else None
    return WaitingRun(
        run_id=str(run.id),
        key=decision_key(kind, decision_id),
        life=run_life(state_type, pause_timeout, now),
        created=run.created or now,
    )


async def read_inbox_runs(client: PrefectClient, plan_id: int) -> list[FlowRun]:
    """The plan's inbox runs that are not final (scheduled, pending, running, paused)."""
    run_filter = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[INBOX_TAG, f"plan:{plan_id}"]),
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType(value) for value in LIVE_STATE_TYPES])
        ),
    )
    runs: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(flow_run_filter=run_filter, limit=PAGE, offset=len(runs))
        runs.extend(page)
        if len(page) < PAGE:
            return runs


async def create_waiting_runs(
    client: PrefectClient, decisions: Iterable[PendingDecision]
) -> list[UUID]:
    """One `inbox-decision` run per decision, named and tagged for it; returns their ids.

    Raises `NotFoundError` (Chinese) when the deployment has not been created.
    """
    decisions = list(decisions)
    if not decisions:
        return []
    try:
        deployment = await client.read_deployment_by_name(INBOX_DEPLOYMENT)
    except ObjectNotFound as exc:
        raise NotFoundError(
            f"找不到收件箱部署 {INBOX_DEPLOYMENT}：请运行 duban deploy 创建它。"
        ) from exc
    created: list[UUID] = []
    for decision in decisions:
        run = await client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"kind": decision.kind.value, "decision_id": decision.decision_id},
            name=run_name(decision),
            tags=run_tags(decision),
        )
        created.append(run.id)
    return created


async def cancel_runs(client: PrefectClient, cancels: Sequence[tuple[str, str]]) -> int:
    """Set each run to Cancelled with its reason (forced: a suspended run has no process to
    stop); returns how many were cancelled."""
    for run_id, reason in cancels:
        await client.set_flow_run_state(
            UUID(run_id), Cancelled(message=reason, name="已撤销"), force=True
        )
    return len(cancels)


@dataclass(frozen=True)
class SyncResult:
    """What one inbox sync found and did."""

    pending: int
    created: int
    cancelled: int

    @property
    def message(self) -> str:
        """`收件箱：待处理 3 项，新建等待运行 1 个，撤销 1 个。`"""
        return (
            f"收件箱：待处理 {self.pending} 项，新建等待运行 {self.created} 个，"
            f"撤销 {self.cancelled} 个。"
        )


async def sync_inbox(*, sessions: sessionmaker[Session], plan_id: int, now: datetime) -> SyncResult:
    """Give every pending decision of the plan one live waiting run and end the others.

    Reads the database, then Prefect; a decision taken between the two reads keeps its run
    until the next sync, and that run, if resumed, ends without applying anything.
    """
    with sessions() as session:
        pending = pending_decisions(session=session, plan_id=plan_id)
    async with get_client() as client:
        runs = await read_inbox_runs(client, plan_id)
        seen = [view for run in runs if (view := waiting_run_of(run, now)) is not None]
        changes: InboxChanges = reconcile_inbox(pending, seen)
        cancelled = await cancel_runs(client, changes.cancel)
        created = await create_waiting_runs(client, changes.create)
    logger.info("inbox of plan %s: %s", plan_id, changes)
    return SyncResult(pending=len(pending), created=len(created), cancelled=cancelled)
