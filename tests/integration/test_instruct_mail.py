"""Instruct links in the emails leaders receive (SQLite and PostgreSQL): one link per leader
in an escalation, bound to the item and that leader; each leader among a report's
recipients gets an own copy with links for the items their departments lead."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.outbox import OutboxMessage
from models.settings import Settings, get_settings
from models.supervision import Notice
from notifications.compose import enqueue_notice_email
from notifications.links import InvalidLink, verify_instruct_token, verify_token
from tasks.reporting.store import generate_report
from tests.builders import make_department, make_plan

SETTINGS = Settings(secret_key="s" * 40, public_url="https://duban.example.org", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
LINK = re.compile(r"https?://[^/\s]+/i/([A-Za-z0-9_.\-]+)")


def tokens(text: str) -> list[str]:
    return LINK.findall(text)


def test_an_escalation_carries_one_link_per_leader_bound_to_item_and_leader(
    session: Session,
) -> None:
    dept = make_department(session)
    built = make_plan(session, items=[("推进学会改革", [dept], [])])
    item = built.items[0]
    recipients = [
        {"role": "contact", "name": dept.contact_name, "email": dept.contact_emails[0]},
        {"role": "leader", "name": dept.leader_name, "email": dept.leader_email},
        {"role": "head", "name": dept.head_name, "email": dept.head_email},
        {"role": "office", "name": "督查室", "email": "office@example.org"},
    ]
    notices = [
        Notice(
            key=f"t:{kind}:{item.id}",
            kind=kind,
            level=level,
            item_id=item.id,
            department_id=dept.id,
            recipients=recipients if kind == "escalation" else recipients[:1],
            decided_at=NOW,
        )
        for kind, level in (("escalation", 2), ("reminder", 0))
    ]
    session.add_all(notices)
    session.flush()
    shared = enqueue_notice_email(session=session, notice=notices[0], now=NOW, settings=SETTINGS)
    reminder = enqueue_notice_email(session=session, notice=notices[1], now=NOW, settings=SETTINGS)
    assert shared is not None and reminder is not None
    # The office and the contact (Cc) get the escalation without any leader's link; each
    # leader an own copy, to them alone, with their own link only.
    assert (shared.to_addrs, shared.cc_addrs) == (["office@example.org"], [dept.contact_emails[0]])
    assert tokens(shared.text_body) == [] and tokens(shared.html_body or "") == []
    own = {
        m.to_addrs[0]: m
        for m in session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.notice_id == notices[0].id, OutboxMessage.id != shared.id
            )
        )
    }
    copies = [own.pop(dept.leader_email), own.pop(dept.head_email)]
    assert own == {}
    assert [(m.to_addrs, m.cc_addrs) for m in copies] == [
        ([dept.leader_email], []),
        ([dept.head_email], []),
    ]
    assert all(m.key.startswith(f"notice:{notices[0].key}:leader:") for m in copies)
    found = [token for m in copies for token in tokens(m.text_body)]
    assert len(found) == 2
    assert [tokens(m.html_body or "").count(t) for m, t in zip(copies, found, strict=True)] == [
        2,
        2,
    ]
    claims = [verify_instruct_token(token, settings=SETTINGS, now=NOW) for token in found]
    assert [(c.item_id, c.department_id, c.role) for c in claims] == [
        (item.id, dept.id, "leader"),
        (item.id, dept.id, "head"),
    ]
    assert f"分管领导 {dept.leader_name}：https://" in copies[0].text_body
    assert "领导批示（无需登录" in copies[0].text_body
    assert tokens(reminder.text_body) == []
    for token in found:
        try:
            verify_token(token, settings=SETTINGS, now=NOW)
        except InvalidLink:
            continue
        raise AssertionError("an instruct token verified as a form token")


def test_each_leader_recipient_gets_an_own_report_copy_with_their_items(
    session: Session, tmp_path: Path
) -> None:
    process = get_settings()
    first, second = make_department(session), make_department(session)
    built = make_plan(
        session, items=[("第一项任务", [first], []), ("第二项任务", [second], [first])]
    )
    built.plan.report_recipients = [
        first.leader_email,
        {"name": "王主席", "email": second.head_email},
        "archive@example.org",
    ]
    built.items[1].colour = "red"
    session.flush()
    result = generate_report(
        session=session,
        plan_id=built.plan.id,
        as_of=NOW,
        generated_at=NOW,
        out_dir=tmp_path,
        quarter="2021Q3",
    )
    assert result.emailed
    messages = {
        message.key: message
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "report"))
    }
    report_id = result.report_id
    shared = messages.pop(f"report:{report_id}")
    assert shared.to_addrs == ["archive@example.org"] and tokens(shared.text_body) == []
    by_leader = {message.to_addrs[0]: message for message in messages.values()}
    assert set(by_leader) == {first.leader_email, second.head_email}
    assert all(key.startswith(f"report:{report_id}:leader:") for key in messages)
    leader_claims = [
        verify_instruct_token(token, settings=process, now=NOW)
        for token in tokens(by_leader[first.leader_email].text_body)
    ]
    assert [(c.item_id, c.department_id, c.role) for c in leader_claims] == [
        (built.items[0].id, first.id, "leader")
    ]
    head_text = by_leader[second.head_email].text_body
    head_claims = [verify_instruct_token(t, settings=process, now=NOW) for t in tokens(head_text)]
    assert [(c.item_id, c.department_id, c.role) for c in head_claims] == [
        (built.items[1].id, second.id, "head")
    ]
    assert "第2项 第二项任务（红灯）" in head_text and "王主席" in head_text
    assert by_leader[second.head_email].attachments == shared.attachments
