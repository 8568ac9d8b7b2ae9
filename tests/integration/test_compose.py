"""Composing notices, receipts and reports from database rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from models.policy import parse_policy
from models.report import Report
from models.settings import Settings
from notifications.compose import (
    enqueue_notice_email,
    enqueue_receipt_email,
    enqueue_report_email,
)
from notifications.links import verify_token
from tests.integration.mail_fixtures import NOW, add_notice, add_submission, make_world

SETTINGS = Settings(public_url="http://mail.test:8765")


def test_reminder_names_everything_and_carries_a_valid_link(session: Session) -> None:
    world = make_world(session)
    add_submission(session, world, narrative="<script>alert(1)</script>")
    notice = add_notice(session, world, kind="reminder")
    message = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
    assert message is not None
    assert message.to_addrs == ["xuehui@example.org"]
    assert message.notice_id == notice.id
    assert "第4项" in message.subject and "已逾期5天" in message.subject
    for expected in (
        world.plan.title,
        world.department.name,
        "落实达标",
        "2021年6月30日（星期三）",
        "举办学术交流活动不少于200场次（上次报送：86场次）",
        "<script>alert(1)</script>",
    ):
        assert expected in message.text_body
    assert "&lt;script&gt;" in message.html_body and "<script>" not in message.html_body
    link = next(line for line in message.text_body.splitlines() if "/c/" in line).strip()
    assert link.startswith("http://mail.test:8765/c/")
    claims = verify_token(link.rsplit("/", 1)[1], settings=SETTINGS, now=NOW)
    assert (claims.checkin_id, claims.department_id) == (world.checkin.id, world.department.id)


def test_same_notice_enqueued_twice_writes_one_row(session: Session) -> None:
    world = make_world(session)
    notice = add_notice(session, world, kind="escalation", level=2, email="lead@example.org")
    first = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
    second = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
    assert first is not None and second is not None and first.id == second.id
    count = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.key == first.key)
    )
    assert count == 1
    assert "【督办·分管领导督办】" in first.subject and "逾期5天" in first.text_body


def test_escalation_title_follows_the_plan_policy_ladder(session: Session) -> None:
    world = make_world(session)
    ladder = [
        {"level": 1, "delay_workdays": 2, "recipients": ["head"]},
        {"level": 2, "delay_workdays": 4, "recipients": ["leader", "office"]},
    ]
    world.plan.policy = parse_policy({"escalation": ladder}).to_mapping()
    session.flush()
    first = add_notice(session, world, kind="escalation", level=1, email="head@example.org")
    second = add_notice(session, world, kind="escalation", level=2, email="lead@example.org")
    one = enqueue_notice_email(session=session, notice=first, now=NOW, settings=SETTINGS)
    two = enqueue_notice_email(session=session, notice=second, now=NOW, settings=SETTINGS)
    assert one is not None and two is not None
    assert one.subject.startswith("【督办·主要负责人督办】")
    assert two.subject.startswith("【督办·分管领导、督查室督办】")
    assert "第2级督办（分管领导、督查室督办）" in two.text_body


def test_an_escalation_to_a_leader_and_the_department_gives_the_leader_an_own_copy(
    session: Session,
) -> None:
    # The leader's instruct link is the leader's alone: the department's contact gets the
    # escalation without it, the leader an own copy with it (not Cc'd to the contact).
    world = make_world(session)
    notice = add_notice(session, world, kind="escalation", level=1)
    notice.recipients = [
        {"role": "contact", "name": "王芳", "email": "xuehui@example.org"},
        {"role": "leader", "name": "张伟", "email": "zhangwei@example.org"},
    ]
    message = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
    assert message is not None
    rows = {
        row.key: row
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.notice_id == notice.id)
        )
    }
    shared = rows.pop(f"notice:{notice.key}")
    assert shared.id == message.id
    (own,) = rows.values()
    assert own.key.startswith(f"notice:{notice.key}:leader:")
    assert (shared.to_addrs, shared.cc_addrs) == (["xuehui@example.org"], [])
    assert (own.to_addrs, own.cc_addrs) == (["zhangwei@example.org"], [])
    assert shared.text_body.startswith("王芳：") and own.text_body.startswith("张伟：")
    assert "/i/" not in shared.text_body and "/i/" not in (shared.html_body or "")
    assert own.text_body.count("/i/") == 1
    again = enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS)
    assert again is not None and again.id == shared.id
    total = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.notice_id == notice.id)
    )
    assert total == 2


def test_notice_without_address_writes_nothing(session: Session) -> None:
    world = make_world(session)
    notice = add_notice(session, world, kind="request")
    notice.recipients = [{"role": "contact", "name": "王芳", "email": ""}]
    assert enqueue_notice_email(session=session, notice=notice, now=NOW, settings=SETTINGS) is None


def test_receipt_shows_the_submission_and_the_version_before(session: Session) -> None:
    world = make_world(session)
    add_submission(session, world, version=1, narrative="第一版内容")
    second = add_submission(session, world, version=2, narrative="第二版内容")
    message = enqueue_receipt_email(session=session, submission=second, now=NOW, settings=SETTINGS)
    assert message is not None and message.kind == "receipt"
    assert "第2版" in message.subject
    assert "第二版内容" in message.text_body and "第一版内容" in message.text_body
    assert "举办学术交流活动不少于200场次：86场次" in message.text_body


def test_report_email_attaches_the_report_files(session: Session, tmp_path: Path) -> None:
    world = make_world(session)
    docx = tmp_path / "2021Q2.docx"
    docx.write_bytes(b"PK fake docx")
    report = Report(
        plan_id=world.plan.id,
        period="2021Q2",
        kind="quarter",
        as_of=NOW,
        generated_at=NOW,
        files={"docx": str(docx)},
        summary={"lines": ["绿灯12项"]},
    )
    session.add(report)
    session.flush()
    message = enqueue_report_email(
        session=session,
        report=report,
        recipients=[{"name": "李明", "email": "boss@example.org"}],
        now=NOW,
        settings=SETTINGS,
    )
    assert message is not None
    assert "2021年第二季度" in message.subject
    assert message.attachments[0]["filename"] == "2021Q2.docx"
    assert "绿灯12项" in message.text_body
