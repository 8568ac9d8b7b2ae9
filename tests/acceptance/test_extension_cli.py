"""`duban extension list/approve/reject` end to end, as a supervisor runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from duban.runtime import open_store
from models.db import transaction
from models.settings import Settings
from models.supervision import Checkin, Extension
from tasks.submissions import request_extension
from tests.portal_rows import DUE, make_checkin

DUBAN = Path(sys.executable).with_name("duban")


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("DUBAN_DATABASE_URL", None)
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_supervisor_approves_and_rejects_extensions(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    now = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
    with transaction(store.sessions) as session:
        rows = make_checkin(session)
        first = request_extension(
            session=session,
            checkin_id=rows.checkin.id,
            department_id=rows.department.id,
            new_date=date(2021, 10, 29),
            reason="专家档期调整",
            now=now,
        )
        other = make_checkin(session, title="另一项")
        second = request_extension(
            session=session,
            checkin_id=other.checkin.id,
            department_id=other.department.id,
            new_date=date(2021, 10, 15),
            reason="场地",
            now=now,
        )
    listed = run(tmp_path, "extension", "list")
    assert listed.returncode == 0, listed.stderr
    assert "专家档期调整" in listed.stdout and "共 2 条" in listed.stdout

    approved = run(tmp_path, "extension", "approve", str(first.id), "--by", "王主任")
    assert approved.returncode == 0, approved.stderr
    assert "2021-10-29" in approved.stdout
    rejected = run(tmp_path, "extension", "reject", str(second.id))
    assert rejected.returncode == 0, rejected.stderr

    again = run(tmp_path, "extension", "approve", str(first.id))
    assert again.returncode == 1
    assert "已处理" in again.stderr and "Traceback" not in again.stderr
    missing = run(tmp_path, "extension", "reject", "999999")
    assert missing.returncode == 1 and "不存在" in missing.stderr

    with store.sessions() as session:
        checkin = session.get_one(Checkin, rows.checkin.id)
        untouched = session.get_one(Checkin, other.checkin.id)
        decisions = dict(session.execute(select(Extension.id, Extension.decision)).all())
    assert (checkin.due_date, checkin.original_due_date) == (date(2021, 10, 29), DUE)
    assert untouched.due_date == DUE
    assert decisions == {first.id: "approved", second.id: "rejected"}
    assert "共 0 条" in run(tmp_path, "extension", "list").stdout
    store.engine.dispose()
