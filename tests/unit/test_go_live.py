"""Pure go-live rules: the plan-year guard, Prefect's auth setting read in either type, the
deployment file `duban serve` applies, and the Prefect defaults that keep the foreman on."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from duban.cli.deploy import deployment_file
from duban.prefect_api import secret_text
from duban.runtime import configure_prefect_defaults
from models.plan_year import plan_year_over, plan_year_over_message
from models.settings import Settings


@pytest.mark.parametrize(
    ("year", "today", "over"),
    [
        (2021, date(2026, 12, 1), True),
        (2026, date(2026, 12, 31), False),
        (2026, date(2027, 1, 1), True),
        (2027, date(2026, 12, 1), False),
    ],
)
def test_a_plan_year_is_over_from_the_first_of_january_after_it(
    year: int, today: date, over: bool
) -> None:
    assert plan_year_over(year, today) is over


def test_the_warning_says_why_and_how_to_rehearse() -> None:
    message = plan_year_over_message(3, 2021, date(2026, 12, 1))
    assert "2021 年的计划，该年度已结束（今天是 2026-12-01）" in message
    assert "--as-of 2021-03-01" in message and "duban simulate" in message


def test_auth_string_is_read_as_str_or_secret() -> None:
    assert secret_text("admin:pw") == "admin:pw"
    assert secret_text(SecretStr("admin:pw")) == "admin:pw"
    assert secret_text(None) == ""


def test_api_reads_the_auth_string_from_the_environment() -> None:
    # In a fresh process, as a CLI command runs: the test session's Prefect harness holds
    # settings of its own that would take precedence over the environment here.
    env = {
        **os.environ,
        "PREFECT_API_URL": "http://127.0.0.1:4200/api/",
        "PREFECT_API_AUTH_STRING": "duban-admin:secret",
    }
    code = "from duban.prefect_api import PrefectApi; a = PrefectApi.from_settings(); "
    code += "print(a.url, a.auth_string)"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://127.0.0.1:4200/api", "duban-admin:secret"]


def _deployments(text: str) -> dict[str, dict[str, object]]:
    return {item["name"]: item for item in yaml.safe_load(text)["deployments"]}


def test_serve_names_scheduled_deployments_per_plan_and_can_shorten_the_pass() -> None:
    plain = _deployments(deployment_file(4))
    served = _deployments(deployment_file(4, per_plan_names=True, pass_every_seconds=20))
    assert set(plain) - set(served) == {"supervise-plan", "quarter-review", "year-review"}
    assert {"supervise-plan-4", "quarter-review-4", "year-review-4"} <= set(served)
    assert served["supervise-plan-4"]["schedules"] == [{"interval": 20, "active": True}]
    assert served["quarter-review-4"]["schedules"] == plain["quarter-review"]["schedules"]
    assert served["supervise-shard"]["parameters"] == {"plan_id": 4}


def test_a_past_year_plan_is_deployed_with_every_schedule_paused() -> None:
    paused = _deployments(deployment_file(4, schedules_active=False))
    schedules = [item for deployment in paused.values() for item in deployment.get("schedules", [])]
    assert len(schedules) == 3
    assert all(schedule["active"] is False for schedule in schedules)
    assert paused["supervise-item"]["triggers"][0]["enabled"] is True


def test_prefect_defaults_leave_the_foreman_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    monkeypatch.setattr(os, "environ", environ)
    configure_prefect_defaults(Settings(data_dir=tmp_path))
    assert environ["PREFECT_HOME"] == str((tmp_path / "prefect").resolve())
    assert "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED" not in environ
