"""A department's own page (本部门督办事项, issue 14) on seed 002, SQLite and PostgreSQL.

Seed 002 is imported with the demo's directory (examples/departments.yaml) and supervised
from 2021-05-24 under the default policy: every lead item asks a progress report on the
25th of each month (8 a year), so 学会部 (8 lead items) owes 64 check-ins and 普及部
(7 lead items) 56. The story, worked out by hand:

- 2021-05-25 学会部 reports on 第4项 (on time); the daily pass runs on 第3项 every day.
- 2021-05-26 (date 1) — 学会部: 63 open (the 7 other May reports overdue by 1 day, 第3项's
  at level 1 部室联系人督办, 黄灯), record 1 on time, 7 missing (12.5%); 普及部: 56 open, 7
  overdue, 0 of 7 on time.
- 2021-05-27 the office returns 第4项's report ("请补充活动场次和参与人数", due again
  2021-06-03, five working days on); 普及部 reports on 第7项 (late, due 05-25).
- 2021-05-28 分管领导 刘卫东 instructs on 第4项; the office closes 普及部's 第6项 (its 8
  pending check-ins are cancelled).
- 2021-05-31 (date 2) — 学会部: 第4项 returned with its reason, the instruction to answer,
  63 other open check-ins (第3项's May report at level 2 分管领导督办, 红灯); record 0 on
  time, 7 missing of 7 (a returned report counts as not yet submitted, due on its new date,
  as in the reports).
  普及部: 第6项 closed, 47 open (5 overdue), record 0 on time, 1 late, 5 missing of 6.
- 2021-06-02 学会部 reports 第4项 again (on time for its new due date), answering the
  instruction.
- 2021-06-28 (date 3) — 学会部: nothing returned, no instruction open, 63 open of which 15
  overdue (第3项's May report at level 3), record 1 on time, 15 missing of 16; 普及部: 47
  open, 11 overdue, 1 late and 11 missing of 12.

The HTTP tests open the page through the portal: it writes nothing, shows nothing of another
department, refuses expired, tampered and other-purpose tokens with a Chinese page, and
takes a fixed number of statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.calendar import WorkCalendar
from models.clock import local_date, resolve
from models.completion import ItemClosure
from models.db import make_sessionmaker, transaction
from models.department_page import DepartmentPage
from models.directory import Department
from models.directory_file import load_directory_file
from models.forms import SubmissionForm
from models.instruction import Instruction, InstructionAnswer
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.plan_reader.document import read_plan_file
from models.policy import default_policy
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Notice, Submission
from models.vocabulary import CheckinStatus, InstructionSource
from notifications.links import (
    attachment_token,
    make_department_token,
    make_instruct_token,
    make_token,
    verify_department_token,
    verify_token,
)
from portal.app import create_app
from portal.security import RateLimiter
from tasks.assignment import start_supervision
from tasks.closure import close_item
from tasks.department_page import PAGE_QUERIES, load_department_page
from tasks.directory import upsert_directory
from tasks.instructions import record_answers, record_instruction
from tasks.plan_import import digest_bytes, import_plan
from tasks.reconcile import reconcile_item
from tasks.report_review import return_report
from tasks.submissions import record_submission
from tests.integration.test_portal_statements import counting

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "002_9ea7fcb19178ca69.txt"
SETTINGS = Settings(secret_key="d" * 40, public_url="http://portal.test", _env_file=None)
POLICY = default_policy()
CALENDAR = WorkCalendar()
DATE1, DATE2, DATE3 = date(2021, 5, 26), date(2021, 5, 31), date(2021, 6, 28)
REASON = "请补充活动场次和参与人数<b>"
INSTRUCTION = "请抓紧落实，6月底前举办首场活动。"
CLOSE_REASON = "已提前完成全年任务<i>"
CLIENT = ("203.0.113.9", 41000)


def at(day: date, hour: int = 15) -> datetime:
    """`day` at `hour`:00 local time (after the day's pass)."""
    return resolve(datetime(day.year, day.month, day.day, hour))


@dataclass
class World:
    sessions: sessionmaker[Session]
    plan_id: int
    departments: dict[str, int]
    items: dict[str, int]
    pages: dict[tuple[str, date], DepartmentPage] = field(default_factory=dict)


def _checkin(session: Session, item_id: int, department_id: int, due: date) -> Checkin:
    return session.scalars(
        select(Checkin).where(
            Checkin.item_id == item_id,
            Checkin.department_id == department_id,
            Checkin.original_due_date == due,
        )
    ).one()


def _report(session: Session, checkin: Checkin, when: datetime, text: str) -> Submission:
    return record_submission(
        session=session,
        checkin_id=checkin.id,
        department_id=checkin.department_id,
        form=SubmissionForm(status="on_track", narrative=text),
        source="cli",
        now=when,
        settings=SETTINGS,
    )


@pytest.fixture(scope="module")
def world(own_migrated_engine: Engine) -> Iterator[World]:
    sessions = make_sessionmaker(own_migrated_engine)
    with transaction(sessions) as session:
        upsert_directory(
            session=session,
            directory=load_directory_file(ROOT / "examples" / "departments.yaml"),
            now=at(date(2021, 5, 20)),
        )
        parsed = read_plan_file(SEED)
        plan_id = import_plan(
            session=session,
            parsed=parsed,
            source_name=SEED.name,
            source_sha256=digest_bytes(SEED.read_bytes()),
            now=at(date(2021, 5, 20)),
        ).plan_id
        start_supervision(
            session=session,
            plan_id=plan_id,
            now=at(date(2021, 5, 24), 9),
            policy=POLICY,
            calendar=CALENDAR,
        )
        departments = {
            name: session.scalars(select(Department.id).where(Department.name == name)).one()
            for name in ("学会部", "普及部")
        }
        items = {
            number: session.scalars(
                select(Item.id).where(Item.plan_id == plan_id, Item.number == number)
            ).one()
            for number in ("3", "4", "6", "7")
        }
    built = World(sessions=sessions, plan_id=plan_id, departments=departments, items=items)
    xuehui, puji = departments["学会部"], departments["普及部"]
    may = date(2021, 5, 25)

    def on(day: date) -> None:
        """The daily pass on 第3项 (学会部's), then the pages of both departments."""
        with transaction(sessions) as session:
            reconcile_item(
                session=session, item_id=items["3"], as_of=at(day, 9), policy=POLICY,
                calendar=CALENDAR,
            )  # fmt: skip
        with sessions() as session:
            for name, department_id in departments.items():
                page = load_department_page(
                    session=session, department_id=department_id, now=at(day)
                )
                assert page is not None
                built.pages[(name, day)] = page

    def passes(start: date, end: date) -> None:
        day = start
        while day < end:
            if CALENDAR.is_workday(day):
                with transaction(sessions) as session:
                    reconcile_item(
                        session=session, item_id=items["3"], as_of=at(day, 9), policy=POLICY,
                        calendar=CALENDAR,
                    )  # fmt: skip
            day += timedelta(days=1)

    passes(date(2021, 5, 24), date(2021, 5, 25))
    with transaction(sessions) as session:
        _report(session, _checkin(session, items["4"], xuehui, may), at(may, 10), "首场筹备中")
    passes(may, DATE1)
    on(DATE1)
    with transaction(sessions) as session:
        checkin = _checkin(session, items["4"], xuehui, may)
        return_report(
            session, checkin.id, "督查室 王敏", REASON, at(date(2021, 5, 27), 10),
            calendar=CALENDAR, settings=SETTINGS,
        )  # fmt: skip
        _report(session, _checkin(session, items["7"], puji, may), at(date(2021, 5, 27)), "已开展")
    with transaction(sessions) as session:
        record_instruction(
            session=session,
            item_id=items["4"],
            leader_role="leader",
            leader_name="刘卫东",
            text=INSTRUCTION,
            source=InstructionSource.LINK,
            now=at(date(2021, 5, 28), 10),
            leader_department_id=xuehui,
            settings=SETTINGS,
        )
        close_item(
            session, items["6"], "督查室 王敏", CLOSE_REASON, at(date(2021, 5, 28), 11),
            settings=SETTINGS,
        )  # fmt: skip
    passes(DATE1 + timedelta(days=1), DATE2)
    on(DATE2)
    with transaction(sessions) as session:
        checkin = _checkin(session, items["4"], xuehui, may)
        submission = _report(session, checkin, at(date(2021, 6, 2)), "已补充：举办3场，参与300人")
        instruction_id = session.scalars(
            select(Instruction.id).where(Instruction.item_id == items["4"])
        ).one()
        record_answers(
            session=session,
            submission=submission,
            answers={instruction_id: "已于6月2日召开专题会部署"},
            now=at(date(2021, 6, 2)),
        )
    passes(DATE2 + timedelta(days=1), DATE3)
    on(DATE3)
    yield built


def _summary(page: DepartmentPage) -> dict[str, Any]:
    return {
        "open": len(page.open),
        "overdue": sum(1 for row in page.open if row.overdue_days is not None),
        "returned": [(row.item_label, row.detail, row.due_date) for row in page.returned],
        "instructions": [(row.item_label, row.detail, row.by) for row in page.instructions],
        "closed": [(row.item_label, row.detail) for row in page.closed],
        "record": (
            page.record.settled,
            page.record.on_time,
            page.record.late,
            page.record.missing,
        ),
    }


def _first(page: DepartmentPage, label_start: str) -> Any:
    return next(row for row in page.open if row.item_label.startswith(label_start))


def test_xuehuibu_at_three_dates(world: World) -> None:
    item4 = "第4项 搭建高水平科技开放交流平台"
    one = world.pages[("学会部", DATE1)]
    assert one.department_name == "学会部"
    assert _summary(one) == {
        "open": 63,
        "overdue": 7,
        "returned": [],
        "instructions": [],
        "closed": [],
        "record": (8, 1, 0, 7),
    }
    assert one.record.on_time_rate == 12.5
    assert item4 not in {row.item_label for row in one.open if row.due_date == date(2021, 5, 25)}
    third = _first(one, "第3项")
    assert (third.due_date, third.overdue_days, third.level, third.level_label) == (
        date(2021, 5, 25),
        1,
        1,
        "部室联系人督办",
    )
    assert third.colour == "amber" and third.colour_badge == "🟡 黄灯"
    assert (third.kind_label, third.role_label) == ("进展报告", "牵头")

    two = world.pages[("学会部", DATE2)]
    assert _summary(two) == {
        "open": 63,
        "overdue": 7,
        "returned": [(item4, REASON, date(2021, 6, 3))],
        "instructions": [(item4, INSTRUCTION, "分管领导 刘卫东")],
        "closed": [],
        "record": (7, 0, 0, 7),
    }
    [returned] = two.returned
    [instruction] = two.instructions
    assert returned.overdue_days is None and instruction.checkin_id == returned.checkin_id
    third = _first(two, "第3项")
    assert (third.overdue_days, third.level, third.level_label, third.colour) == (
        6,
        2,
        "分管领导督办",
        "red",
    )

    three = world.pages[("学会部", DATE3)]
    assert _summary(three) == {
        "open": 63,
        "overdue": 15,
        "returned": [],
        "instructions": [],
        "closed": [],
        "record": (16, 1, 0, 15),
    }
    third = _first(three, "第3项")
    assert (third.due_date, third.level, third.level_label) == (
        date(2021, 5, 25),
        3,
        "主要负责人、督查室督办",
    )


def test_pujibu_at_three_dates(world: World) -> None:
    one = world.pages[("普及部", DATE1)]
    assert _summary(one) == {
        "open": 56,
        "overdue": 7,
        "returned": [],
        "instructions": [],
        "closed": [],
        "record": (7, 0, 0, 7),
    }
    assert one.record.on_time_rate == 0.0
    two = world.pages[("普及部", DATE2)]
    assert _summary(two) == {
        "open": 47,
        "overdue": 5,
        "returned": [],
        "instructions": [],
        "closed": [("第6项 推动科技助力乡村振兴", CLOSE_REASON)],
        "record": (6, 0, 1, 5),
    }
    [closed] = two.closed
    assert closed.since == at(date(2021, 5, 28), 11)
    assert all(not row.item_label.startswith("第6项") for row in two.open)
    three = world.pages[("普及部", DATE3)]
    assert _summary(three) == {
        "open": 47,
        "overdue": 11,
        "returned": [],
        "instructions": [],
        "closed": [("第6项 推动科技助力乡村振兴", CLOSE_REASON)],
        "record": (12, 0, 1, 11),
    }


# ---- over HTTP -------------------------------------------------------------------------


def _client(world: World, now: datetime) -> httpx.AsyncClient:
    app = create_app(
        SETTINGS,
        world.sessions,
        now=lambda: now,
        publish=lambda _s, _n: 0,
        limiter=RateLimiter(clock=lambda: 0.0),
    )
    transport = httpx.ASGITransport(app=app, client=CLIENT)
    return httpx.AsyncClient(transport=transport, base_url="http://portal.test")


def _url(department_id: int, expires_on: date = date(2021, 7, 28)) -> str:
    token = make_department_token(
        settings=SETTINGS, department_id=department_id, expires_on=expires_on
    )
    return f"/d/{token}"


def _row_links(html: str) -> list[str]:
    """The paths of a page's row links (`/d/<token>/c/<checkin id>`)."""
    return re.findall(r'href="http://portal\.test(/d/[^"/]+/c/[0-9]+)"', html)


async def _form_token(client: httpx.AsyncClient, path: str) -> str:
    """The form token a row link redirects to (303, `Location: <public url>/c/<token>`)."""
    response = await client.get(path)
    assert response.status_code == 303, (path, response.status_code)
    location = response.headers["Location"]
    assert location.startswith("http://portal.test/c/")
    return location.removeprefix("http://portal.test/c/")


def _row_counts(world: World) -> tuple[int, ...]:
    tables = (
        Checkin,
        Submission,
        CheckinReview,
        Notice,
        OutboxMessage,
        DomainEvent,
        Instruction,
        InstructionAnswer,
        ItemClosure,
    )
    with world.sessions() as session:
        counts = [int(session.scalar(select(func.count()).select_from(t)) or 0) for t in tables]
        pending = select(func.count()).where(Checkin.status == CheckinStatus.PENDING)
        return (*counts, int(session.scalar(pending) or 0))


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


async def test_the_page_over_http_shows_the_rows_and_changes_nothing(world: World) -> None:
    before = _row_counts(world)
    async with _client(world, at(DATE3)) as client:
        page = await client.get(_url(world.departments["普及部"]))
        head = await client.head(_url(world.departments["普及部"]))
        post = await client.post(_url(world.departments["普及部"]), data={"x": "1"})
    assert page.status_code == 200 and head.status_code == 200
    assert post.status_code == 405
    assert _row_counts(world) == before
    text = _text(page.text)
    assert "本部门督办事项 · 普及部" in text
    assert "待报送（47项，其中逾期11项）" in text
    assert "第6项 推动科技助力乡村振兴" in text and CLOSE_REASON in text
    assert "逾期未报" in text and "0.0%" in text
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    # every row links to its own check-in through the page's token (`/d/<token>/c/<id>`),
    # which answers with a freshly signed form link of 普及部's check-in
    links = _row_links(page.text)
    assert len(links) == len(set(links)) == 47 + 1
    assert {path.split("/c/")[0] for path in links} == {_url(world.departments["普及部"])}
    async with _client(world, at(DATE3)) as client:
        tokens = [await _form_token(client, path) for path in links]
    with world.sessions() as session:
        for path, token in zip(links, tokens, strict=True):
            claims = verify_token(token, settings=SETTINGS, now=at(DATE3))
            assert claims.checkin_id == int(path.rsplit("/", 1)[1])
            checkin = session.get_one(Checkin, claims.checkin_id)
            assert checkin.department_id == claims.department_id == world.departments["普及部"]
    assert _row_counts(world) == before


async def test_text_is_escaped_and_a_row_link_opens_the_form(world: World) -> None:
    async with _client(world, at(DATE3)) as client:
        page = await client.get(_url(world.departments["普及部"]))
        assert page.status_code == 200
        assert "已提前完成全年任务&lt;i&gt;" in page.text and CLOSE_REASON not in page.text
        form = await client.get(_row_links(page.text)[0], follow_redirects=True)
    assert form.status_code == 200 and "普及部" in form.text


async def test_a_link_for_one_department_shows_nothing_of_another(world: World) -> None:
    async with _client(world, at(DATE3)) as client:
        xuehui = await client.get(_url(world.departments["学会部"]))
        puji = await client.get(_url(world.departments["普及部"]))
    assert xuehui.status_code == 200 and puji.status_code == 200
    only_xuehui = ("第3项", "第4项", "第5项", "第11项", "第12项", "第17项")
    only_puji = ("第6项", "第7项", "第8项", "第9项", "第13项")
    for label in only_xuehui:
        assert label in xuehui.text and label not in puji.text
    for label in only_puji:
        assert label in puji.text and label not in xuehui.text
    assert "普及部" not in xuehui.text and "学会部" not in puji.text
    with world.sessions() as session:
        mine = select(Checkin.id).where(Checkin.department_id == world.departments["学会部"])
        own = set(session.scalars(mine))
    shown = {int(path.rsplit("/", 1)[1]) for path in _row_links(xuehui.text)}
    assert shown and shown <= own


async def test_expired_tampered_and_other_purpose_links_are_refused(world: World) -> None:
    department_id = world.departments["学会部"]
    with world.sessions() as session:
        checkin = session.scalars(
            select(Checkin).where(Checkin.department_id == department_id).limit(1)
        ).one()
    good = _url(department_id, expires_on=DATE3)
    dept, signed = department_id, SETTINGS
    tokens = [
        # form tokens (one naming the department's id as a check-in id), an instruct token,
        # a download token: signed with the same key, none is a department token
        make_token(settings=signed, checkin_id=dept, department_id=dept, due_date=DATE3),
        make_token(settings=signed, checkin_id=checkin.id, department_id=dept, due_date=DATE3),
        make_instruct_token(
            settings=signed,
            item_id=checkin.item_id,
            department_id=dept,
            role="leader",
            expires_on=DATE3,
        ),
        attachment_token(settings=signed, attachment_id=dept, department_id=dept, now=at(DATE3)),
        # signed with another key
        make_department_token(
            settings=Settings(secret_key="e" * 40, _env_file=None),
            department_id=dept,
            expires_on=DATE3,
        ),
    ]
    others = [
        *(f"/d/{token}" for token in tokens),
        good + "x",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        _url(999_999, expires_on=DATE3),  # no such department
    ]
    async with _client(world, at(DATE3, 23)) as client:
        valid = await client.get(good)
        assert valid.status_code == 200
        refused = [await client.get(url) for url in others]
    async with _client(world, at(DATE3 + timedelta(days=1), 0)) as client:
        expired = await client.get(good)
    for response in [*refused, expired]:
        assert response.status_code == 404
        assert "该“本部门督办事项”链接无效或已过期" in response.text
        assert "第3项" not in response.text
    # and a department token does not open the form
    async with _client(world, at(DATE3)) as client:
        form = await client.get("/c/" + good.removeprefix("/d/"))
    assert form.status_code == 404


async def test_the_page_takes_a_fixed_number_of_statements(
    world: World, own_migrated_engine: Engine
) -> None:
    seen = []
    async with _client(world, at(DATE3)) as client:
        for name in ("学会部", "普及部", "学会部"):
            with counting(own_migrated_engine) as statements:
                page = await client.get(_url(world.departments[name]))
            assert page.status_code == 200
            seen.append(statements)
    assert [len(statements) for statements in seen] == [PAGE_QUERIES] * 3
    assert all(set(statements) == {"SELECT"} for statements in seen)


def test_every_email_to_a_department_carries_its_own_page_link(world: World) -> None:
    """Requests, reminders and escalations of 第3项, the return of 第4项's report, the
    instruction on it and the closure of 普及部's 第6项: each email's text and HTML carry
    the page link of the department it is about, and only that one. Escalations go to the
    department's own 分管领导/主要负责人 (Cc its contact): its page is theirs to see."""
    contacts = {"学会部": "xuehuibu@example.org", "普及部": "pujibu@example.org"}
    with world.sessions() as session:
        mails = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.key)))
    kinds: set[str] = set()
    for name, department_id in world.departments.items():
        own = [m for m in mails if contacts[name] in [*m.to_addrs, *m.cc_addrs]]
        assert own, name
        for mail in own:
            kinds.add(mail.kind)
            # emails composed without explicit settings use the process's (`get_settings`)
            signed = SETTINGS if "portal.test" in mail.text_body else get_settings()
            base = re.escape(signed.public_url)
            found = re.findall(base + r"/d/([A-Za-z0-9_.-]+)", mail.text_body)
            assert len(found) == 1, (mail.kind, mail.key)
            html_links = set(re.findall(rf'href="{base}/d/([^"]+)"', mail.html_body))
            assert html_links == set(found)
            moment = at(local_date(mail.created_at))
            claims = verify_department_token(found[0], settings=signed, now=moment)
            assert claims.department_id == department_id, (name, mail.key)
            assert "本部门全部督办事项" in mail.text_body
    assert {"request", "reminder", "escalation", "returned", "instruction", "closure"} <= kinds


