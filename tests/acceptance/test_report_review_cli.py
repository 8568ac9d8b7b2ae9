"""`duban review list/accept/return` end to end, as a supervisor runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.runtime import open_store
from models.db import transaction
from models.forms import SubmissionForm
from models.outbox import OutboxMessage
from models.settings import Settings
from models.supervision import Checkin, CheckinReview
from tasks.submissions import record_submission
from tests.portal_rows import make_checkin

DUBAN = Path(sys.executable).with_name("duban")


def run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUBAN_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env.pop("DUBAN_DATABASE_URL", None)
    return subprocess.run(  # noqa: S603
        [str(DUBAN), *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_supervisor_returns_one_report_and_bulk_accepts_a_departments(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    store = open_store(Settings(data_dir=tmp_path, _env_file=None))
    now = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
    with transaction(store.sessions) as session:
        first = make_checkin(session, title="搭建高水平科技开放交流平台")
        second = make_checkin(session, title="另一项")
        for rows in (first, second):
            record_submission(
                session=session,
                checkin_id=rows.checkin.id,
                department_id=rows.department.id,
                form=SubmissionForm(status="on_track", narrative="已完成"),
                source="cli",
                now=now,
            )
        first_id, second_id = first.checkin.id, second.checkin.id
        first_plan = first.item.plan_id
        second_department = second.department.name

    listed = run(tmp_path, "review", "list", "--as-of", "2021-09-22")
    assert listed.returncode == 0, listed.stderr
    assert "共 2 份待审核" in listed.stdout and "搭建高水平科技开放交流平台" in listed.stdout

    no_reason = run(tmp_path, "review", "return", str(first_id))
    assert no_reason.returncode == 1
    assert "退回必须填写理由" in no_reason.stderr and "Traceback" not in no_reason.stderr

    returned = run(
        tmp_path,
        "review",
        "return",
        str(first_id),
        "--reason",
        "未附活动清单[/red]",
        "--by",
        "王主任",
        "--as-of",
        "2021-09-22",
    )
    assert returned.returncode == 0, returned.stderr
    assert f"报送 {first_id}：已退回" in returned.stdout and "2021-09-30" in returned.stdout

    bulk = ["review", "accept", "--department", second_department]
    cancelled = run(tmp_path, *bulk, stdin="n\n")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "将通过以下 1 份报送" in cancelled.stdout and "已取消" in cancelled.stdout
    accepted = run(tmp_path, *bulk, "--yes")
    assert accepted.returncode == 0, accepted.stderr
    assert f"报送 {second_id}：审核通过" in accepted.stdout and "共通过 1 份" in accepted.stdout

    again = run(tmp_path, "review", "accept", str(second_id))
    assert again.returncode == 1 and "已审核通过" in again.stderr
    twice = run(tmp_path, "review", "return", str(first_id), "--reason", "再退")
    assert twice.returncode == 1 and "等待部门重新报送" in twice.stderr
    unknown = run(tmp_path, "review", "accept", "--department", "不存在的部")
    assert unknown.returncode == 1 and "没有名为“不存在的部”的部门" in unknown.stderr
    nothing = run(tmp_path, "review", "accept")
    assert nothing.returncode == 1 and "请指定报送编号" in nothing.stderr
    assert "没有待审核的报送" in run(tmp_path, "review", "list").stdout
    status = run(tmp_path, "status", "--plan", str(first_plan), "--as-of", "2021-09-22")
    assert status.returncode == 0, status.stderr
    assert "已退回待重新报送 1 份" in status.stdout
    assert "审核：通过 0 份，退回 1 次" in status.stdout

    with store.sessions() as session:
        decisions = {row.checkin_id: row.decision for row in session.scalars(select(CheckinReview))}
        reviewers = set(session.scalars(select(CheckinReview.reviewer)))
        batches = set(session.scalars(select(CheckinReview.batch)))
        checkin = session.get_one(Checkin, first_id)
        returns_mail = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "returned")
        )
    assert decisions == {first_id: "returned", second_id: "accepted"}
    assert reviewers == {"王主任", "督查室"}
    assert any(batch.startswith("bulk department=") for batch in batches)
    assert (checkin.status, checkin.return_reason) == ("pending", "未附活动清单[/red]")
    assert returns_mail == 1
    store.engine.dispose()
