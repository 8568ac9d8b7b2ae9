"""The demo's second plan: seed 000's 八项行动, supervised beside seed 002 in the same year.

Seed 002 (长治市科协's 2021 work points) has no numeric targets, so the demo also supervises
the eight actions of seed 000 (a speech at a city 科协's 2023 work conference), whose items
carry targets such as `新建企业(事业)科协5家以上` and `不少于200场次`.
`examples/eight_actions_2021.yaml` is that document's canonical plan (the round trip of
`duban plan parse --format json`, edited by hand): its text and targets verbatim, its year
set to the demo's 2021 (the speech is of 2023), each item's lead a department of
`examples/departments.yaml`. It is imported as a second plan of the same organisation and
supervised with `examples/policy-quarterly.yaml` (progress reported on the 30th of each
quarter's last month), so every quarter's 通报 compares figures reported as of the quarter's
end with 序时进度.

Its daily pass is the same `supervise-plan` flow as the first plan's, run on the days it has
something to do (`has_work`: the pass's own pure preview shows an item whose reconcile would
write something); on the other days a pass would only refresh its summary artifact, so the demo
does not spend a Prefect run on it (about 0.3-0.4 s each on a small VM, 155 days a year).

The departments' figures follow `duban.demo.script.reported_value`: their pace times the
straight line the 通报 measures against (from the plan's start of supervision to the year's end).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from duban.demo.actors import DemoError
from duban.demo.script import reported_value
from duban.runtime import Store
from models.attainment import elapsed_share
from models.calendar import WorkCalendar, default_calendar
from models.clock import local_date
from models.db import transaction
from models.plan import Item
from models.plan_reader.document import read_plan_file
from models.policy import load_policy
from tasks.assignment import start_supervision
from tasks.plan_import import digest_bytes, import_plan, matcher_from_session

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECOND_PLAN_FILE = EXAMPLES / "eight_actions_2021.yaml"
SECOND_POLICY_FILE = EXAMPLES / "policy-quarterly.yaml"
SECOND_PLAN_LABEL = "八项行动"


def prepare_second_plan(store: Store, *, now: datetime) -> int:
    """Import the 八项行动 and start supervising it at `now`, in one transaction (after
    `duban.demo.runner.prepare` loaded the directory); returns the plan's id."""
    with transaction(store.sessions) as session:
        return import_second_plan(session=session, now=now, calendar=default_calendar())


def import_second_plan(*, session: Session, now: datetime, calendar: WorkCalendar) -> int:
    """Import the 八项行动 plan and start supervising it at `now` with the quarterly policy;
    returns its id. The directory must be loaded already (the leads name its departments)."""
    outcome = import_plan(
        session=session,
        parsed=read_plan_file(SECOND_PLAN_FILE),
        source_name=SECOND_PLAN_FILE.name,
        source_sha256=digest_bytes(SECOND_PLAN_FILE.read_bytes()),
        now=now,
        matcher=matcher_from_session(session=session),
    )
    if outcome.status != "created":
        raise DemoError("演示数据已存在：请加 --reset 从头运行。")
    start_supervision(
        session=session,
        plan_id=outcome.plan_id,
        now=now,
        policy=load_policy(SECOND_POLICY_FILE),
        calendar=calendar,
    )
    return outcome.plan_id


def item_figures(
    session: Session, item_id: int, day: date, pace: float
) -> tuple[str, dict[str, float]]:
    """The item's title and the cumulative figure its lead reports on `day` for each target
    (form field key: the target's id), on the line from the plan's start to the year's end."""
    item = session.scalars(
        select(Item)
        .where(Item.id == item_id)
        .options(selectinload(Item.targets), selectinload(Item.plan))
    ).one()
    started = item.plan.started_at
    start = local_date(started) if started is not None else date(day.year, 1, 1)
    share = elapsed_share(start=start, end=date(day.year, 12, 31), as_of=day)
    values = {
        str(target.id): reported_value(target.value, share=share, pace=pace)
        for target in item.targets
    }
    return item.title, values


def has_work(store: Store, plan_id: int, moment: datetime) -> bool:
    """Whether a city-scale pass over the plan at `moment` would reconcile any item: the pass
    runs an item when its preview (`preview_pass`, pure, writes nothing) shows a change."""
    from tasks.supervision import pass_scope, preview_pass  # imports Prefect: not at CLI import

    scope = pass_scope(store.sessions, plan_id, moment, False, 0)
    preview = preview_pass(store.sessions, plan_id, scope.candidates, moment)
    return any(result.changed for result in preview)
