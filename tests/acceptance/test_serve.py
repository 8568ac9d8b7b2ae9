"""`duban serve` runs the whole system on one machine and stops without leaving a process.

On a fresh data dir, as a user would: `duban serve` (the daily pass every 10 s instead of
08:30, the test-only `--pass-every`), then `duban plan import` and `duban start` of a small
plan for this year in another shell. The real scheduler fires the pass on the new per-plan
deployment; a department submits through the form over HTTP; the `duban.checkin.submitted`
event triggers `supervise-item` for that item on the worker; the event relay child puts every
domain event the database holds into the server's feed; `duban doctor` finds the serve
set-up healthy; SIGTERM stops serve and every process below it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from duban.children import alive, descendants
from models import clock
from models.db import make_engine, make_sessionmaker
from models.outbox import DomainEvent
from models.plan import Item, Target
from models.settings import Settings
from models.supervision import Checkin
from notifications.links import make_token
from tasks.events import feed_total
from tests.prefect_server import free_port

DUBAN = str(Path(sys.executable).with_name("duban"))
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.prefect, pytest.mark.slow]

PLAN = """测试市科学技术协会{year}年工作要点

一、强化学会服务

1.举办学术交流活动。全年举办学术活动不少于20场次。（牵头部室：学会部）

2.开展科普进社区。开展科普活动5场以上。（牵头部室：普及部）
"""


def _until(condition: Callable[[], Any], what: str, seconds: float, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}\n--- serve output ---\n{log.read_text(errors='replace')}")


def _runs(api: str, deployment: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{api}/deployments/name/{deployment}", timeout=5)
    if found.status_code != 200:
        return []
    body = {"deployments": {"id": {"any_": [found.json()["id"]]}}}
    runs: list[dict[str, Any]] = httpx.post(f"{api}/flow_runs/filter", json=body).json()
    return runs


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def test_serve_runs_the_pass_and_the_event_triggered_run_then_stops_cleanly(
    tmp_path: Path,
) -> None:
    ui_port, portal_port, smtp_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {
        "DUBAN_DATA_DIR": str(tmp_path / "data"),
        "DUBAN_PORTAL_PORT": str(portal_port),
        "DUBAN_PUBLIC_URL": f"http://127.0.0.1:{portal_port}",
        "DUBAN_SMTP_PORT": str(smtp_port),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    api = f"http://127.0.0.1:{ui_port}/api"
    log = tmp_path / "serve.out"
    with log.open("wb") as out:
        serve = subprocess.Popen(  # noqa: S603
            [DUBAN, "serve", "--ui-port", str(ui_port), "--pass-every", "10", "--rescan", "2"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _until(lambda: "按 Ctrl+C" in log.read_text(), "serve did not come up", 150, log)
        assert f"Prefect 界面：http://127.0.0.1:{ui_port}" in log.read_text()

        plan_file = tmp_path / "plan.txt"
        plan_file.write_text(PLAN.format(year=clock.local_date(clock.now()).year), "utf-8")
        directory = str(REPO / "examples" / "departments.yaml")
        for args in (
            ["plan", "import", str(plan_file), "--departments", directory, "--yes"],
            ["start", "1"],
        ):
            done = subprocess.run(  # noqa: S603
                [DUBAN, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stdout + done.stderr

        passes = _until(
            lambda: [
                run
                for run in _runs(api, "supervise-plan-on-workdays/supervise-plan-1")
                if run["state_type"] == "COMPLETED"
            ],
            "the scheduler did not run the daily pass",
            180,
            log,
        )
        assert passes[0]["parameters"]["plan_id"] == 1

        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'duban.db'}")
        with make_sessionmaker(engine)() as session:
            checkin = session.scalars(select(Checkin).order_by(Checkin.id)).first()
            assert checkin is not None
            item_id = checkin.item_id
            targets = session.scalars(select(Target).where(Target.item_id == item_id)).all()
            assert session.get(Item, item_id) is not None
            token = make_token(
                settings=Settings(),
                checkin_id=checkin.id,
                department_id=checkin.department_id,
                due_date=checkin.due_date,
            )
        engine.dispose()
        with httpx.Client(base_url=f"http://127.0.0.1:{portal_port}", timeout=30) as browser:
            page = browser.get(f"/c/{token}")
            assert page.status_code == 200, page.text
            form = {
                "csrf_token": _hidden(page.text, "csrf_token"),
                "submit_id": _hidden(page.text, "submit_id"),
                "status": "on_track",
                "narrative": "已举办学术活动12场次。",
            } | {f"value_{target.id}": "12" for target in targets}
            posted = browser.post(f"/c/{token}", data=form)
            assert posted.status_code == 200, posted.text

        triggered = _until(
            lambda: [
                run
                for run in _runs(api, "supervise-item/supervise-item")
                if run["parameters"].get("item_id") == item_id and run["state_type"] == "COMPLETED"
            ],
            "the submission did not trigger supervise-item",
            120,
            log,
        )
        assert triggered

        def events_all_in_feed() -> bool:
            """The relay child has published every row and the feed holds them all."""
            with make_sessionmaker(engine)() as session:
                total = session.scalar(select(func.count()).select_from(DomainEvent)) or 0
                waiting = session.scalar(
                    select(func.count()).where(DomainEvent.published_at.is_(None))
                )
            since = clock.now() - timedelta(days=400)
            until = clock.now() + timedelta(days=1)
            return waiting == 0 and feed_total(api, since=since, until=until) == total > 0

        _until(events_all_in_feed, "the event relay did not publish every event", 120, log)
        engine.dispose()

        doctor = subprocess.run(  # noqa: S603
            [DUBAN, "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "duban serve" in doctor.stdout and "全部正常" in doctor.stdout
        assert (tmp_path / "data" / "serve.json").exists()
    finally:
        tree = descendants(serve.pid)
        os.kill(serve.pid, signal.SIGTERM)
        code = serve.wait(timeout=90)
    assert len(tree) >= 4, tree
    assert code == 0, log.read_text()
    assert "已停止。" in log.read_text()
    assert [pid for pid in tree if alive(pid)] == []
    assert not (tmp_path / "data" / "serve.json").exists()
