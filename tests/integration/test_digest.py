"""The daily digest end to end on SQLite and PostgreSQL: held notices, one digest per
recipient per day across chunks, re-runs, late notices, leaders' digests, chat robots, and a
statement count that does not grow with the number of departments."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.digest import DeliveryRule, DigestEntry
from models.directory import Department, DepartmentAlias
from models.errors import InputError
from models.forms import SubmissionForm
from models.outbox import OutboxMessage
from models.policy import SupervisionPolicy, default_policy, load_policy
from models.robots import Robot, robot_rows
from models.settings import Settings
from models.supervision import Checkin, Notice
from models.vocabulary import Channel
from notifications.links import verify_department_token
from notifications.rendering import format_date
from portal.app import create_app
from portal.security import RateLimiter
from tasks.assignment import start_supervision
from tasks.digest import compose_digests, delivery_names
from tasks.reconcile import reconcile_items
from tasks.report_review import return_report
from tasks.submissions import record_submission
from tests.builders import make_department, make_plan

CALENDAR = WorkCalendar()
SETTINGS = Settings(secret_key="g" * 40, public_url="http://portal.test", _env_file=None)
PAGE_LINK = re.compile(r"http://portal\.test/d/([A-Za-z0-9_.-]+)")
DIGEST = default_policy().model_copy(
    update={"delivery": DeliveryRule(departments="digest", leaders="digest")}
)


@dataclass
class Supervised:
    plan_id: int
    item_ids: list[int]
    departments: list[Department]
    policy: SupervisionPolicy


def supervised(
    session: Session, leads: list[int], policy: SupervisionPolicy = DIGEST
) -> Supervised:
    """A started plan whose item n is led by department `leads[n]` (new departments)."""
    make_department(session, office=True)
    departments = [make_department(session) for _ in range(max(leads) + 1)]
    built = make_plan(
        session, items=[(f"任务{n}", [departments[lead]], []) for n, lead in enumerate(leads)]
    )
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=policy,
        calendar=CALENDAR,
    )
    return Supervised(built.plan.id, [item.id for item in built.items], departments, policy)


def run_pass(session: Session, plan: Supervised, day: date, chunks: list[list[int]]) -> list[str]:
    """Reconcile `chunks` (item indexes) one after another, then compose the digests (links
    signed with `SETTINGS`)."""
    as_of = resolve(day)
    for chunk in chunks:
        reconcile_items(
            session=session,
            plan_id=plan.plan_id,
            item_ids=[plan.item_ids[n] for n in chunk],
            as_of=as_of,
            policy=plan.policy,
            calendar=CALENDAR,
        )
    return compose_digests(session=session, now=as_of, settings=SETTINGS)


def mail(session: Session, plan: Supervised, *kinds: str) -> list[OutboxMessage]:
    """This plan's outbox rows of `kinds`: its departments' addresses (other tests' rows
    in the shared database are left out)."""
    addresses = {
        address
        for department in plan.departments
        for address in (*department.contact_emails, department.leader_email, department.head_email)
    }
    rows = session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.in_(kinds)).order_by(OutboxMessage.key)
    )
    return [row for row in rows if set(row.to_addrs) & addresses]


def waiting(session: Session, plan: Supervised) -> list[DigestEntry]:
    return list(
        session.scalars(
            select(DigestEntry)
            .join(Notice, Notice.id == DigestEntry.notice_id)
            .where(Notice.item_id.in_(plan.item_ids), DigestEntry.digest_key.is_(None))
        )
    )


def test_a_request_day_in_several_chunks_sends_one_digest_per_department(session: Session) -> None:
    plan = supervised(session, leads=[0, 0, 0, 1, 1, 2])
    # Three chunks, each holding items of several departments.
    keys = run_pass(session, plan, date(2021, 6, 23), [[0, 3], [1, 4, 5], [2]])
    requests = list(
        session.scalars(
            select(Notice).where(Notice.item_id.in_(plan.item_ids), Notice.kind == "request")
        )
    )
    assert len(requests) == 6
    assert mail(session, plan, "request") == []  # no email per notice
    digests = mail(session, plan, "digest")
    assert sorted(keys) == sorted(row.key for row in digests)
    by_department = {
        department.name: [row for row in digests if row.to_addrs == department.contact_emails]
        for department in plan.departments
    }
    assert {name: len(rows) for name, rows in by_department.items()} == {
        department.name: 1 for department in plan.departments
    }
    first = by_department[plan.departments[0].name][0]
    assert first.key == f"digest:2021-06-23:department:{plan.departments[0].id}:" + str(
        min(n.id for n in requests if n.department_id == plan.departments[0].id)
    )
    assert first.subject == (
        f"【督办汇总】{plan.departments[0].name} 2021年6月23日（星期三）：3项任务、3项待办"
    )
    text = first.text_body
    for title in ("任务0", "任务1", "任务2"):
        assert text.count(f" {title}\n") == 1, text
    assert "任务3" not in text
    assert text.count("报送提醒，报送截止 2021年6月30日（星期三）") == 3
    assert text.count("填报链接：http") == 3
    assert "填报链接" not in first.html_body and first.html_body.count("打开填报页面") == 3
    # Every department's digest ends with its own page link (本部门督办事项), text and HTML.
    for department in plan.departments:
        (row,) = by_department[department.name]
        (token,) = PAGE_LINK.findall(row.text_body)
        assert set(re.findall(r'href="http://portal\.test/d/([^"]+)"', row.html_body)) == {token}
        claims = verify_department_token(token, settings=SETTINGS, now=resolve(date(2021, 6, 23)))
        assert claims.department_id == department.id
        assert "本部门全部督办事项" in row.text_body
    assert waiting(session, plan) == []


def test_a_rerun_sends_nothing_twice(session: Session) -> None:
    plan = supervised(session, leads=[0, 1])
    first = run_pass(session, plan, date(2021, 6, 23), [[0, 1]])
    assert len(first) == 2
    assert run_pass(session, plan, date(2021, 6, 23), [[0], [1]]) == []
    assert compose_digests(session=session, now=resolve(date(2021, 6, 23))) == []
    assert len(mail(session, plan, "digest")) == 2


def test_a_notice_recorded_after_the_days_digest_goes_in_the_next_digest(session: Session) -> None:
    plan = supervised(session, leads=[0, 0])
    # The pass of 23 June reconciles item 0 and composes; an event-triggered supervise-item
    # run later that day reconciles item 1 (its notice waits: item runs compose nothing).
    assert len(run_pass(session, plan, date(2021, 6, 23), [[0]])) == 1
    reconcile_items(
        session=session,
        plan_id=plan.plan_id,
        item_ids=[plan.item_ids[1]],
        as_of=datetime.fromisoformat("2021-06-23T15:00:00+08:00"),
        policy=plan.policy,
        calendar=CALENDAR,
    )
    assert len(waiting(session, plan)) == 1
    # The next day's pass carries it, in that day's digest.
    keys = run_pass(session, plan, date(2021, 6, 24), [[0, 1]])
    assert len(keys) == 1 and keys[0].startswith("digest:2021-06-24:department:")
    (late,) = [row for row in mail(session, plan, "digest") if row.key == keys[0]]
    assert " 任务1\n" in late.text_body and " 任务0\n" not in late.text_body
    assert waiting(session, plan) == []


def test_a_line_reported_before_the_digest_is_left_out(session: Session) -> None:
    plan = supervised(session, leads=[0, 0])
    reconcile_items(
        session=session,
        plan_id=plan.plan_id,
        item_ids=plan.item_ids,
        as_of=resolve(date(2021, 6, 23)),
        policy=plan.policy,
        calendar=CALENDAR,
    )
    checkin = session.scalars(
        select(Checkin)
        .join(Notice, Notice.checkin_id == Checkin.id)
        .where(Notice.item_id == plan.item_ids[0], Notice.kind == "request")
    ).one()
    checkin.status = "submitted"
    session.flush()
    (key,) = compose_digests(session=session, now=resolve(date(2021, 6, 23)))
    (row,) = [row for row in mail(session, plan, "digest") if row.key == key]
    assert " 任务1\n" in row.text_body and " 任务0\n" not in row.text_body


def test_leaders_get_one_digest_each_per_day(session: Session) -> None:
    plan = supervised(session, leads=[0, 0, 1])
    for day in (date(2021, 6, 23), date(2021, 6, 30), date(2021, 7, 1)):
        run_pass(session, plan, day, [[0, 1, 2]])
    # 5 July: three workdays after the 30 June due date the ladder reaches level 2 (分管领导).
    keys = run_pass(session, plan, date(2021, 7, 5), [[0], [1, 2]])
    escalations = list(
        session.scalars(
            select(Notice).where(
                Notice.item_id.in_(plan.item_ids), Notice.kind == "escalation", Notice.level == 2
            )
        )
    )
    assert len(escalations) == 3
    assert mail(session, plan, "escalation") == []
    leader_digests = [key for key in keys if ":leader:" in key]
    assert len(leader_digests) == 2  # one per leader, not one per escalation
    first = plan.departments[0]
    (row,) = [r for r in mail(session, plan, "digest") if r.to_addrs == [first.leader_email]]
    assert row.key in leader_digests
    assert row.text_body.count(f"{first.name}：") == 2
    assert "分管领导督办（第2级）" in row.text_body and "已逾期5天" in row.text_body
    assert row.text_body.count("批示链接：http") == 2
    # A leader's digest ends with the page of each department it names: here only its own.
    (token,) = PAGE_LINK.findall(row.text_body)
    claims = verify_department_token(token, settings=SETTINGS, now=resolve(date(2021, 7, 5)))
    assert claims.department_id == first.id
    footer = f"各部门全部督办事项（只读，有效期与报送链接相同）：\n   {first.name} http"
    assert footer in row.text_body
    # The 督办单 issued with each level-2 escalation travel with the digest.
    assert len(row.attachments) == 2, row.attachments
    assert "附件：" in row.text_body


async def test_a_department_digests_page_link_opens_that_departments_page(
    own_migrated_engine: Engine,
) -> None:
    """Over HTTP, committed (the portal reads in its own sessions): the link in each
    department's digest opens that department's own page, which lists its check-in."""
    sessions = make_sessionmaker(own_migrated_engine)
    with transaction(sessions) as session:
        plan = supervised(session, leads=[0, 1])
        keys = run_pass(session, plan, date(2021, 6, 23), [[0, 1]])
        digests = {row.to_addrs[0]: row for row in mail(session, plan, "digest")}
        assert sorted(keys) == sorted(row.key for row in digests.values())
        names = [(d.name, d.contact_emails[0]) for d in plan.departments]
    now = resolve(datetime(2021, 6, 23, 15))
    app = create_app(
        SETTINGS,
        sessions,
        now=lambda: now,
        publish=lambda _s, _n: 0,
        limiter=RateLimiter(clock=lambda: 0.0),
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.14", 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        for n, ((name, address), (other, _)) in enumerate(zip(names, names[::-1], strict=True)):
            (token,) = PAGE_LINK.findall(digests[address].text_body)
            page = await client.get(f"/d/{token}")
            assert page.status_code == 200, page.text
            text = unescape(re.sub(r"<[^>]+>", "", page.text))
            assert f"本部门督办事项 · {name}" in text
            # department n leads 任务n (第n+1项): its 7 check-ins of the year, nothing else
            assert "待报送（7项）" in text and text.count(f"第{n + 1}项 任务{n} ") == 7
            assert other not in text


def work_plan(session: Session, plan: Supervised, n: int) -> Checkin:
    """Item n's work plan (实施方案, due 2021-06-30), reported on 25 June."""
    checkin = session.scalars(
        select(Checkin).where(Checkin.item_id == plan.item_ids[n], Checkin.kind == "work_plan")
    ).one()
    record_submission(
        session=session,
        checkin_id=checkin.id,
        department_id=checkin.department_id,
        form=SubmissionForm(status="on_track", narrative="工作方案已印发"),
        source="cli",
        now=resolve(datetime(2021, 6, 25, 10)),
    )
    return checkin


