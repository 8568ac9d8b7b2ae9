"""A task-division table's own 完成时限 and 时序进度 drive its check-ins, end to end with the CLI:
import the 32-item table (tests/plan_tables.py), start supervision, and check for three items,
worked out by hand on 2023's calendar, every check-in date and what it asks for; then the
request emails of the daily pass ask for the milestone's output."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from models.plan import Item
from models.supervision import Checkin
from tests.plan_tables import write_xlsx

REPO = Path(__file__).resolve().parents[2]
DUBAN = str(REPO / ".venv/bin/duban")

pytestmark = pytest.mark.slow

EXPECTED = {
    # Milestones 3月 / 4月—6月 / 12月 and a year-end deadline: the monthly reports give way to
    # one per milestone; December's coincides with the self-assessment (29 Dec, a Friday).
    "1.1": [
        ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
        ("implement", 101, "progress", date(2023, 3, 31), "3月：制定学习方案"),
        ("implement", 102, "progress", date(2023, 6, 30), "4月—6月：开展专题宣讲"),
        ("review", 1, "self_assessment", date(2023, 12, 29), "12月：总结"),
    ],
    # 每季度末: quarterly reports on the last working day of Mar, Jun and Sep (30 Sep 2023 is
    # in the 中秋国庆 holiday, so 28 Sep).
    "1.4": [
        ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
        ("implement", 301, "progress", date(2023, 3, 31), ""),
        ("implement", 302, "progress", date(2023, 6, 30), ""),
        ("implement", 303, "progress", date(2023, 9, 28), ""),
        ("review", 1, "self_assessment", date(2023, 12, 29), ""),
    ],
    # 9月30日前 with milestones 5月 / 6月—8月 / 9月: the last milestone's report is the final
    # one, due 28 Sep; nothing is owed after the deadline.
    "2.1": [
        ("mobilize", 1, "work_plan", date(2023, 2, 28), ""),
        ("implement", 101, "progress", date(2023, 5, 31), "5月：确定主题"),
        ("implement", 102, "progress", date(2023, 8, 31), "6月—8月：筹备"),
        ("implement", 103, "self_assessment", date(2023, 9, 28), "9月：举办年会"),
    ],
}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [DUBAN, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )


def test_item_schedules_drive_checkins_and_their_emails(tmp_path: Path) -> None:
    database = tmp_path / "duban.db"
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_DATABASE_URL": f"sqlite:///{database}",
    }
    table = write_xlsx(tmp_path / "分工方案")
    assert _run(env, "init").returncode == 0
    assert _run(env, "departments", "import", "examples/departments.yaml").returncode == 0
    parsed = _run(env, "plan", "parse", str(table), "--format", "table")
    assert parsed.returncode == 0, parsed.stderr
    imported = _run(env, "plan", "import", str(table), "--yes")
    assert imported.returncode == 0, imported.stderr
    started = _run(env, "start", "--as-of", "2023-01-03")
    assert started.returncode == 0, started.stderr

    engine = create_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        for number, expected in EXPECTED.items():
            rows = session.execute(
                select(Checkin.phase_key, Checkin.seq, Checkin.kind, Checkin.due_date, Checkin.asks)
                .join(Item, Item.id == Checkin.item_id)
                .where(Item.number == number, Checkin.role == "lead")
                .order_by(Checkin.due_date)
            ).all()
            assert [tuple(row) for row in rows] == expected, number

    passed = _run(env, "supervise", "--as-of", "2023-03-24")
    assert passed.returncode == 0, passed.stderr
    again = _run(env, "supervise", "--as-of", "2023-03-24")
    assert again.returncode == 0, again.stderr
    with Session(engine) as session:
        requests = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subject.like("%1.1 深入学习%"))
        ).all()
        asks = [m for m in requests if "本次报送要求（时序进度）：3月：制定学习方案" in m.text_body]
        assert len(asks) == 1, [m.subject for m in requests]
        assert "3月：制定学习方案" in asks[0].html_body
        generic = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subject.like("%1.4 做好意识形态%"))
        ).all()
        assert generic and all("本次报送要求" not in m.text_body for m in generic)
    engine.dispose()


def test_first_unit_leads_as_a_user_asks_for_it(tmp_path: Path) -> None:
    import json

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["2023年重点任务分工方案"])
    sheet.append(["序号", "工作任务", "责任单位", "完成时限"])
    sheet.append(["1", "建设科普阵地。", "普及部、学会部、办公室", "年内完成"])
    path = tmp_path / "分工.xlsx"
    workbook.save(path)
    env = {**os.environ, "DUBAN_DATA_DIR": str(tmp_path)}
    plain = _run(env, "plan", "parse", str(path), "--format", "json")
    told = _run(env, "plan", "parse", str(path), "--format", "json", "--first-unit-leads")
    assert plain.returncode == 0 and told.returncode == 0, plain.stderr + told.stderr
    before, after = json.loads(plain.stdout)["items"][0], json.loads(told.stdout)
    assert (before["lead"], before["support"]) == (["普及部", "学会部", "办公室"], [])
    assert (after["items"][0]["lead"], after["items"][0]["support"]) == (
        ["普及部"],
        ["学会部", "办公室"],
    )
    assert any("第一个责任单位为牵头单位" in w["reason"] for w in after["warnings"])
    assert after["items"][0]["deadline"]["due"] == "2023-12-31"
