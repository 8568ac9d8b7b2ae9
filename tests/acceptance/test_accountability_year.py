"""Done-when of issue 14 (digest and scores): seed 002 supervised from 2021-05-24 to 2021-12-31
with daily digests on, for 学会部 and 普及部 worked out by hand: their digests day by day
(which days one goes out, which items and what is due in each), their leaders' digests, and
their 2021Q3 and 2021 scores point by point against docs/scoring.md's rule.

Seed 002 is loaded as the demo loads it (`examples/departments.yaml`, the demo's clock), started
with `examples/policy.yaml` under `delivery: digest` for departments and leaders. The days
run without a Prefect server: each working day at 09:00 the pass's own steps run (the items
reconciled in chunks of 5, so one department's notices come from several chunks, then the
end-of-pass digest composition, as `supervise_plan` does), and at 15:00 the departments act.

The departments' behaviour (everything else reports on the afternoon of its request day):
- 学会部 reports item 4's September progress (due 2021-09-24) only on 2021-10-11;
- 普及部 never reports item 7's August progress (due 2021-08-25), and reports item 9's
  October progress (due 2021-10-25) on 2021-10-27.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from duban.demo.runner import DIRECTORY_FILE, PLAN_FILE, at
from models.clock import LOCAL_TZ, resolve
from models.db import make_engine, make_sessionmaker, transaction, upgrade
from models.directory import Department
from models.directory_file import load_directory_file
from models.forms import SubmissionForm
from models.outbox import OutboxMessage
from models.plan import Item
from models.plan_reader.document import read_plan_file
from models.policy import load_policy
from models.scoring import DepartmentScore
from models.settings import get_settings
from models.supervision import Checkin, Notice
from tasks.assignment import start_supervision
from tasks.calendar_store import stored_calendar, work_calendar
from tasks.digest import compose_digests_now
from tasks.directory import upsert_directory
from tasks.plan_import import digest_bytes, import_plan, matcher_from_session
from tasks.scoring import department_scores
from tasks.submissions import record_submission
from tasks.supervision import reconcile_now

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
START, END = date(2021, 5, 24), date(2021, 12, 31)
CHUNK = 5

XUEHUI, PUJI = "xuehuibu@example.org", "pujibu@example.org"
LIU, LI = "liu.weidong@example.org", "li.jianguo@example.org"  # their 分管领导
HEAD, OFFICE = "zhao.zhigang@example.org", "bangongshi@example.org"
XUEHUI_ITEMS = ["第2项", "第3项", "第4项", "第5项", "第10项", "第11项", "第12项", "第17项"]
PUJI_ITEMS = ["第2项", "第6项", "第7项", "第8项", "第9项", "第10项", "第13项"]

# (department, item number, original due date) -> the afternoon it is reported (None: never).
HELD = {
    ("学会部", "4", date(2021, 9, 24)): date(2021, 10, 11),
    ("普及部", "7", date(2021, 8, 25)): None,
    ("普及部", "9", date(2021, 10, 25)): date(2021, 10, 27),
}

# The progress reports are due on the 25th, moved back to a working day (07-25 is a Sunday
# -> 07-23, 09-25 a Saturday -> 09-24), the self-assessment on 12-31; the request (报送提醒)
# goes out 5 working days before (06-14 端午 skipped; for 09-24 the 中秋 holidays 09-19..21
# are skipped and the 调休 Saturday 09-18 counts). The 05-25 request was due on 05-18, before
# supervision started, so it goes out on the first day. Every department reports on its
# request day, so on a request day its digest lists each of its items once with that due date.
REQUESTS = {
    date(2021, 5, 24): date(2021, 5, 25),
    date(2021, 6, 18): date(2021, 6, 25),
    date(2021, 7, 16): date(2021, 7, 23),
    date(2021, 8, 18): date(2021, 8, 25),
    date(2021, 9, 16): date(2021, 9, 24),
    date(2021, 10, 18): date(2021, 10, 25),
    date(2021, 11, 18): date(2021, 11, 25),
    date(2021, 12, 24): date(2021, 12, 31),
}


def _request_digest(items: list[str], due: date) -> list[tuple[str, str]]:
    return [(item, f"报送提醒，报送截止 {_cn(due)}") for item in items]


def _cn(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（星期{'一二三四五六日'[day.weekday()]}）"


# 学会部's digests, day by day. Besides the request days: item 4's September report is late:
# - 09-24, its due date: the reminder (到期提醒), nothing else is due;
# - 09-26 (the 调休 Sunday, 1 working day after): level 1 (部室联系人督办) goes to the contact,
#   so to the department's digest, 2 days overdue;
# - 09-28 (level 2, 分管领导) and 09-30 (level 3, 主要负责人 and 督查室) go to the leaders'
#   own digests, not the department's; the report of 10-11 ends it.
XUEHUI_DIGESTS = {
    **{day: _request_digest(XUEHUI_ITEMS, due) for day, due in REQUESTS.items()},
    date(2021, 9, 24): [("第4项", f"到期提醒，报送截止 {_cn(date(2021, 9, 24))}")],
    date(2021, 9, 26): [
        ("第4项", f"报送截止 {_cn(date(2021, 9, 24))}，已逾期2天，部室联系人督办（第1级）")
    ],
}
# 普及部's: item 7's August report never comes: reminder on 08-25, level 1 on 08-26 (the next
# working day) in the department's digest, levels 2 (08-30: 26, 27, 30) and 3 (09-01: …, 31,
# 09-01) to the leaders. Item 9's October report comes on 10-27: reminder 10-25, level 1 on
# 10-26, reported before level 2 (10-28).
PUJI_DIGESTS = {
    **{day: _request_digest(PUJI_ITEMS, due) for day, due in REQUESTS.items()},
    date(2021, 8, 25): [("第7项", f"到期提醒，报送截止 {_cn(date(2021, 8, 25))}")],
    date(2021, 8, 26): [
        ("第7项", f"报送截止 {_cn(date(2021, 8, 25))}，已逾期1天，部室联系人督办（第1级）")
    ],
    date(2021, 10, 25): [("第9项", f"到期提醒，报送截止 {_cn(date(2021, 10, 25))}")],
    date(2021, 10, 26): [
        ("第9项", f"报送截止 {_cn(date(2021, 10, 25))}，已逾期1天，部室联系人督办（第1级）")
    ],
}
TOP = "主要负责人、督查室督办（第3级）"
# The leaders' digests about these two departments' items: one per leader per day.
LEADER_DIGESTS = {
    (LI, date(2021, 8, 30)): [
        ("第7项", f"普及部：报送截止 {_cn(date(2021, 8, 25))}，已逾期5天，分管领导督办（第2级）")
    ],
    (LIU, date(2021, 9, 28)): [
        ("第4项", f"学会部：报送截止 {_cn(date(2021, 9, 24))}，已逾期4天，分管领导督办（第2级）")
    ],
    (HEAD, date(2021, 9, 1)): [
        (
            "第7项",
            f"普及部：报送截止 {_cn(date(2021, 8, 25))}，已逾期7天，{TOP}",
        )
    ],
    (HEAD, date(2021, 9, 30)): [
        (
            "第4项",
            f"学会部：报送截止 {_cn(date(2021, 9, 24))}，已逾期6天，{TOP}",
        )
    ],
}


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Seed 002 and the demo's directory loaded as `duban.demo.runner.prepare` loads them
    (at 08:00 on 2021-05-24, so the assignments count from then), started with digests on."""
    policy = (REPO / "examples/policy.yaml").read_text(encoding="utf-8")
    policy = policy.replace("  departments: each", "  departments: digest")
    policy = policy.replace("  leaders: each", "  leaders: digest")
    assert policy.count(": digest") == 2
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUBAN_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    moment = at(START, 8, 0)
    with transaction(make_sessionmaker(engine)) as session:
        upsert_directory(session=session, directory=load_directory_file(DIRECTORY_FILE), now=moment)
        session.flush()
        outcome = import_plan(
            session=session,
            parsed=read_plan_file(PLAN_FILE),
            source_name=PLAN_FILE.name,
            source_sha256=digest_bytes(PLAN_FILE.read_bytes()),
            now=moment,
            matcher=matcher_from_session(session=session),
        )
        start_supervision(
            session=session,
            plan_id=outcome.plan_id,
            now=moment,
            policy=load_policy(tmp_path / "policy.yaml"),
            calendar=work_calendar(session=session),
        )
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def _supervise_year(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    calendar = stored_calendar()
    with sessions() as session:
        item_ids = sorted(session.scalars(select(Item.id).where(Item.plan_id == 1)))
        numbers = {i.id: i.number for i in session.scalars(select(Item))}
        names = {d.id: d.name for d in session.scalars(select(Department))}
    day = START
    while day <= END:
        if calendar.is_workday(day):
            as_of = resolve(day)
            for start in range(0, len(item_ids), CHUNK):
                reconcile_now(sessions, 1, item_ids[start : start + CHUNK], as_of)
            compose_digests_now(sessions, as_of)
            _departments_act(sessions, day, numbers, names)
        day += timedelta(days=1)


def _departments_act(
    sessions: object, day: date, numbers: dict[int, str], names: dict[int, str]
) -> None:
    afternoon = datetime.combine(day, time(15, 0), tzinfo=LOCAL_TZ)
    with transaction(sessions) as session:  # type: ignore[arg-type]
        asked = set(
            session.scalars(select(Notice.checkin_id).where(Notice.checkin_id.is_not(None)))
        )
        for checkin in session.scalars(select(Checkin).where(Checkin.status == "pending")):
            key = (
                names[checkin.department_id],
                numbers[checkin.item_id],
                checkin.original_due_date,
            )
            if key in HELD:
                if HELD[key] != day:
                    continue
            elif checkin.id not in asked:
                continue
            record_submission(
                session=session,
                checkin_id=checkin.id,
                department_id=checkin.department_id,
                form=SubmissionForm(status="on_track", narrative="按计划推进"),
                source="cli",
                now=afternoon,
            )


def _digests(engine: Engine, address: str) -> dict[date, list[tuple[str, str]]]:
    """The digests mailed to `address`: by day, each item's number and its lines' text."""
    found: dict[date, list[tuple[str, str]]] = {}
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "digest")
            .order_by(OutboxMessage.created_at, OutboxMessage.key)
        ).all()
    for row in rows:
        if row.to_addrs != [address]:
            continue
        day = date.fromisoformat(row.key.split(":")[1])
        assert day not in found, f"two digests to {address} on {day}"
        lines: list[tuple[str, str]] = []
        item = ""
        for text in row.text_body.splitlines():
            if match := re.match(r"^\d+\. (第\d+项) ", text):
                item = match.group(1)
            elif match := re.match(r"^   - (.*)$", text):
                lines.append((item, match.group(1)))
        found[day] = lines
    return found


