"""Done-when of issue 4: seed 002 supervised from 2021-05-24 to 2021-12-31 on a simulated
clock through the real flows; three items checked against dates worked out by hand."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from flows.simulate import simulate
from flows.supervise import preview_items
from models.calendar import default_calendar
from models.clock import LOCAL_TZ, local_date, resolve
from models.db import make_engine, make_sessionmaker, transaction
from models.directory import Department
from models.forms import SubmissionForm
from models.plan import Item
from models.settings import get_settings
from models.supervision import Checkin, Notice
from tasks.checkins import extend_checkin
from tasks.submissions import record_submission

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.slow,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]
REPO = Path(__file__).resolve().parents[2]
START, END = date(2021, 5, 24), date(2021, 12, 31)

# Progress reports are due on the 25th, moved back to a working day: 2021-07-25 is a Sunday
# (-> 07-23) and 2021-09-25 a Saturday (-> 09-24); the review report on 12-31 (a Friday).
DUES = [
    date(2021, 5, 25),
    date(2021, 6, 25),
    date(2021, 7, 23),
    date(2021, 8, 25),
    date(2021, 9, 24),
    date(2021, 10, 25),
    date(2021, 11, 25),
    date(2021, 12, 31),
]
# Requests go out 5 working days before: 06-14 (端午) is skipped for 06-25; for 09-24 the
# 中秋 holidays 09-19..21 are skipped and the 调休 Saturday 09-18 counts. The first request
# was due on 05-18, before supervision started, so it goes out on the first day, 05-24.
REQUESTS = [
    date(2021, 5, 24),
    date(2021, 6, 18),
    date(2021, 7, 16),
    date(2021, 8, 18),
    date(2021, 9, 16),
    date(2021, 10, 18),
    date(2021, 11, 18),
    date(2021, 12, 24),
]
XUEHUI = {"contact": "xuehuibu@example.org", "leader": "liu.weidong@example.org"}
HEAD, OFFICE = "zhao.zhigang@example.org", "bangongshi@example.org"
SUZHI = "suzhi@example.org"


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [str(REPO / ".venv/bin/duban"), *args],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Seed 002 imported and started on 2021-05-24 through the CLI, in a fresh database."""
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    env = {**os.environ, "DUBAN_DATA_DIR": str(tmp_path), "DUBAN_DATABASE_URL": url}
    _cli(env, "init")
    _cli(env, "departments", "import", "examples/departments.yaml")
    _cli(
        env,
        "plan",
        "import",
        "examples/changzhi_2021_work_points.txt",
        "--departments",
        "examples/departments.yaml",
        "--yes",
    )
    _cli(env, "start", "1", "--as-of", START.isoformat())
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def _afternoon(day: date) -> datetime:
    return datetime.combine(day, time(15, 0), tzinfo=LOCAL_TZ)


