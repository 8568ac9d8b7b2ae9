"""`duban inbox list|sync` as a supervisor and an operator run them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from duban.runtime import open_store
from models.db import transaction
from models.settings import Settings
from tasks.closure import request_completion
from tasks.submissions import request_extension
from tests.portal_rows import make_checkin

DUBAN = Path(sys.executable).with_name("duban")
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    for name in ("DUBAN_DATABASE_URL", "PREFECT_API_URL"):
        env.pop(name, None)
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_inbox_lists_what_waits_and_sync_needs_a_prefect_server(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    with transaction(store.sessions) as session:
        rows = make_checkin(session)
        extension = request_extension(
            session=session,
            checkin_id=rows.checkin.id,
            department_id=rows.department.id,
            new_date=date(2021, 10, 29),
            reason="专家档期调整",
            now=NOW,
        )
        completion = request_completion(
            session=session,
            item_id=rows.item.id,
            department_id=rows.department.id,
            summary="任务完成。",
            now=NOW,
        )
        plan_id, department = rows.item.plan_id, rows.department.name
    listed = run(tmp_path, "inbox", "list", "--plan", str(plan_id))
    assert listed.returncode == 0, listed.stderr
    assert f"extension:{extension.id}" in listed.stdout
    assert f"completion:{completion.id}" in listed.stdout
    assert f"待审批延期：第1项 搭建高水平科技开放交流平台—{department}" in listed.stdout
    assert "共 2 项待决定。" in listed.stdout
    empty = run(tmp_path, "inbox", "list", "--plan", str(plan_id + 1000))
    assert "共 0 项待决定。" in empty.stdout

    synced = run(tmp_path, "inbox", "sync", "--plan", str(plan_id))
    assert synced.returncode == 1
    assert "未设置 PREFECT_API_URL" in synced.stderr + synced.stdout
    assert "Traceback" not in synced.stderr
