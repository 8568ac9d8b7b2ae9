"""`duban deploy --zombie-after` refuses a window no heartbeat can satisfy, before any I/O;
the automation body is Prefect's zombie-run detection as documented."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from duban.cli import app
from duban.prefect_api import ZOMBIE_AUTOMATION, zombie_automation


@pytest.mark.parametrize("seconds", ["1", "30"])
def test_a_window_not_longer_than_the_minimum_heartbeat_is_refused(seconds: str) -> None:
    result = CliRunner().invoke(app, ["deploy", "--plan", "1", "--zombie-after", seconds])
    assert result.exit_code == 1
    assert "--zombie-after 必须为 0 或大于 30 秒" in result.output


def test_negative_window_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["deploy", "--plan", "1", "--zombie-after", "-5"])
    assert result.exit_code == 2


def test_automation_body_crashes_runs_silent_past_the_window() -> None:
    body = zombie_automation(240)
    assert body["name"] == ZOMBIE_AUTOMATION
    assert body["enabled"] is True
    trigger = body["trigger"]
    assert trigger["posture"] == "Proactive"
    assert trigger["within"] == 240.0
    assert trigger["threshold"] == 1
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert "prefect.flow-run.Crashed" in trigger["expect"]
    assert body["actions"] == [
        {
            "type": "change-flow-run-state",
            "name": None,
            "state": "CRASHED",
            "message": "240 秒内没有心跳：工作进程已失联，运行标记为 Crashed。",
            "force": False,
        }
    ]
