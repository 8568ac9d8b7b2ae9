"""Calendar gates for scheduled deployments: cron cannot say "working day" or "last working day".

The deployments in `prefect.yaml` fire on every candidate day (daily at 08:30, or each of the
last days of a quarter at 17:00, Asia/Shanghai); these flows ask the Chinese work calendar
(public holidays and 调休 make-up Saturdays included) whether today is the day, run the real
flow as a subflow if it is, and otherwise finish at once in a Completed state named
`NonWorkday` / `NotQuarterEnd` that says why nothing ran.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import State, flow
from prefect.states import Completed

from flows.inbox import sync_inbox_after_pass
from flows.review import quarter_review, year_review
from flows.supervise import supervise_plan
from models import clock
from models.daily_pass import is_quarter_end, is_year_end
from tasks.calendar_store import stored_calendar

__all__ = [
    "final_state_of",
    "is_quarter_end",
    "is_year_end",
    "quarter_review_at_quarter_end",
    "supervise_plan_on_workdays",
    "year_review_at_year_end",
]


def final_state_of(state: State[Any]) -> State[Any]:
    """The gate run's own final state: a completed subflow's name and message, else its state.

    (A subflow's state returned as is would be folded into a plain `Completed`.)
    """
    if state.is_completed():
        return Completed(name=state.name, message=state.message)
    return state


@flow(name="supervise-plan-on-workdays", flow_run_name="每日督办-计划{plan_id}")
async def supervise_plan_on_workdays(
    plan_id: int,
    as_of: datetime | None = None,
    batch: bool | None = None,
    shards: int | None = None,
) -> State[Any]:
    """Run `supervise_plan` if `as_of` (default now) is a working day; else `NonWorkday`.

    `shards` (default `DUBAN_PASS_SHARDS`) is passed through: a batch pass fans out to that
    many `supervise-shard` runs.
    """
    moment = clock.resolve(as_of)
    day = clock.local_date(moment)
    if not stored_calendar().is_workday(day):
        return Completed(name="NonWorkday", message=f"{day} 不是工作日，今日不督办。")
    state: State[Any] = await supervise_plan(
        plan_id=plan_id, as_of=moment, batch=batch, shards=shards, return_state=True
    )
    await sync_inbox_after_pass(plan_id, moment)
    return final_state_of(state)


@flow(name="quarter-review-at-quarter-end", flow_run_name="季度通报检查-计划{plan_id}")
async def quarter_review_at_quarter_end(
    plan_id: int, as_of: datetime | None = None, out_dir: str | None = None
) -> State[Any]:
    """Run `quarter_review` on the quarter's last working day; else `NotQuarterEnd`."""
    moment = clock.resolve(as_of)
    day = clock.local_date(moment)
    if not is_quarter_end(day, stored_calendar()):
        return Completed(name="NotQuarterEnd", message=f"{day} 不是本季度最后一个工作日。")
    state: State[Any] = await quarter_review(
        plan_id=plan_id, as_of=moment, out_dir=out_dir, return_state=True
    )
    return final_state_of(state)


@flow(name="year-review-at-year-end", flow_run_name="年度评估检查-计划{plan_id}")
async def year_review_at_year_end(
    plan_id: int, as_of: datetime | None = None, out_dir: str | None = None
) -> State[Any]:
    """Run `year_review` on the year's last working day; else `NotYearEnd`."""
    moment = clock.resolve(as_of)
    day = clock.local_date(moment)
    if not is_year_end(day, stored_calendar()):
        return Completed(name="NotYearEnd", message=f"{day} 不是本年度最后一个工作日。")
    state: State[Any] = await year_review(
        plan_id=plan_id, as_of=moment, out_dir=out_dir, return_state=True
    )
    return final_state_of(state)