RETURN_REASON = "请补充责任分工<b>"


def test_a_return_goes_to_the_departments_next_digest_with_its_reason(session: Session) -> None:
    plan = supervised(session, leads=[0, 0])
    department = plan.departments[0]
    assert len(run_pass(session, plan, date(2021, 6, 23), [[0, 1]])) == 1  # the requests
    checkin = work_plan(session, plan, 0)
    # 29 June, after the day's pass: the office returns item 0's report.
    outcome = return_report(
        session, checkin.id, "督查室", RETURN_REASON, resolve(datetime(2021, 6, 29, 15))
    )
    assert outcome.due_date is not None and outcome.due_date > date(2021, 6, 30)
    # No email of its own: a `returned` notice (the reason kept) and its digest entry, in
    # the return's transaction.
    assert outcome.email_key == "" and outcome.digest_notice == f"returned:{outcome.review_id}"
    assert mail(session, plan, "returned") == []
    notice = session.scalars(select(Notice).where(Notice.key == outcome.digest_notice)).one()
    assert (notice.kind, notice.checkin_id, notice.reason) == (
        "returned",
        checkin.id,
        RETURN_REASON,
    )
    (entry,) = waiting(session, plan)
    assert (entry.notice_id, entry.recipient, entry.addresses) == (
        notice.id,
        f"department:{department.id}",
        department.contact_emails,
    )
    # The next pass (30 June: item 1's reminder) gathers it into the department's digest.
    keys = run_pass(session, plan, date(2021, 6, 30), [[0, 1]])
    assert len(keys) == 1
    (digest,) = [row for row in mail(session, plan, "digest") if row.key == keys[0]]
    assert digest.to_addrs == department.contact_emails
    text = digest.text_body
    assert text.count(" 任务0\n") == 1 and text.count(" 任务1\n") == 1
    new_due = format_date(outcome.due_date)
    assert text.count(f"退回重报，报送截止 {new_due}") == 1, text
    assert text.count(f"退回理由：{RETURN_REASON}") == 1
    # The request its restarted ladder recorded on 30 June falls on the same line: once.
    restarted = select(Notice).where(Notice.checkin_id == checkin.id, Notice.kind == "request")
    assert len(session.scalars(restarted).all()) == 2  # 23 June's, and the restarted one
    assert "报送提醒" not in text
    assert "其中退回重报1项" in text
    assert "到期提醒，报送截止 2021年6月30日" in text  # item 1's line
    assert "退回理由：</span>请补充责任分工&lt;b&gt;" in digest.html_body
    assert waiting(session, plan) == []
    # Nothing twice: a re-run composes nothing, and no return email ever went out.
    assert run_pass(session, plan, date(2021, 6, 30), [[0, 1]]) == []
    assert compose_digests(session=session, now=resolve(date(2021, 7, 1))) == []
    assert mail(session, plan, "returned") == []
    digests = [row for row in mail(session, plan, "digest") if "退回理由" in row.text_body]
    assert [row.key for row in digests] == keys


