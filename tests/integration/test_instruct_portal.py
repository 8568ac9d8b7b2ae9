"""The leader instruction page over HTTP (ASGI), on SQLite and PostgreSQL.

GET is safe; POST records the instruction once with its event and emails to the lead
department and the office; wrong-purpose, other-item, expired, empty and overlong input is
refused in Chinese with nothing changed and the typed text kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from models.directory import Department
from models.instruction import INSTRUCTION_MAX, Instruction
from models.outbox import DomainEvent, OutboxMessage
from models.settings import Settings
from notifications.links import make_instruct_token, make_token
from portal.app import create_app
from portal.security import RateLimiter
from tests.builders import make_department
from tests.portal_rows import DUE, CheckinRows, make_checkin, rolled_back_sessions

SETTINGS = Settings(secret_key="s" * 40, public_url="http://portal.test", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
TEXT = "请学会部倒排工期，10月底前完成<b>选址</b>。"


@dataclass
class Leader:
    sessions: sessionmaker[Session]
    rows: CheckinRows
    office: Department
    now: datetime = NOW
    published: list[datetime] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        def publish(_sessions: sessionmaker[Session], now: datetime) -> int:
            self.published.append(now)
            return 0

        app = create_app(
            SETTINGS,
            self.sessions,
            now=lambda: self.now,
            publish=publish,
            limiter=RateLimiter(clock=lambda: 0.0),
        )
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://portal.test")

    def url(
        self, *, item_id: int | None = None, role: str = "leader", expires: date | None = None
    ) -> str:
        token = make_instruct_token(
            settings=SETTINGS,
            item_id=item_id or self.rows.item.id,
            department_id=self.rows.department.id,
            role=role,
            expires_on=expires or date(2021, 10, 20),
        )
        return f"/i/{token}"

    def counts(self) -> tuple[int, int, int]:
        with self.sessions() as session:
            instructions = session.scalar(select(func.count()).select_from(Instruction))
            events = session.scalar(
                select(func.count()).where(DomainEvent.type == "duban.item.instructed")
            )
            mails = session.scalar(select(func.count()).where(OutboxMessage.kind == "instruction"))
        return int(instructions or 0), int(events or 0), int(mails or 0)


@pytest.fixture
def leader(own_migrated_engine: Engine) -> Iterator[Leader]:
    # A database of the module's own: the instruction's copy goes to every office
    # department, and other modules commit office departments into the shared one.
    with rolled_back_sessions(own_migrated_engine) as factory:
        with transaction(factory) as session:
            rows = make_checkin(session)
            office = make_department(session, "督查室测试", office=True)
        yield Leader(sessions=factory, rows=rows, office=office)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def fields(html: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": hidden(html, "csrf_token"),
        "submit_id": hidden(html, "submit_id"),
        "item_id": hidden(html, "item_id"),
        "text": TEXT,
    }
    data.update(overrides)
    return data


async def test_get_and_head_show_the_item_and_change_nothing(leader: Leader) -> None:
    async with leader.client() as client:
        page = await client.get(leader.url())
        head = await client.head(leader.url())
    assert page.status_code == 200 and head.status_code == 200
    assert "第1项 搭建高水平科技开放交流平台" in page.text
    assert f"分管领导 {leader.rows.department.leader_name} 批示" in page.text
    assert leader.rows.department.name in page.text and "不少于200场次" in page.text
    assert '<textarea id="text" name="text"' in page.text
    assert "&lt;b&gt;重点&lt;/b&gt;" in page.text
    assert "duban_csrf=" in page.headers["set-cookie"] and "Path=/i/" in page.headers["set-cookie"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert leader.counts() == (0, 0, 0)
    assert leader.published == []


async def test_post_records_once_and_emails_the_lead_department_and_the_office(
    leader: Leader,
) -> None:
    url = leader.url(role="head")
    async with leader.client() as client:
        page = await client.get(url)
        data = fields(page.text)
        first = await client.post(url, data=data)
        again = await client.post(url, data=data)
    assert first.status_code == 200, first.text
    assert "批示已记录" in first.text and "&lt;b&gt;选址&lt;/b&gt;" in first.text
    assert again.status_code == 200 and "本次重复提交未再次记录" in again.text
    assert leader.counts() == (1, 1, 1)
    department = leader.rows.department
    with leader.sessions() as session:
        instruction = session.scalars(select(Instruction)).one()
        event = session.scalars(
            select(DomainEvent).where(DomainEvent.type == "duban.item.instructed")
        ).one()
        mail = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "instruction")
        ).one()
    assert (instruction.item_id, instruction.leader_role, instruction.leader_name) == (
        leader.rows.item.id,
        "head",
        department.head_name,
    )
    assert instruction.text == TEXT and instruction.source == "link"
    assert instruction.leader_department_id == department.id and instruction.given_at == NOW
    assert event.resource_id == f"duban.item.{leader.rows.item.id}"
    assert {r["prefect.resource.role"] for r in event.related} == {"item", "department", "plan"}
    assert event.payload["instruction_id"] == instruction.id
    assert mail.to_addrs == department.contact_emails
    assert mail.cc_addrs == leader.office.contact_emails
    assert mail.subject.startswith("【领导批示】第1项 搭建高水平科技开放交流平台：主要负责人")
    assert TEXT in mail.text_body and "落实批示情况" in mail.text_body
    assert "&lt;b&gt;选址&lt;/b&gt;" in mail.html_body
    assert leader.published == [NOW, NOW]


async def test_a_second_page_records_a_second_instruction(leader: Leader) -> None:
    url = leader.url()
    async with leader.client() as client:
        for text in ("先抓选址。", "再抓建设。"):
            page = await client.get(url)
            assert (await client.post(url, data=fields(page.text, text=text))).status_code == 200
        page = await client.get(url)
    assert leader.counts() == (2, 2, 2)
    assert "已有批示" in page.text and "先抓选址。" in page.text and "待落实" in page.text


async def test_a_form_token_is_refused_as_an_instruct_link_and_the_reverse(leader: Leader) -> None:
    form_token = make_token(
        settings=SETTINGS,
        checkin_id=leader.rows.checkin.id,
        department_id=leader.rows.department.id,
        due_date=DUE,
    )
    async with leader.client() as client:
        page = await client.get(leader.url())
        data = fields(page.text)
        wrong = await client.get(f"/i/{form_token}")
        posted = await client.post(f"/i/{form_token}", data=data)
        reverse = await client.get(leader.url().replace("/i/", "/c/"))
    assert wrong.status_code == 404 and "不是批示链接" in wrong.text
    assert posted.status_code == 404 and "&lt;b&gt;选址&lt;/b&gt;" in posted.text
    assert reverse.status_code == 404
    assert leader.counts() == (0, 0, 0)


async def test_another_item_expired_link_and_missing_csrf_are_refused_keeping_the_text(
    leader: Leader,
) -> None:
    url = leader.url()
    expired = leader.url(expires=date(2021, 9, 19))
    async with leader.client() as client:
        page = await client.get(url)
        other = await client.post(url, data=fields(page.text, item_id=str(leader.rows.item.id + 1)))
        late = await client.post(expired, data=fields(page.text))
        stale = await client.post(url, data=fields(page.text, csrf_token="x" * 64))
    assert other.status_code == 422
    assert "该批示链接只能用于“第1项 搭建高水平科技开放交流平台”" in other.text
    assert late.status_code == 404 and "已过期" in late.text
    assert stale.status_code == 403 and "页面已过期" in stale.text
    for response in (other, late, stale):
        assert "&lt;b&gt;选址&lt;/b&gt;" in response.text
    assert leader.counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [(" \n ", "批示内容不能为空"), ("字" * (INSTRUCTION_MAX + 1), f"不能超过{INSTRUCTION_MAX}字")],
)
async def test_empty_and_overlong_text_get_the_form_again_with_the_text(
    leader: Leader, text: str, message: str
) -> None:
    url = leader.url()
    async with leader.client() as client:
        page = await client.get(url)
        response = await client.post(url, data=fields(page.text, text=text))
    assert response.status_code == 422
    assert message in response.text
    assert f">{text}</textarea>" in response.text
    assert leader.counts() == (0, 0, 0)


async def test_a_link_after_the_item_is_gone_is_refused(leader: Leader) -> None:
    async with leader.client() as client:
        response = await client.get(leader.url(item_id=leader.rows.item.id + 1000))
    assert response.status_code == 404 and "批示链接无效" in response.text
    assert leader.counts() == (0, 0, 0)
