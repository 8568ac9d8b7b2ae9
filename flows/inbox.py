"""The supervisors' inbox in the Prefect UI: one run waiting for input per pending decision.

`inbox_decision` is the waiting run. It reads the decision from the database, suspends with
a form (a `RunInput` whose description shows the content and whose fields ask exactly the
decision) and, once resumed, applies the answer through the kind's own function. Prefect
re-runs a resumed suspended flow from the start, so the flow is written to be re-executed:
the pause key is the decision's key (a re-run gets the saved answer back instead of asking
again), and the database row decides: a decision no longer pending ends the run as
`已在别处处理` with nothing applied, and the apply locks the row so it happens once.

`inbox_sync` runs daily (and on extension events): it creates a waiting run for each pending
decision that lacks one (deleted, expired, crashed) and cancels runs whose decision was
taken elsewhere (CLI, bulk). See docs/inbox.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from prefect import State, flow, get_run_logger
from prefect.flow_runs import asuspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment
from prefect.states import Completed
from pydantic import ConfigDict, Field, create_model

from models import clock
from models.inbox import (
    DEFAULT_DECIDER,
    REASON_MAX,
    SPECS,
    WAIT_SECONDS,
    description,
    pause_key,
    read_answer,
    reason_rule,
)
from models.vocabulary import InboxKind
from tasks.events import publish_pending_events
from tasks.inbox import apply_answer, load_decision
from tasks.inbox_runs import sync_inbox
from tasks.store import configured_sessions

DECIDED_ELSEWHERE = "已在别处处理"


def answer_form(kind: InboxKind) -> type[RunInput]:
    """The `RunInput` form of `kind`, from `models.inbox.SPECS`: the decision (its two choices),
    the reason (required with the refusal, also as JSON Schema for the server) and who decides."""
    spec = SPECS[kind]
    config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "title": spec.form_title,
            "description": f"选择{spec.decision_title}；{spec.no}须填写理由。",
            **reason_rule(kind),
        },
    )
    base = cast(type[RunInput], type(f"_{kind.value}_base", (RunInput,), {"model_config": config}))
    choices: Any = Literal.__getitem__((spec.yes, spec.no))
    return create_model(
        f"{kind.value.title().replace('_', '')}Answer",
        __base__=base,
        decision=(choices, Field(title=spec.decision_title, description=spec.decision_help)),
        reason=(
            str,
            Field(default="", max_length=REASON_MAX, title="理由", description=spec.reason_help),
        ),
        by=(str, Field(default=DEFAULT_DECIDER, max_length=100, title=spec.decider_title)),
    )


FORMS: dict[InboxKind, type[RunInput]] = {kind: answer_form(kind) for kind in SPECS}
"""The form of each kind (a kind is added by its `SPECS` entry and its source in `tasks`)."""


@flow(name="inbox_decision")
async def inbox_decision(
    kind: str, decision_id: int, timeout_seconds: int = WAIT_SECONDS
) -> State[Any]:
    """Wait (suspended, no process held) for a supervisor's decision, then apply it once.

    Ends `已在别处处理` when the decision is no longer pending, before asking or after the
    answer; fails with a Chinese message for an answer the kind refuses (the sync then
    re-creates the run). A pause past `timeout_seconds` is failed by Prefect, and the sync
    re-creates it while the decision is pending.
    """
    logger = get_run_logger()
    member = InboxKind(kind)
    sessions = configured_sessions()
    now = clock.now()
    decision = load_decision(sessions=sessions, kind=member, decision_id=decision_id, now=now)
    if decision is None:
        return Completed(name=DECIDED_ELSEWHERE, message="该事项已不再等待决定，未作任何处理。")
    form = FORMS[member].with_initial_data(description=description(decision, now=now))
    entry = await asuspend_flow_run(
        wait_for_input=form, timeout=timeout_seconds, key=pause_key(member, decision_id)
    )
    values = entry.model_dump()
    answer = read_answer(
        member,
        decision_id,
        choice=str(values["decision"]),
        reason=str(values.get("reason", "")),
        by=str(values.get("by", "")),
    )
    applied_at = clock.now()
    message = apply_answer(sessions=sessions, answer=answer, now=applied_at)
    if message is None:
        logger.info("decision %s was taken elsewhere; nothing applied", decision.key)
        return Completed(name=DECIDED_ELSEWHERE, message="该事项已在别处处理，本次提交未重复处理。")
    publish_pending_events(sessions=sessions, now=applied_at)
    return Completed(name="已处理", message=message)


@flow(name="inbox_sync", flow_run_name="收件箱同步 计划{plan_id}")
async def inbox_sync(plan_id: int, as_of: datetime | None = None) -> State[Any]:
    """Re-create the waiting runs of the plan's pending decisions and end stale ones."""
    result = await sync_inbox(
        sessions=configured_sessions(), plan_id=plan_id, now=clock.resolve(as_of)
    )
    return Completed(message=result.message)


async def sync_inbox_after_pass(plan_id: int, moment: datetime) -> State[Any] | None:
    """The daily pass's inbox sync, as a subflow, when the pass runs in a deployment (only
    there can a worker run the waiting runs); its failure is logged and never fails the pass.
    Returns the sync's state, or None when not in a deployment."""
    if deployment.id is None:
        return None
    state: State[Any] = await inbox_sync(plan_id=plan_id, as_of=moment, return_state=True)
    if not state.is_completed():
        get_run_logger().warning("收件箱同步未完成（%s）：%s", state.name, state.message)
    return state
