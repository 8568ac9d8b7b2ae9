"""Chat rows beside the email: a report's notice to the groups of its recipients, once;
none when the policy posts nothing to chat (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Plan
from models.report import Report
from models.robots import Robot, robot_rows
from models.vocabulary import Channel
from tasks.reporting.store import generate_report
from tests.report_builders import AS_OF, seed_plan

GENERATED = datetime(2021, 9, 30, 10, 0, tzinfo=UTC)
LEADER_GROUP = "https://oapi.dingtalk.com/robot/send?access_token=leadergroup01"
HEAD_GROUP = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=headgroup01"
DEPT_GROUP = "https://open.feishu.cn/open-apis/bot/v2/hook/deptgroup01"


def chat_rows(session: Session, plan_id: int) -> list[OutboxMessage]:
    report_keys = [f"report:{report_id}" for report_id in _report_ids(session, plan_id)]
    return [
        row
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel != Channel.EMAIL)
        )
        if any(row.key.endswith(key) for key in report_keys)
    ]


def _report_ids(session: Session, plan_id: int) -> list[int]:
    return list(session.scalars(select(Report.id).where(Report.plan_id == plan_id)))


def configure(session: Session, department_id: int, leader: str) -> None:
    department = session.get(Department, department_id)
    assert department is not None
    department.leader_email = leader
    department.head_email = "someone-else@example.org"
    department.contact_emails = ["contact@example.org"]
    department.robots = robot_rows(
        department=[Robot(kind=Channel.FEISHU, url=DEPT_GROUP)],
        leader=[Robot(kind=Channel.DINGTALK, url=LEADER_GROUP, secret="SECabc123456")],
        head=[Robot(kind=Channel.WECOM, url=HEAD_GROUP)],
    )
    session.flush()


def report(session: Session, plan_id: int, out: Path) -> None:
    generate_report(
        session=session,
        plan_id=plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=out,
        quarter="2021Q3",
    )
    session.flush()


def test_a_report_is_posted_to_its_recipients_groups_once(session: Session, tmp_path: Path) -> None:
    leader = f"leader-{tmp_path.name}@example.org"
    seeded = seed_plan(session, recipients=[leader])
    configure(session, seeded.departments["学会部"], leader)
    report(session, seeded.plan_id, tmp_path)
    report(session, seeded.plan_id, tmp_path)
    rows = chat_rows(session, seeded.plan_id)
    # Only the 分管领导 is a report recipient: their group, not the head's or department's.
    assert [(row.channel, row.to_addrs) for row in rows] == [(Channel.DINGTALK, [LEADER_GROUP])]
    text = rows[0].text_body
    assert text.startswith("【督办通报】2021年工作要点2021年第三季度督办通报已印发")
    assert "本期应报送8次" in text and "http" not in text
    assert rows[0].subject and rows[0].status == "pending"


def test_no_chat_when_the_policy_posts_nothing(session: Session, tmp_path: Path) -> None:
    leader = f"leader-{tmp_path.name}@example.org"
    seeded = seed_plan(session, recipients=[leader])
    configure(session, seeded.departments["学会部"], leader)
    plan = session.get(Plan, seeded.plan_id)
    assert plan is not None
    plan.policy = {"chat_notices": []}
    session.flush()
    report(session, seeded.plan_id, tmp_path)
    assert chat_rows(session, seeded.plan_id) == []
    (report_id,) = _report_ids(session, seeded.plan_id)
    # The report still goes by email: a leader among the recipients gets an own copy (with
    # instruct links, `tasks.report_instruct`), keyed report:<id>:leader:<digest>.
    emails = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key.startswith(f"report:{report_id}"))
    ).all()
    assert [(m.channel, m.to_addrs) for m in emails] == [("email", [leader])]
