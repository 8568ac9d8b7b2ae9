"""`PrefectApi` talks to a Prefect server behind basic auth and says when the secret is wrong;
it creates the zombie-run automation once and updates it in place when the window changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from duban.doctor import check_zombie_automation
from duban.prefect_api import ZOMBIE_AUTOMATION, PrefectApi, zombie_automation
from tests.prefect_server import PrefectServer, start_prefect_server

AUTH = "duban-admin:correct-horse"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server subprocess that requires `AUTH` (PREFECT_SERVER_API_AUTH_STRING)."""
    server = start_prefect_server(
        tmp_path_factory.mktemp("prefect-auth"),
        extra_env={"PREFECT_SERVER_API_AUTH_STRING": AUTH},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.prefect
@pytest.mark.slow
def test_basic_auth_is_checked_beyond_the_open_health_route(guarded_server: PrefectServer) -> None:
    refused = "认证失败：请设置与服务器一致的 PREFECT_API_AUTH_STRING"
    assert PrefectApi(guarded_server.api_url).health_problem() == refused
    assert PrefectApi(guarded_server.api_url, "duban-admin:wrong").health_problem() == refused
    api = PrefectApi(guarded_server.api_url, AUTH)
    assert api.health_problem() is None
    assert api.work_pool("duban-pool") is None
    assert api.deployment_names() == set()


def test_unreachable_server_is_one_line() -> None:
    problem = PrefectApi("http://127.0.0.1:9/api", timeout=1).health_problem()
    assert problem is not None and problem.startswith("无法连接 http://127.0.0.1:9/api")


@pytest.mark.prefect
@pytest.mark.slow
def test_zombie_automation_is_created_once_and_updated_in_place(
    guarded_server: PrefectServer,
) -> None:
    api = PrefectApi(guarded_server.api_url, AUTH)
    missing = check_zombie_automation(api)
    assert not missing.ok
    assert "duban deploy" in missing.fix
    assert api.ensure_automation(zombie_automation(240)) == "created"
    assert api.ensure_automation(zombie_automation(240)) == "unchanged"
    first = api.automation(ZOMBIE_AUTOMATION)
    assert first is not None
    trigger = first["trigger"]
    assert trigger["posture"] == "Proactive"
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert set(trigger["expect"]) == {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
    }
    assert trigger["for_each"] == ["prefect.resource.id"]
    assert trigger["match"] == {"prefect.resource.id": "prefect.flow-run.*"}
    assert [action["state"] for action in first["actions"]] == ["CRASHED"]
    assert api.zombie_window() == 240
    assert check_zombie_automation(api).ok

    assert api.ensure_automation(zombie_automation(90)) == "updated"
    second = api.automation(ZOMBIE_AUTOMATION)
    assert second is not None and second["id"] == first["id"]
    assert api.zombie_window() == 90
    response = api._request(
        "POST", "/automations/filter", json={"automations": {"name": {"any_": [ZOMBIE_AUTOMATION]}}}
    )
    assert len(response.json()) == 1