def test_a_return_under_departments_each_keeps_its_own_email(session: Session) -> None:
    leaders_only = default_policy().model_copy(
        update={"delivery": DeliveryRule(departments="each", leaders="digest")}
    )
    plan = supervised(session, leads=[0], policy=leaders_only)
    run_pass(session, plan, date(2021, 6, 23), [[0]])
    checkin = work_plan(session, plan, 0)
    outcome = return_report(
        session, checkin.id, "督查室", RETURN_REASON, resolve(datetime(2021, 6, 29, 15))
    )
    assert outcome.email_key == f"returned:{outcome.review_id}" and outcome.digest_notice == ""
    (email,) = mail(session, plan, "returned")
    assert email.key == outcome.email_key and RETURN_REASON in email.text_body
    assert (
        session.scalars(
            select(Notice).where(Notice.kind == "returned", Notice.checkin_id == checkin.id)
        ).all()
        == []
    )
    assert waiting(session, plan) == []


def test_the_default_policy_keeps_one_email_per_notice(session: Session) -> None:
    plan = supervised(session, leads=[0, 1], policy=default_policy())
    assert run_pass(session, plan, date(2021, 6, 23), [[0, 1]]) == []
    assert len(mail(session, plan, "request")) == 2
    assert waiting(session, plan) == [] and mail(session, plan, "digest") == []


