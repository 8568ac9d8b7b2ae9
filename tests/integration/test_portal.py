"""The check-in portal over HTTP (ASGI), on SQLite and PostgreSQL.

Each test runs inside an outer transaction that is rolled back: the portal's own sessions
join it through savepoints, so commits made by the app are real but leave nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_sessionmaker, transaction
from models.directory import Department
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Plan
from models.settings import Settings
from models.supervision import Checkin, Extension, Submission
from notifications.links import make_token
from portal.app import create_app
from portal.security import RateLimiter, RateLimits
from portal.server import RedactedAccessLog, redact_path
from tasks.submissions import approve_extension
from tests.portal_rows import DUE, CheckinRows, make_checkin, rolled_back_sessions

SETTINGS = Settings(secret_key="s" * 40, public_url="http://portal.test", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
CLIENT = ("203.0.113.5", 40000)


@pytest.fixture
def sessions(migrated_engine: Engine) -> Iterator[sessionmaker[Session]]:
    with rolled_back_sessions(migrated_engine) as factory:
        yield factory


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> CheckinRows:
    with transaction(sessions) as session:
        return make_checkin(session)


@dataclass
class Portal:
    sessions: sessionmaker[Session]
    rows: CheckinRows
    now: datetime = NOW
    published: list[datetime] = field(default_factory=list)
    fail_publish: bool = False
    ticks: float = 0.0
    limits: RateLimits = field(default_factory=RateLimits)

    def app(self) -> RedactedAccessLog:
        def publish(_sessions: sessionmaker[Session], now: datetime) -> int:
            if self.fail_publish:
                raise ConnectionError("Prefect is down")
            self.published.append(now)
            return 1

        limiter = RateLimiter(clock=lambda: self.ticks)
        inner = create_app(
            SETTINGS,
            self.sessions,
            now=lambda: self.now,
            publish=publish,
            limits=self.limits,
            limiter=limiter,
        )
        return RedactedAccessLog(inner)

    def client(self, app: RedactedAccessLog | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app or self.app(), client=CLIENT)
        return httpx.AsyncClient(transport=transport, base_url="http://portal.test")

    def url(self, *, checkin_id: int | None = None, department_id: int | None = None) -> str:
        token = make_token(
            settings=SETTINGS,
            checkin_id=checkin_id or self.rows.checkin.id,
            department_id=department_id or self.rows.department.id,
            due_date=DUE,
        )
        return f"/c/{token}"

    def counts(self) -> tuple[int, int, int, str]:
        checkin_id = self.rows.checkin.id
        with self.sessions() as session:
            subs = session.scalar(select(func.count()).where(Submission.checkin_id == checkin_id))
            events = session.scalar(
                select(func.count()).where(DomainEvent.resource_id == f"duban.checkin.{checkin_id}")
            )
            exts = session.scalar(select(func.count()).where(Extension.checkin_id == checkin_id))
            status = session.get_one(Checkin, checkin_id).status
        return int(subs or 0), int(events or 0), int(exts or 0), status


@pytest.fixture
def portal(sessions: sessionmaker[Session], rows: CheckinRows) -> Portal:
    return Portal(sessions=sessions, rows=rows)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def answer(portal: Portal, html: str, **fields: str) -> dict[str, str]:
    first, second = (str(target.id) for target in portal.rows.targets)
    data = {
        "csrf_token": hidden(html, "csrf_token"),
        "submit_id": hidden(html, "submit_id"),
        "status": "on_track",
        "narrative": "已举办学术活动120场次。",
        f"value_{first}": "120",
        f"value_{second}": "3",
        "problems": "经费紧张",
        "next_steps": "加快推进",
    }
    data.update(fields)
    return data


async def test_get_and_head_show_the_item_and_change_nothing(portal: Portal) -> None:
    before = portal.counts()
    async with portal.client() as client:
        page = await client.get(portal.url())
        head = await client.head(portal.url())
    assert page.status_code == 200 and head.status_code == 200
    assert "搭建高水平科技开放交流平台" in page.text
    assert "不少于200场次" in page.text and "5家以上" in page.text
    assert portal.rows.department.name in page.text
    assert "2021年9月30日（星期四）" in page.text
    assert "<script" not in page.text
    assert "&lt;b&gt;重点&lt;/b&gt;" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "duban_csrf=" in page.headers["set-cookie"]
    assert portal.counts() == before == (0, 0, 0, "pending")
    assert portal.published == []


async def test_post_creates_version_one_then_two_with_events(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        first = await client.post(url, data=answer(portal, page.text))
        assert first.status_code == 200, first.text
        assert "提交成功" in first.text and "第1版" in first.text
        portal.now = NOW + timedelta(days=2)
        page = await client.get(url)
        assert "以往报送" in page.text and "已举办学术活动120场次。" in page.text
        first_id = portal.rows.targets[0].id
        assert f'name="value_{first_id}" min="0" step="any"' in page.text
        assert re.search(rf'id="value_{first_id}"[^>]*value="120"', page.text)
        assert re.search(r'value="on_track" required\s+checked', page.text)
        second = await client.post(
            url, data=answer(portal, page.text, status="done", narrative="全部完成")
        )
        assert "第2版" in second.text
    assert portal.counts() == (2, 2, 0, "submitted")
    with portal.sessions() as session:
        subs = session.scalars(
            select(Submission)
            .where(Submission.checkin_id == portal.rows.checkin.id)
            .order_by(Submission.version)
        ).all()
        checkin = session.get_one(Checkin, portal.rows.checkin.id)
        events = session.scalars(
            select(DomainEvent)
            .where(DomainEvent.resource_id == f"duban.checkin.{checkin.id}")
            .order_by(DomainEvent.id)
        ).all()
    assert [(s.version, s.status, s.source) for s in subs] == [
        (1, "on_track", "form"),
        (2, "done", "form"),
    ]
    assert subs[0].values == {
        str(portal.rows.targets[0].id): 120,
        str(portal.rows.targets[1].id): 3,
    }
    assert checkin.submitted_at == NOW
    assert [e.type for e in events] == ["duban.checkin.submitted"] * 2
    assert [e.payload["version"] for e in events] == [1, 2]
    assert {r["prefect.resource.role"] for r in events[0].related} == {
        "item",
        "department",
        "plan",
    }
    assert portal.published == [NOW, NOW + timedelta(days=2)]
    with portal.sessions() as session:
        receipts = [
            message
            for message in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "receipt")
            )
            if message.to_addrs == portal.rows.department.contact_emails
        ]
    assert len(receipts) == 2
    assert all("<script" not in message.html_body for message in receipts)


async def test_double_post_of_one_form_is_one_version(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        data = answer(portal, page.text)
        replies = [await client.post(url, data=data) for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert portal.counts()[:2] == (1, 1)


async def test_csrf_failures_are_refused_and_write_nothing(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        data = answer(portal, page.text)
    async with portal.client() as stranger:
        no_cookie = await stranger.post(url, data=data)
    async with portal.client() as client:
        await client.get(url)
        wrong_cookie = await client.post(url, data=data)
        other = make_checkin_url(portal)
        other_page = await client.get(other)
        other_field = await client.post(
            url, data=data | {"csrf_token": hidden(other_page.text, "csrf_token")}
        )
        missing = await client.post(url, data={k: v for k, v in data.items() if k != "csrf_token"})
    for reply in (no_cookie, wrong_cookie, other_field, missing):
        assert reply.status_code == 403
        assert "重新打开邮件中的链接" in reply.text
    assert portal.counts() == (0, 0, 0, "pending")


def make_checkin_url(portal: Portal) -> str:
    with transaction(portal.sessions) as session:
        other = make_checkin(session, title="另一项任务")
    return portal.url(checkin_id=other.checkin.id, department_id=other.department.id)


async def test_html_in_answers_is_shown_as_text(portal: Portal) -> None:
    url = portal.url()
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    async with portal.client() as client:
        page = await client.get(url)
        await client.post(url, data=answer(portal, page.text, narrative=evil, problems=evil))
        page = await client.get(url)
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    with portal.sessions() as session:
        stored = session.scalars(
            select(Submission.narrative).where(Submission.checkin_id == portal.rows.checkin.id)
        ).one()
    assert stored == evil


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"narrative": "长" * 4001}, "进展情况不能超过4000字"),
        ({"problems": "长" * 2001}, "存在问题不能超过2000字"),
        ({"narrative": ""}, "请填写进展情况"),
        ({"status": "finished"}, "请选择进展状态"),
        ({"value_T1": "abc"}, "须填写不小于0的数字"),
        ({"value_T1": "-1"}, "须填写不小于0的数字"),
        ({"value_T1": "nan"}, "须填写不小于0的数字"),
        ({"value_T1": "1e999"}, "须填写不小于0的数字"),
        ({"extension_date": "2021-10-30"}, "须同时填写延期日期和理由"),
        ({"extension_date": "2021-13-01", "extension_reason": "x"}, "延期日期格式"),
        ({"extension_date": "2021-09-01", "extension_reason": "x"}, "须晚于当前截止日期"),
    ],
)
async def test_bad_fields_are_refused_with_a_message(
    portal: Portal, fields: dict[str, str], message: str
) -> None:
    target = f"value_{portal.rows.targets[0].id}"
    fields = {target if k == "value_T1" else k: v for k, v in fields.items()}
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        reply = await client.post(url, data=answer(portal, page.text, **fields))
    assert reply.status_code == 422
    assert message in reply.text
    assert portal.counts() == (0, 0, 0, "pending")


async def test_numbers_are_stored_as_numbers(portal: Portal) -> None:
    first = f"value_{portal.rows.targets[0].id}"
    second = f"value_{portal.rows.targets[1].id}"
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        await client.post(url, data=answer(portal, page.text, **{first: "12.5", second: ""}))
    with portal.sessions() as session:
        values = session.scalars(
            select(Submission.values).where(Submission.checkin_id == portal.rows.checkin.id)
        ).one()
    assert values == {str(portal.rows.targets[0].id): 12.5}


async def test_over_long_body_is_refused(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        reply = await client.post(url, data=answer(portal, page.text, filler="x" * 140_000))
    assert reply.status_code == 413
    assert portal.counts() == (0, 0, 0, "pending")


async def test_bad_links_all_get_the_same_page(portal: Portal) -> None:
    good = portal.url()
    with transaction(portal.sessions) as session:
        cancelled = make_checkin(session, title="已取消任务")
        cancelled.checkin.status = "cancelled"
    expired = make_token(
        settings=SETTINGS,
        checkin_id=portal.rows.checkin.id,
        department_id=portal.rows.department.id,
        due_date=date(2021, 6, 1),
    )
    bad = [
        "/c/not-a-token",
        good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        f"/c/{expired}",
        portal.url(checkin_id=99_999_999),
        portal.url(department_id=cancelled.department.id),
        portal.url(checkin_id=cancelled.checkin.id, department_id=cancelled.department.id),
    ]
    async with portal.client() as client:
        replies = [await client.get(url) for url in bad]
        posts = [await client.post(url, data={"status": "done"}) for url in bad]
    bodies = {reply.text for reply in replies + posts}
    assert {reply.status_code for reply in replies + posts} == {404}
    assert len(bodies) == 1 and "链接不可用" in bodies.pop()


async def test_rate_limits_per_token_and_per_address(portal: Portal) -> None:
    portal.limits = RateLimits(window_seconds=60, per_token_get=3, per_token_post=2, per_address=8)
    app = portal.app()
    url = portal.url()
    async with portal.client(app) as client:
        codes = [(await client.get(url)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        other = make_checkin_url(portal)
        assert (await client.get(other)).status_code == 200
        portal.ticks += 61
        assert (await client.get(url)).status_code == 200
        codes = [(await client.get(f"/c/guess{n}")).status_code for n in range(8)]
    assert codes.count(429) >= 1 and codes[0] == 404
    assert "访问过于频繁" in (await portal.client(app).get(url)).text


async def test_line_breaks_in_the_path_never_reach_a_header(portal: Portal) -> None:
    async with portal.client() as client:
        reply = await client.get("/c/x%0D%0ASet-Cookie:%20evil=1%0D%0AX-Evil:%201")
    assert reply.status_code == 404
    assert "x-evil" not in reply.headers
    assert all("evil" not in value for value in reply.headers.get_list("set-cookie"))


async def test_a_foreign_cookie_is_never_echoed(portal: Portal) -> None:
    async with portal.client() as client:
        client.cookies.set("duban_csrf", "evil;Domain=attacker.example", path="/c/")
        page = await client.get(portal.url())
    cookie = page.headers["set-cookie"]
    assert page.status_code == 200
    assert "evil" not in cookie and "attacker" not in cookie


async def test_submission_survives_a_failed_prefect_emit(portal: Portal) -> None:
    portal.fail_publish = True
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        reply = await client.post(url, data=answer(portal, page.text))
    assert reply.status_code == 200 and "提交成功" in reply.text
    with portal.sessions() as session:
        event = session.scalars(
            select(DomainEvent).where(
                DomainEvent.resource_id == f"duban.checkin.{portal.rows.checkin.id}"
            )
        ).one()
    assert event.published_at is None
    assert portal.counts()[:2] == (1, 1)


async def test_extension_request_then_approval_moves_the_due_date(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        reply = await client.post(
            url,
            data=answer(
                portal, page.text, extension_date="2021-10-29", extension_reason="场地调整"
            ),
        )
    assert "延期申请（至2021-10-29）已提交" in reply.text
    # An answer that asks for more time is an interim note: the check-in stays open.
    assert portal.counts() == (1, 2, 1, "pending")
    with transaction(portal.sessions) as session:
        extension = session.scalars(
            select(Extension).where(Extension.checkin_id == portal.rows.checkin.id)
        ).one()
        approve_extension(session=session, extension_id=extension.id, decided_by="督查室", now=NOW)
    with portal.sessions() as session:
        checkin = session.get_one(Checkin, portal.rows.checkin.id)
        types = session.scalars(
            select(DomainEvent.type)
            .where(DomainEvent.resource_id == f"duban.checkin.{checkin.id}")
            .order_by(DomainEvent.id)
        ).all()
    assert (checkin.due_date, checkin.original_due_date) == (date(2021, 10, 29), DUE)
    assert types == [
        "duban.checkin.submitted",
        "duban.checkin.extension_requested",
        "duban.checkin.extended",
    ]


async def test_only_own_routes_and_health(portal: Portal) -> None:
    async with portal.client() as client:
        health = await client.get("/healthz")
        missing = [await client.get(path) for path in ("/docs", "/openapi.json", "/c/")]
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert [reply.status_code for reply in missing] == [404, 404, 404]


async def test_access_log_never_contains_the_token(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    url = portal.url()
    token = url.removeprefix("/c/")
    with caplog.at_level(logging.INFO, logger="duban.portal.access"):
        async with portal.client() as client:
            await client.get(url)
    assert token not in caplog.text
    assert redact_path(url) in caplog.text and " 200" in caplog.text


@pytest.fixture
def committed(migrated_engine: Engine) -> Iterator[Portal]:
    """A portal over real, committed rows (for concurrency), deleted again afterwards."""
    sessions = make_sessionmaker(migrated_engine)
    with transaction(sessions) as session:
        rows = make_checkin(session)
    try:
        yield Portal(sessions=sessions, rows=rows)
    finally:
        with transaction(sessions) as session:
            session.execute(
                delete(DomainEvent).where(
                    DomainEvent.resource_id == f"duban.checkin.{rows.checkin.id}"
                )
            )
            for message in session.scalars(select(OutboxMessage)):
                if message.to_addrs == rows.department.contact_emails:
                    session.delete(message)
            session.execute(delete(Plan).where(Plan.id == rows.item.plan_id))
            session.execute(delete(Department).where(Department.id == rows.department.id))


async def test_concurrent_posts_get_distinct_versions(committed: Portal) -> None:
    url = committed.url()
    async with committed.client() as client:
        page = await client.get(url)
        base = answer(committed, page.text)
        replies = await asyncio.gather(
            *(client.post(url, data=base | {"submit_id": f"tab{n}"}) for n in range(6))
        )
        again = await client.post(url, data=base | {"submit_id": "tab0"})
    assert [reply.status_code for reply in replies] == [200] * 6
    assert again.status_code == 200
    with committed.sessions() as session:
        versions = session.scalars(
            select(Submission.version).where(Submission.checkin_id == committed.rows.checkin.id)
        ).all()
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    assert committed.counts()[:2] == (6, 6)


@pytest.mark.prefect
async def test_default_publisher_emits_the_event_to_prefect(
    portal: Portal, prefect_harness: None
) -> None:
    app = create_app(SETTINGS, portal.sessions, now=lambda: NOW)
    url = portal.url()
    async with portal.client(RedactedAccessLog(app)) as client:
        page = await client.get(url)
        reply = await client.post(url, data=answer(portal, page.text))
    assert reply.status_code == 200
    with portal.sessions() as session:
        event = session.scalars(
            select(DomainEvent).where(
                DomainEvent.resource_id == f"duban.checkin.{portal.rows.checkin.id}"
            )
        ).one()
    assert event.type == "duban.checkin.submitted"
    assert event.published_at == NOW