def _points(score: DepartmentScore) -> dict[str, list[tuple[str, str, float]]]:
    return {
        task.item_number: [(d.kind.value, d.detail, d.points) for d in task.deductions]
        for task in score.tasks
        if task.deductions
    }


def test_digests_and_scores_of_two_departments_over_the_year(seeded: Engine) -> None:
    _supervise_year(seeded)

    assert _digests(seeded, XUEHUI) == XUEHUI_DIGESTS
    assert _digests(seeded, PUJI) == PUJI_DIGESTS
    for (address, day), lines in LEADER_DIGESTS.items():
        mine = [
            line
            for line in _digests(seeded, address).get(day, [])
            if line[1].startswith(("学会部", "普及部"))
        ]
        assert mine == lines, (address, day)
    # No email per notice went to the two departments (assignments excepted: one each per
    # item, sent by `duban start` before the first pass).
    with make_sessionmaker(seeded)() as session:
        singles = [
            (row.kind, row.to_addrs)
            for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind != "digest"))
            if set(row.to_addrs) & {XUEHUI, PUJI, LIU, LI}
        ]
    assert {kind for kind, _ in singles} <= {"assignment", "receipt"}

    with make_sessionmaker(seeded)() as session:
        q3 = department_scores(
            session=session, plan_id=1, as_of=resolve(date(2021, 9, 30)), quarter="2021Q3"
        )
        year = department_scores(
            session=session, plan_id=1, as_of=resolve(date(2021, 12, 31)), year=True
        )
    q3_by = {score.name: score for score in q3.scores}
    year_by = {score.name: score for score in year.scores}

    # 2021Q3 as of 09-30: check-ins due 07-23, 08-25 and 09-24 of each item (8 × 3 = 24 for
    # 学会部, 7 × 3 = 21 for 普及部). 学会部's item 4 (09-24) is not reported by 09-30: missing
    # 3, its level 3 (09-30, within the quarter) 2, and the item is 欠序时进度 (a check-in due
    # and not reported) 1: 94. Mean (7 × 100 + 94) / 8 = 99.25, K = 1.0 (8 tasks >= 6).
    xuehui = q3_by["学会部"]
    assert _points(xuehui) == {
        "4": [
            ("missing", "2021-09-24应报，截至2021-09-30未报送", 3.0),
            ("escalation", "2021-09-30被3级督办", 2.0),
            ("behind", "截至2021-09-30欠序时进度", 1.0),
        ]
    }
    assert (xuehui.on_time, xuehui.late, xuehui.missing) == (23, 0, 1)
    assert (xuehui.weighted_tasks, xuehui.mean, xuehui.load_factor) == (8.0, 99.25, 1.0)
    assert (xuehui.score, xuehui.grade) == (99.25, "优秀")
    # 普及部's item 7 (08-25) is missing: 3 + level 3 on 09-01: 2 + 欠序时进度: 1 -> 94.
    # Mean (6 × 100 + 94) / 7 = 99.142… -> 99.14, K = 1.0 (7 tasks).
    puji = q3_by["普及部"]
    assert _points(puji) == {
        "7": [
            ("missing", "2021-08-25应报，截至2021-09-30未报送", 3.0),
            ("escalation", "2021-09-01被3级督办", 2.0),
            ("behind", "截至2021-09-30欠序时进度", 1.0),
        ]
    }
    assert (puji.on_time, puji.late, puji.missing) == (20, 0, 1)
    assert (puji.weighted_tasks, puji.mean, puji.load_factor) == (7.0, 99.14, 1.0)
    assert (puji.score, puji.grade) == (99.14, "优秀")

    # 2021 as of 12-31: the 8 check-ins of each item (05-25 … 12-31). 学会部's item 4 was
    # reported on 10-11: late by the working days in (09-24, 10-11]: 09-26 (调休), 27, 28, 29,
    # 30, 10-08, 10-09 (调休), 10-11 = 8 (国庆 01..07 are holidays): 1 + 0.2 × 8 = 2.6 (< cap 3);
    # level 3 costs 2; reported, nothing missed: on pace. 100 - 4.6 = 95.4; mean
    # (700 + 95.4) / 8 = 99.425, K 1.0.
    xuehui = year_by["学会部"]
    assert _points(xuehui) == {
        "4": [
            ("late", "2021-09-24应报，2021-10-11报送，逾期8个工作日", 2.6),
            ("escalation", "2021-09-30被3级督办", 2.0),
        ]
    }
    assert (xuehui.on_time, xuehui.late, xuehui.missing) == (63, 1, 0)
    assert [t.score for t in xuehui.tasks if t.item_number == "4"] == [95.4]
    # 99.425 rounds half up (四舍五入) to 99.43, as an office's spreadsheet gives it.
    assert (xuehui.mean, xuehui.score, xuehui.grade) == (99.43, 99.43, "优秀")
    # 普及部: item 7 still missing on 12-31 (3 + 2 + 1: 94); item 9 reported 10-27, 2 working
    # days late (10-26, 10-27): 1.4, and its level 1 of 10-26: 0.5 -> 98.1. Mean
    # (5 × 100 + 94 + 98.1) / 7 = 692.1 / 7 = 98.871… -> 98.87.
    puji = year_by["普及部"]
    assert _points(puji) == {
        "7": [
            ("missing", "2021-08-25应报，截至2021-12-31未报送", 3.0),
            ("escalation", "2021-09-01被3级督办", 2.0),
            ("behind", "截至2021-12-31欠序时进度", 1.0),
        ],
        "9": [
            ("late", "2021-10-25应报，2021-10-27报送，逾期2个工作日", 1.4),
            ("escalation", "2021-10-26被1级督办", 0.5),
        ],
    }
    assert (puji.on_time, puji.late, puji.missing) == (54, 1, 1)
    assert (puji.mean, puji.score, puji.grade) == (98.87, 98.87, "优秀")
    # Ranked: both behind the departments with a clean year (100), 学会部 before 普及部.
    assert year_by["学会部"].rank < year_by["普及部"].rank
