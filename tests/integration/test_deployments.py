"""`prefect.yaml` names real flows with real parameters, and its schedules cover the right days."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import Flow, load_flow_from_entrypoint

from flows.calendar_gates import (
    is_quarter_end,
    is_year_end,
    quarter_review_at_quarter_end,
    supervise_plan_on_workdays,
)
from models.calendar import default_calendar

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "supervise-plan",
    "supervise-shard",
    "supervise-item",
    "quarter-review",
    "year-review",
    "record-checkin",
    "inbox-decision",
    "inbox-sync",
}
TEMPLATE = re.compile(r"^\{\{\s*(?P<expr>[^}]+?)\s*\}\}$")


def _config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return loaded


def _deployments() -> dict[str, dict[str, Any]]:
    return {deployment["name"]: deployment for deployment in _config()["deployments"]}


def _flow(entrypoint: str) -> Flow[..., Any]:
    path, _, name = entrypoint.partition(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{name}")
    assert isinstance(flow, Flow)
    return flow


def test_every_expected_deployment_is_declared_in_the_duban_pool() -> None:
    deployments = _deployments()
    assert set(deployments) == EXPECTED
    assert all(d["work_pool"]["name"] == "duban-pool" for d in deployments.values())
    pull = _config()["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == "{{ $DUBAN_PROJECT_DIR }}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entrypoint_imports_a_flow_that_takes_the_declared_parameters(name: str) -> None:
    deployment = _deployments()[name]
    flow = _flow(deployment["entrypoint"])
    signature = inspect.signature(flow.fn)
    assert inspect.iscoroutinefunction(flow.fn), f"{name}: flows must be async"
    declared = set(deployment.get("parameters", {}))
    for trigger in deployment.get("triggers", []):
        declared |= set(trigger.get("parameters", {}))
    assert declared <= set(signature.parameters), f"{name}: unknown parameters {declared}"
    required = {
        parameter.name
        for parameter in signature.parameters.values()
        if parameter.default is inspect.Parameter.empty
    }
    if name not in {"record-checkin", "inbox-decision"}:
        assert required <= declared, f"{name}: nothing supplies {required - declared}"


def test_item_trigger_maps_the_event_payload_item_id_onto_supervise_item() -> None:
    deployment = _deployments()["supervise-item"]
    flow = _flow(deployment["entrypoint"])
    assert flow.name == "supervise-item"
    (trigger,) = [
        t for t in deployment["triggers"] if t["match"]["prefect.resource.id"] == "duban.checkin.*"
    ]
    assert trigger["type"] == "event"
    assert set(trigger["expect"]) == {
        "duban.checkin.submitted",
        "duban.checkin.extended",
        "duban.checkin.returned",  # a return re-supervises the item at once (#13)
    }
    assert trigger["match"]["prefect.resource.id"] == "duban.checkin.*"
    match = TEMPLATE.match(trigger["parameters"]["item_id"])
    assert match is not None and match["expr"] == "event.payload.item_id"
    assert "item_id" in inspect.signature(flow.fn).parameters


def test_an_instruction_re_supervises_its_item_at_once() -> None:
    deployment = _deployments()["supervise-item"]
    (trigger,) = [
        t for t in deployment["triggers"] if t["match"]["prefect.resource.id"] == "duban.item.*"
    ]
    assert trigger["type"] == "event" and "duban.item.instructed" in trigger["expect"]
    match = TEMPLATE.match(trigger["parameters"]["item_id"])
    assert match is not None and match["expr"] == "event.payload.item_id"


@pytest.mark.parametrize("name", ["supervise-plan", "quarter-review", "year-review"])
def test_schedules_are_valid_crons_in_asia_shanghai(name: str) -> None:
    for schedule in _deployments()[name]["schedules"]:
        cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert cron.timezone == "Asia/Shanghai"


def _cron_fields(name: str) -> tuple[set[int], set[int]]:
    cron = _deployments()[name]["schedules"][0]["cron"]
    _, _, days, months, _ = cron.split()
    first, _, last = days.partition("-")
    return set(range(int(first), int(last) + 1)), {int(month) for month in months.split(",")}


def test_quarter_cron_fires_on_every_last_working_day_of_a_quarter() -> None:
    calendar = default_calendar()
    days, months = _cron_fields("quarter-review")
    for year in range(2021, 2026):
        for quarter in range(1, 5):
            last = calendar.last_workday_of_quarter(year, quarter)
            assert last.day in days and last.month in months, f"cron misses {last}"
            assert is_quarter_end(last, calendar)
    year_days, year_months = _cron_fields("year-review")
    assert year_months == {12}
    assert all(calendar.last_workday_of_quarter(y, 4).day in year_days for y in range(2021, 2026))


def test_gates_know_holidays_and_make_up_days() -> None:
    calendar = default_calendar()
    assert is_quarter_end(date(2021, 9, 30), calendar)
    assert not is_quarter_end(date(2021, 9, 29), calendar)
    assert is_year_end(date(2022, 12, 30), calendar)  # 31 Dec 2022 is a Saturday
    assert not is_year_end(date(2022, 12, 31), calendar)
    assert calendar.is_workday(date(2021, 9, 18))  # 调休 Saturday before 中秋
    assert not calendar.is_workday(date(2021, 10, 1))


@pytest.mark.prefect
# An in-process flow run leaves an idle keep-alive socket of Prefect's sync client to the GC.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_gate_flows_skip_days_that_are_not_theirs(
    prefect_harness: None,
    configured_database: str,  # the gates read the stored work calendar
) -> None:
    holiday = await supervise_plan_on_workdays(
        plan_id=1, as_of=date(2021, 10, 1), return_state=True
    )
    assert holiday.is_completed() and holiday.name == "NonWorkday"
    early = await quarter_review_at_quarter_end(
        plan_id=1, as_of=date(2021, 9, 28), return_state=True
    )
    assert early.is_completed() and early.name == "NotQuarterEnd"
