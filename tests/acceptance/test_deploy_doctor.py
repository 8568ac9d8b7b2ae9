"""`duban doctor` names what is missing; `duban deploy` and `duban worker` fix it, end to end.

A real Prefect server (subprocess, SQLite), a migrated SQLite app database and an SMTP server
on loopback; the CLI runs as a subprocess exactly as an operator would run it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.smtp_servers import ScriptedServer
from tests.prefect_server import PrefectServer, start_prefect_server

DUBAN = str(Path(sys.executable).with_name("duban"))
pytestmark = [pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server subprocess on SQLite for this module."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-doctor"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def operator_env(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an operator's shell: app database, SMTP, Prefect API."""
    with ScriptedServer() as smtp:
        env = dict(prefect_server.client_env)
        env.update(
            {
                "DUBAN_DATA_DIR": str(tmp_path / "data"),
                "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
                "DUBAN_SMTP_HOST": "127.0.0.1",
                "DUBAN_SMTP_PORT": str(smtp.port),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "COLUMNS": "240",
            }
        )
        yield env


def duban(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [DUBAN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _wait_for_online_worker(server: PrefectServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        response = httpx.post(f"{server.api_url}/work_pools/duban-pool/workers/filter", json={})
        if response.status_code == 200 and any(
            worker["status"] == "ONLINE" for worker in response.json()
        ):
            return
        time.sleep(0.5)
    raise AssertionError("no worker came online")


def test_doctor_reports_problems_until_deploy_and_worker_fix_them(
    prefect_server: PrefectServer, operator_env: dict[str, str]
) -> None:
    started = time.monotonic()
    before = duban("doctor", env=operator_env)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "duban db upgrade" in before.stdout
    assert "duban deploy" in before.stdout
    assert "Traceback" not in before.stdout + before.stderr

    assert duban("db", "upgrade", env=operator_env).returncode == 0
    deployed = duban("deploy", "--plan", "7", env=operator_env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "已部署 6 个流程（计划 7）" in deployed.stdout
    response = httpx.get(
        f"{prefect_server.api_url}/deployments/name/supervise-plan-on-workdays/supervise-plan"
    )
    assert response.status_code == 200
    deployment = response.json()
    assert deployment["parameters"] == {"plan_id": 7}
    assert deployment["work_pool_name"] == "duban-pool"
    assert deployment["schedules"][0]["schedule"]["timezone"] == "Asia/Shanghai"
    pull = deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == "{{ $DUBAN_PROJECT_DIR }}"

    no_worker = duban("doctor", env=operator_env)
    assert no_worker.returncode == 1
    assert "duban worker" in no_worker.stdout

    worker = subprocess.Popen(  # noqa: S603
        [DUBAN, "worker"],
        env=operator_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_online_worker(prefect_server, started + 100)
        healthy = duban("doctor", env=operator_env)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "全部正常" in healthy.stdout


def test_deploy_without_a_prefect_server_is_one_clear_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_API",))}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    result = duban("deploy", "--plan", "1", env=env, timeout=60)
    assert result.returncode == 1
    assert "Prefect 服务器不可用" in result.stderr
    assert "Traceback" not in result.stderr