LEADER_GROUP = "https://oapi.dingtalk.com/robot/send?access_token=digestleaders01"


def test_chat_robots_keep_one_plain_text_per_escalation(session: Session) -> None:
    """Digests are email only: a leader group's robot still gets each escalation's text."""
    plan = supervised(session, leads=[0, 0])
    department = plan.departments[0]
    department.robots = robot_rows(
        department=[], leader=[Robot(kind=Channel.DINGTALK, url=LEADER_GROUP)], head=[]
    )
    session.flush()
    for day in (date(2021, 6, 23), date(2021, 6, 30), date(2021, 7, 1)):
        run_pass(session, plan, day, [[0, 1]])
    keys = run_pass(session, plan, date(2021, 7, 5), [[0, 1]])
    assert len([key for key in keys if ":leader:" in key]) == 1
    chats = [
        row
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == Channel.DINGTALK)
        )
        if row.to_addrs == [LEADER_GROUP]
    ]
    assert len(chats) == 2  # one per escalation, as without digests
    assert all("任务" in row.text_body and "督办" in row.text_body for row in chats)


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    connection = session.connection()

    def count(*args: Any) -> None:
        statements.append(str(args[2]).split()[0])

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", count)


def composition_statements(session: Session, departments: int) -> tuple[int, int]:
    plan = supervised(session, leads=[n // 2 for n in range(2 * departments)])
    as_of = resolve(date(2021, 6, 23))
    reconcile_items(
        session=session,
        plan_id=plan.plan_id,
        item_ids=plan.item_ids,
        as_of=as_of,
        policy=plan.policy,
        calendar=CALENDAR,
    )
    with counting(session) as statements:
        keys = compose_digests(session=session, now=as_of)
        session.flush()
    return len(statements), len(keys)


def test_composition_statements_do_not_grow_with_departments(session: Session) -> None:
    small, small_digests = composition_statements(session, 3)
    large, large_digests = composition_statements(session, 12)
    assert (small_digests, large_digests) == (3, 12)
    assert small == large <= 12, (small, large)


# Per recipient (`delivery.digest_departments`, `digest_leaders`): 学会部 and one leader on
# digests, 普及部 and the other leaders on single emails, in one plan.


def per_recipient_plan(session: Session, tmp_path: Path) -> tuple[Supervised, Department]:
    """Items 0-1 led by 学会部, 2-3 by 普及部; the policy file names 学会部 (by an alias),
    学会部's 分管领导 (by address) and the 督查室 (by its contact's name) for digests."""
    suffix = uuid.uuid4().hex[:6]
    office = make_department(session, f"督查室{suffix}", office=True)
    xuehui = make_department(session, f"学会部{suffix}")
    puji = make_department(session, f"普及部{suffix}")
    session.add(DepartmentAlias(department_id=xuehui.id, alias=f"學會部{suffix}"))
    session.flush()
    file = tmp_path / "policy.yaml"
    file.write_text(
        "delivery:\n"
        "  departments: each\n"
        "  leaders: each\n"
        f"  digest_departments: [學會部{suffix}]\n"
        f"  each_departments: [{puji.name}]\n"
        f"  digest_leaders: [{xuehui.leader_email.upper()}, {office.contact_name}]\n",
        encoding="utf-8",
    )
    policy = load_policy(file, names=delivery_names(session))
    assert policy.delivery.digest_departments == (xuehui.name,)
    built = make_plan(
        session,
        items=[(f"任务{n}", [xuehui if n < 2 else puji], []) for n in range(4)],
    )
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=resolve(date(2021, 5, 24)),
        policy=policy,
        calendar=CALENDAR,
    )
    plan = Supervised(built.plan.id, [item.id for item in built.items], [xuehui, puji], policy)
    return plan, office


def sent_to(session: Session, address: str, kind: str) -> list[OutboxMessage]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind))
    return [row for row in rows if address in (*row.to_addrs, *row.cc_addrs)]