async def test_a_department_link_is_rate_limited_like_a_form_link(world: World) -> None:
    url = _url(world.departments["学会部"])
    async with _client(world, at(DATE3)) as client:
        statuses = [(await client.get(url)).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


async def test_a_row_link_opens_only_its_own_departments_check_ins(world: World) -> None:
    """`/d/<token>/c/<id>` answers 303 to a form link of check-in `id` only when it is the
    token's department's: 学会部's token cannot reach 普及部's check-ins (nor the reverse),
    unknown and malformed ids get the Chinese invalid page; GET and HEAD write nothing."""
    xuehui, puji = world.departments["学会部"], world.departments["普及部"]
    with world.sessions() as session:
        own = {
            name: set(session.scalars(select(Checkin.id).where(Checkin.department_id == dept)))
            for name, dept in (("学会部", xuehui), ("普及部", puji))
        }
    before = _row_counts(world)
    async with _client(world, at(DATE3)) as client:
        page = await client.get(_url(xuehui))
        mine = _row_links(page.text)[0]
        checkin_id = int(mine.rsplit("/", 1)[1])
        token = await _form_token(client, mine)
        head = await client.head(mine)
        other = sorted(own["普及部"])[0]
        crossed = [
            await client.get(f"{_url(xuehui)}/c/{other}"),
            await client.get(f"{_url(puji)}/c/{checkin_id}"),
        ]
        malformed = [
            await client.get(f"{_url(xuehui)}/c/{raw}")
            for raw in ("999999999", "0", f"0{checkin_id}", "abc", "-1", "99999999999", "1.0")
        ]
        form_of_other = await client.get(f"{_url(puji)}/c/{other}", follow_redirects=True)
    claims = verify_token(token, settings=SETTINGS, now=at(DATE3))
    assert (claims.checkin_id, claims.department_id) == (checkin_id, xuehui)
    assert head.status_code == 303 and head.headers["Location"].startswith("http://portal.test/c/")
    assert head.headers["Cache-Control"] == "no-store"
    for response in [*crossed, *malformed]:
        assert response.status_code == 404, response.url
        assert "该“本部门督办事项”链接无效或已过期" in response.text
        assert "Location" not in response.headers
    assert form_of_other.status_code == 200 and "普及部" in form_of_other.text
    assert _row_counts(world) == before


async def test_a_row_link_with_an_expired_tampered_or_other_token_is_refused(
    world: World,
) -> None:
    department_id = world.departments["学会部"]
    with world.sessions() as session:
        checkin = session.scalars(
            select(Checkin).where(Checkin.department_id == department_id).limit(1)
        ).one()
    good = _url(department_id, expires_on=DATE3)
    form = make_token(
        settings=SETTINGS, checkin_id=checkin.id, department_id=department_id, due_date=DATE3
    )
    foreign = make_department_token(
        settings=Settings(secret_key="e" * 40, _env_file=None),
        department_id=department_id,
        expires_on=DATE3,
    )
    others = [
        good + "x",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        f"/d/{form}",  # a form token of that very check-in is no department token
        f"/d/{foreign}",  # signed with another key
        _url(999_999, expires_on=DATE3),
    ]
    async with _client(world, at(DATE3, 23)) as client:
        valid = await client.get(f"{good}/c/{checkin.id}")
        refused = [await client.get(f"{url}/c/{checkin.id}") for url in others]
    async with _client(world, at(DATE3 + timedelta(days=1), 0)) as client:
        expired = await client.get(f"{good}/c/{checkin.id}")
    assert valid.status_code == 303
    for response in [*refused, expired]:
        assert response.status_code == 404
        assert "该“本部门督办事项”链接无效或已过期" in response.text
        assert "Location" not in response.headers


async def test_a_row_link_is_rate_limited_per_check_in(world: World) -> None:
    department_id = world.departments["学会部"]
    async with _client(world, at(DATE3)) as client:
        links = _row_links((await client.get(_url(department_id))).text)
        statuses = [(await client.get(links[0])).status_code for _ in range(31)]
        second = await client.get(links[1])
        page = await client.get(_url(department_id))
    assert statuses[:30] == [303] * 30
    assert statuses[30] == 429
    assert second.status_code == 303 and page.status_code == 200