def _ids(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    with make_sessionmaker(engine)() as session:
        items = {i.number: i.id for i in session.scalars(select(Item).where(Item.plan_id == 1))}
        depts = {d.name: d.id for d in session.scalars(select(Department))}
    return items, depts


async def test_a_supervised_year_on_seed_002(seeded: Engine, prefect_harness: None) -> None:
    items, depts = _ids(seeded)
    sessions = make_sessionmaker(seeded)
    late = (items["4"], depts["学会部"], date(2021, 9, 24))
    extended = (items["5"], depts["素质中心"], date(2021, 9, 24))
    colours: dict[int, dict[date, str]] = {items[n]: {} for n in ("3", "4", "5")}

    def on_day(day: date) -> None:
        rerun = preview_items(plan_id=1, item_ids=sorted(items.values()), as_of=resolve(day))
        assert [r.item_id for r in rerun if r.changed] == [], f"re-running {day} changed rows"
        with transaction(sessions) as session:
            for item_id in colours:
                colours[item_id][day] = session.get_one(Item, item_id).colour
            asked = set(
                session.scalars(select(Notice.checkin_id).where(Notice.checkin_id.is_not(None)))
            )
            pending = session.scalars(select(Checkin).where(Checkin.status == "pending")).all()
            for checkin in pending:
                key = (checkin.item_id, checkin.department_id, checkin.original_due_date)
                if key == extended and day == date(2021, 9, 24):
                    extend_checkin(
                        session=session,
                        checkin_id=checkin.id,
                        new_due=date(2021, 10, 1),
                        reason="等待企业对接名单",
                        decided_by="督查室",
                        now=_afternoon(day),
                        calendar=default_calendar(),
                    )
                    continue
                held = {late: date(2021, 10, 11), extended: date(2021, 10, 9)}.get(key)
                if checkin.id not in asked or (held is not None and day < held):
                    continue
                record_submission(
                    session=session,
                    checkin_id=checkin.id,
                    department_id=checkin.department_id,
                    form=SubmissionForm(status="on_track", narrative="按计划推进"),
                    source="cli",
                    now=_afternoon(day),
                )

    days = await simulate(1, START, END, on_day=on_day)
    assert days[0].day == START and days[-1].day == END
    assert date(2021, 9, 26) in [d.day for d in days]  # 调休 Sunday before 国庆
    assert date(2021, 10, 4) not in [d.day for d in days]  # 国庆

    with sessions() as session:
        dues = session.scalars(
            select(Checkin.original_due_date)
            .where(Checkin.item_id == items["3"])
            .order_by(Checkin.original_due_date)
        ).all()
        assert dues == DUES

        def notices(item_id: int, department_id: int) -> list[tuple[date, str, int, list[str]]]:
            rows = session.scalars(
                select(Notice)
                .where(Notice.item_id == item_id, Notice.department_id == department_id)
                .order_by(Notice.decided_at, Notice.id)
            ).all()
            return [
                (local_date(n.decided_at), n.kind, n.level, [r["email"] for r in n.recipients])
                for n in rows
            ]

        contact = [XUEHUI["contact"]]
        on_time = [(START, "assignment", 0, contact)] + [
            (day, "request", 0, contact) for day in REQUESTS
        ]
        assert notices(items["3"], depts["学会部"]) == on_time

        sept = REQUESTS.index(date(2021, 9, 16)) + 1
        assert (
            notices(items["4"], depts["学会部"])
            == [
                *on_time[: sept + 1],
                (date(2021, 9, 24), "reminder", 0, contact),
                (date(2021, 9, 26), "escalation", 1, contact),  # +1 workday: 调休 Sunday
                (date(2021, 9, 28), "escalation", 2, [XUEHUI["leader"]]),
                (date(2021, 9, 30), "escalation", 3, [HEAD, OFFICE]),
                *on_time[sept + 1 :],
            ]
        )
        suzhi = [SUZHI]
        assert (
            notices(items["5"], depts["素质中心"])
            == [
                (START, "assignment", 0, suzhi),
                *[(day, "request", 0, suzhi) for day in REQUESTS[:sept]],
                (date(2021, 9, 24), "reminder", 0, suzhi),
                # extended to 10-01, a 国庆 holiday -> due 10-08; ladder restarts under epoch 1
                (date(2021, 9, 26), "request", 0, suzhi),
                (date(2021, 10, 8), "reminder", 0, suzhi),
                (date(2021, 10, 9), "escalation", 1, suzhi),  # 调休 Saturday
                *[(day, "request", 0, suzhi) for day in REQUESTS[sept:]],
            ]
        )

    c3, c4, c5 = (colours[items[n]] for n in ("3", "4", "5"))
    assert set(c3.values()) == {"green"}
    assert c4[date(2021, 9, 24)] == "green"
    assert c4[date(2021, 9, 26)] == "amber"
    assert c4[date(2021, 9, 28)] == "red"
    assert c4[date(2021, 10, 11)] == "red"
    assert c4[date(2021, 10, 12)] == "green"
    assert c5[date(2021, 10, 8)] == "green"
    assert c5[date(2021, 10, 9)] == "amber"
    assert c5[date(2021, 10, 11)] == "green"
