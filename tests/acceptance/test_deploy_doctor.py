"""The go-live path as an operator runs it: `duban ui`, `duban deploy`, `duban worker`,
`duban portal` and `duban doctor`, every setting from the environment, against a Prefect
server behind basic auth on PostgreSQL.

`duban doctor` names what is missing until deploy, worker and portal fix it; it notices a
worker that died (the server's foreman marks it offline), a stopped form and a form without
`PREFECT_API_URL`; `duban deploy` pauses the schedules of a plan whose year is over. The
CLI runs as a subprocess exactly as an operator would run it; an SMTP server listens on
loopback.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from duban.children import stop_process_group as _stop
from models.db import make_engine, make_sessionmaker, transaction
from tests.builders import make_plan
from tests.integration.smtp_servers import ScriptedServer
from tests.prefect_server import free_port, fresh_postgres_database, require_postgres

DUBAN = str(Path(sys.executable).with_name("duban"))
AUTH = "duban-admin:correct-horse-battery"
pytestmark = [pytest.mark.prefect, pytest.mark.slow]


@dataclass
class GuardedServer:
    """`duban ui` as a subprocess, behind basic auth, and the header a test client needs."""

    api_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedServer]:
    """`duban ui` on PostgreSQL with PREFECT_SERVER_API_AUTH_STRING; foreman every 2 s."""
    require_postgres()
    workdir = tmp_path_factory.mktemp("prefect-doctor")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    with fresh_postgres_database("doctor") as database_url:
        env.update(
            {
                "PREFECT_HOME": str(workdir / "prefect-home"),
                "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
                "PREFECT_SERVER_API_AUTH_STRING": AUTH,
                "PREFECT_UI_ENABLED": "false",
                "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "2",
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "DUBAN_DATA_DIR": str(workdir / "ui-data"),
            }
        )
        log = workdir / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603
                [DUBAN, "ui", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = GuardedServer(f"http://127.0.0.1:{port}/api", process, log)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.3)
            else:
                raise AssertionError(log.read_text(errors="replace")[-3000:])
            yield server
        finally:
            _stop(process)


@pytest.fixture
def operator_env(prefect_server: GuardedServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an operator's shell: app database, SMTP, form, Prefect API + auth."""
    with ScriptedServer() as smtp:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env.update(
            {
                "PREFECT_API_URL": prefect_server.api_url,
                "PREFECT_API_AUTH_STRING": AUTH,
                "PREFECT_HOME": str(tmp_path / "prefect-client"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "DUBAN_DATA_DIR": str(tmp_path / "data"),
                "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
                "DUBAN_SMTP_HOST": "127.0.0.1",
                "DUBAN_SMTP_PORT": str(smtp.port),
                "DUBAN_PORTAL_PORT": str(free_port()),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_WORKER_HEARTBEAT_SECONDS": "1",
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


def _background(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [DUBAN, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _online_workers(server: GuardedServer) -> int:
    response = httpx.post(
        f"{server.api_url}/work_pools/duban-pool/workers/filter", json={}, headers=server.headers
    )
    response.raise_for_status()
    return sum(worker["status"] == "ONLINE" for worker in response.json())


def _wait(condition: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.5)
    raise AssertionError(what)


def _portal_up(env: dict[str, str]) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        url = f"http://127.0.0.1:{env['DUBAN_PORTAL_PORT']}/healthz"
        return httpx.get(url, timeout=1).status_code == 200
    return False


def test_go_live_path_with_basic_auth_from_the_environment(
    prefect_server: GuardedServer, operator_env: dict[str, str]
) -> None:
    wrong = duban("doctor", env=operator_env | {"PREFECT_API_AUTH_STRING": "duban-admin:wrong"})
    assert "认证失败" in wrong.stdout, wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stdout + wrong.stderr

    before = duban("doctor", env=operator_env)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "Traceback" not in before.stdout + before.stderr
    assert "认证失败" not in before.stdout
    for fix in ("duban db upgrade", "duban deploy", "duban portal"):
        assert fix in before.stdout

    assert duban("db", "upgrade", env=operator_env).returncode == 0
    deployed = duban("deploy", "--plan", "7", env=operator_env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "已部署 8 个流程（计划 7）" in deployed.stdout  # with inbox-decision and inbox-sync
    assert "还没有编号为 7 的计划" in deployed.stderr
    response = httpx.get(
        f"{prefect_server.api_url}/deployments/name/supervise-plan-on-workdays/supervise-plan",
        headers=prefect_server.headers,
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

    worker = _background("worker", env=operator_env)
    portal = _background("portal", env=operator_env)
    try:
        _wait(lambda: _online_workers(prefect_server) >= 1, "no worker came online", 100)
        _wait(lambda: _portal_up(operator_env), "the form did not come up")
        healthy = duban("doctor", env=operator_env)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "全部正常" in healthy.stdout

        os.killpg(worker.pid, signal.SIGKILL)  # dies without saying goodbye
        worker.wait(timeout=30)
        _wait(lambda: _online_workers(prefect_server) == 0, "a dead worker stayed ONLINE", 60)
        dead_worker = duban("doctor", env=operator_env)
        assert dead_worker.returncode == 1
        assert "没有在线的工作进程" in dead_worker.stdout

        _stop(portal)
        stopped_form = duban("doctor", env=operator_env)
        assert stopped_form.returncode == 1
        assert "无法连接" in stopped_form.stdout and "duban portal" in stopped_form.stdout

        unwired = {key: value for key, value in operator_env.items() if key != "PREFECT_API_URL"}
        portal = _background("portal", env=unwired)
        _wait(lambda: _portal_up(operator_env), "the form did not come up again")
        no_events = duban("doctor", env=operator_env)
        assert no_events.returncode == 1
        assert "报送表单服务未设置 PREFECT_API_URL" in no_events.stdout
    finally:
        _stop(worker)
        _stop(portal)


def test_deploy_pauses_the_schedules_of_a_plan_whose_year_is_over(
    prefect_server: GuardedServer, operator_env: dict[str, str]
) -> None:
    assert duban("db", "upgrade", env=operator_env).returncode == 0
    engine = make_engine(operator_env["DUBAN_DATABASE_URL"])
    with transaction(make_sessionmaker(engine)) as session:
        plan_id = make_plan(session, items=[("测试任务", [], [])], year=2021).plan.id
    engine.dispose()
    deployed = duban("deploy", "--plan", str(plan_id), env=operator_env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "2021 年的计划，该年度已结束" in deployed.stderr
    assert "定时督办和通报已暂停" in deployed.stderr and "--allow-past-year" in deployed.stderr
    response = httpx.get(
        f"{prefect_server.api_url}/deployments/name/supervise-plan-on-workdays/supervise-plan",
        headers=prefect_server.headers,
    )
    deployment = response.json()
    assert deployment["parameters"] == {"plan_id": plan_id}
    assert [schedule["active"] for schedule in deployment["schedules"]] == [False]


def test_deploy_without_a_prefect_server_is_one_clear_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_API",))}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    env["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    result = duban("deploy", "--plan", "1", env=env, timeout=60)
    assert result.returncode == 1
    assert "Prefect 服务器不可用" in result.stderr
    assert "Traceback" not in result.stderr