def test_one_department_and_one_leader_get_digests_the_others_single_emails(
    session: Session, tmp_path: Path
) -> None:
    plan, office = per_recipient_plan(session, tmp_path)
    xuehui, puji = plan.departments
    (xuehui_contact,) = xuehui.contact_emails
    (puji_contact,) = puji.contact_emails
    # 23 June, the request day: 学会部 one digest for both items, 普及部 two requests.
    keys = run_pass(session, plan, date(2021, 6, 23), [[0, 2], [1, 3]])
    assert keys == [f"digest:2021-06-23:department:{xuehui.id}:{keys[0].rsplit(':', 1)[1]}"]
    (digest,) = sent_to(session, xuehui_contact, "digest")
    assert digest.text_body.count(" 任务0\n") == 1 and digest.text_body.count(" 任务1\n") == 1
    assert sent_to(session, xuehui_contact, "request") == []
    assert len(sent_to(session, puji_contact, "request")) == 2
    assert sent_to(session, puji_contact, "digest") == []
    # 30 June (reminders) and 1 July (first rung, to the contacts) likewise.
    for day in (date(2021, 6, 30), date(2021, 7, 1)):
        assert len(run_pass(session, plan, day, [[0, 1, 2, 3]])) == 1
    assert len(sent_to(session, xuehui_contact, "digest")) == 3
    assert len(sent_to(session, puji_contact, "reminder")) == 2
    assert len(sent_to(session, puji_contact, "escalation")) == 2
    assert sent_to(session, xuehui_contact, "reminder") == []
    assert sent_to(session, xuehui_contact, "escalation") == []
    # 5 July, level 2 (分管领导 alone): 学会部's leader one digest, 普及部's two single emails.
    keys = run_pass(session, plan, date(2021, 7, 5), [[0, 2], [1, 3]])
    assert [key.split(":")[2] for key in keys] == ["leader"]
    (leader_digest,) = sent_to(session, xuehui.leader_email, "digest")
    assert leader_digest.to_addrs == [xuehui.leader_email]
    assert "分管领导督办（第2级）" in leader_digest.text_body
    assert sent_to(session, xuehui.leader_email, "escalation") == []
    puji_escalations = sent_to(session, puji.leader_email, "escalation")
    assert len(puji_escalations) == 2
    assert all(row.to_addrs == [puji.leader_email] for row in puji_escalations)
    assert sent_to(session, puji.leader_email, "digest") == []
    # 7 July, level 3 (主要负责人 and 督查室): the heads keep single emails, the 督查室 (on a
    # digest by its contact's name) is left out of them and gets one digest of all four.
    keys = run_pass(session, plan, date(2021, 7, 7), [[0, 1, 2, 3]])
    (office_email,) = office.contact_emails
    (office_digest,) = sent_to(session, office_email, "digest")
    assert office_digest.key in keys and office_digest.to_addrs == [office_email]
    assert all(office_digest.text_body.count(f" 任务{n}\n") == 1 for n in range(4))
    assert sent_to(session, office_email, "escalation") == []
    for department in (xuehui, puji):
        heads = sent_to(session, department.head_email, "escalation")
        assert len(heads) == 2 and all(row.to_addrs == [department.head_email] for row in heads)
    held = session.scalars(
        select(Notice).where(Notice.item_id.in_(plan.item_ids), Notice.level == 3)
    ).all()
    assert len(held) == 4
    assert all([r.get("held") for r in n.recipients] == [None, "1"] for n in held), [
        n.recipients for n in held
    ]
    # Re-runs send nothing twice.
    before = session.scalars(select(OutboxMessage.key)).all()
    for day in (date(2021, 6, 23), date(2021, 7, 5), date(2021, 7, 7)):
        assert run_pass(session, plan, day, [[0, 1, 2, 3]]) == []
    assert sorted(session.scalars(select(OutboxMessage.key)).all()) == sorted(before)
    assert waiting(session, plan) == []


def test_a_policy_naming_an_unknown_department_or_leader_is_refused_with_its_line(
    session: Session, tmp_path: Path
) -> None:
    known = make_department(session, f"学会部{uuid.uuid4().hex[:6]}")
    file = tmp_path / "policy.yaml"
    file.write_text(
        f"delivery:\n  digest_departments:\n    - {known.name}\n    - 不存在的部门\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_policy(file, names=delivery_names(session))
    assert (caught.value.path, caught.value.line) == (str(file), 4)
    assert "部门“不存在的部门”不在部门名录中" in caught.value.reason
    file.write_text("delivery:\n  each_leaders: [nobody@example.org]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"“nobody@example\.org”不是部门名录中") as caught:
        load_policy(file, names=delivery_names(session))
    assert caught.value.line == 2
    file.write_text(f"delivery:\n  digest_leaders: [{known.leader_name}]\n", encoding="utf-8")
    rule = load_policy(file, names=delivery_names(session)).delivery
    assert rule.for_leader(known.leader_name, "") == "digest"
