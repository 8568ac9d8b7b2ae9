"""Links and limits: one spelling per link, limits on verified claims, trusted proxies only,
a NAT full of departments never locked out, security headers on every response (issue 16).
"""

from __future__ import annotations

import string
from datetime import date

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from models.db import transaction
from models.errors import DubanError
from models.settings import Settings
from models.supervision import Submission
from notifications.links import InvalidLink, make_token, verify_token
from portal.app import create_app
from portal.security import RateLimiter, RateLimits
from portal.server import behind_proxies, trusted_proxies, uvicorn_options
from tests.hostile.portal_support import portal_fixture, sessions_fixture  # noqa: F401
from tests.integration.test_portal import NOW, SETTINGS, Portal, answer
from tests.portal_rows import DUE, make_checkin

BASE64 = string.ascii_letters + string.digits + "-_"


def token_for(portal: Portal) -> str:
    return portal.url().removeprefix("/c/")


def variants(token: str) -> list[str]:
    """Spellings an attacker tried: padding, trailing junk, altered spare bits, case."""
    last = token[-1]
    spare = [c for c in BASE64 if c != last and BASE64.index(c) // 4 == BASE64.index(last) // 4]
    return [
        token + "=",
        token + "==",
        token + "é",
        token + "%C3%A9",
        token + " ",
        token + ".",
        *(token[:-1] + c for c in spare),
        token.swapcase(),
    ]


def test_only_the_canonical_spelling_verifies() -> None:
    token = make_token(settings=SETTINGS, checkin_id=7, department_id=3, due_date=DUE)
    assert verify_token(token, settings=SETTINGS, now=NOW).checkin_id == 7
    for variant in variants(token):
        with pytest.raises(InvalidLink):
            verify_token(variant, settings=SETTINGS, now=NOW)


@settings(max_examples=300, deadline=None)
@given(
    checkin=st.integers(1, 10**9),
    cut=st.integers(0, 5),
    extra=st.text(alphabet=BASE64 + "=.%é\x00 ", max_size=4),
)
def test_no_other_string_verifies(checkin: int, cut: int, extra: str) -> None:
    token = make_token(settings=SETTINGS, checkin_id=checkin, department_id=1, due_date=DUE)
    variant = token[: len(token) - cut] + extra
    if variant == token:
        return
    with pytest.raises(InvalidLink):
        verify_token(variant, settings=SETTINGS, now=NOW)


async def test_variant_spellings_share_one_post_budget(portal: Portal) -> None:
    portal.limits = RateLimits(per_token_post=10, per_token_get=1000)
    token = token_for(portal)
    spellings = [token, *variants(token)[:3]]
    processed = 0
    async with portal.client() as client:
        for n in range(15):
            for spelling in spellings:
                # Each spelling's own page, so its CSRF field matches that spelling.
                page = await client.get(f"/c/{spelling}")
                if page.status_code != 200:
                    continue
                data = answer(portal, page.text) | {"submit_id": f"{spelling}{n}"}
                reply = await client.post(f"/c/{spelling}", data=data)
                processed += reply.status_code == 200
    assert processed == 10


async def test_links_for_one_checkin_share_a_budget_whatever_their_due_date(
    portal: Portal,
) -> None:
    portal.limits = RateLimits(per_token_get=5)
    rows = portal.rows
    urls = [
        f"/c/{make_token(settings=SETTINGS, checkin_id=rows.checkin.id, department_id=rows.department.id, due_date=due)}"  # noqa: E501
        for due in (DUE, date(2021, 10, 29), date(2021, 11, 30))
    ]
    async with portal.client() as client:
        codes = [(await client.get(urls[n % 3])).status_code for n in range(9)]
    assert codes == [200] * 5 + [429] * 4


def proxied(portal: Portal, settings: Settings, limiter: RateLimiter) -> ASGIApp:
    app = create_app(
        settings,
        portal.sessions,
        now=lambda: portal.now,
        limits=portal.limits,
        limiter=limiter,
        publish=lambda *_: 0,
    )
    return behind_proxies(app, settings)


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"])
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    portal: Portal, trusted: str
) -> None:
    settings = SETTINGS.model_copy(update={"trusted_proxies": trusted})
    portal.limits = RateLimits(per_address=5)
    app = proxied(portal, settings, RateLimiter(clock=lambda: 0.0))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        codes = [
            (
                await client.get(portal.url(), headers={"X-Forwarded-For": f"198.51.100.{n}"})
            ).status_code
            for n in range(20)
        ]
    assert codes == [200] * 5 + [429] * 15


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(portal: Portal) -> None:
    settings = SETTINGS.model_copy(update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"})
    portal.limits = RateLimits(per_address=3)
    app = proxied(portal, settings, RateLimiter(clock=lambda: 0.0))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:

        async def get(client_address: str) -> int:
            headers = {"X-Forwarded-For": f"{client_address}, 127.0.0.1"}
            return (await client.get(portal.url(), headers=headers)).status_code

        first = [await get("198.51.100.1") for _ in range(4)]
        second = [await get("198.51.100.2") for _ in range(3)]
    assert first == [200, 200, 200, 429] and second == [200, 200, 200]


def test_trusted_proxies_are_validated_and_uvicorn_trusts_no_header() -> None:
    for bad in ("*", "proxy.example", "10.0.0.0/33"):
        with pytest.raises(DubanError, match="DUBAN_TRUSTED_PROXIES"):
            trusted_proxies(SETTINGS.model_copy(update={"trusted_proxies": bad}))
    assert uvicorn_options(SETTINGS, host=None, port=None)["proxy_headers"] is False


async def test_fifty_departments_behind_one_address_all_submit_in_one_minute(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        all_rows = [make_checkin(session, title=f"任务{n}") for n in range(50)]
    portal = Portal(sessions=sessions, rows=all_rows[0])
    app = portal.app()  # default limits; the clock never moves: one minute
    codes: list[int] = []
    async with portal.client(app) as client:
        for rows in all_rows:
            department = Portal(sessions=sessions, rows=rows)
            url = department.url()
            page = await client.get(url)
            reply = await client.post(url, data=answer(department, page.text))
            again = await client.get(url)  # each looks at what was recorded
            codes += [page.status_code, reply.status_code, again.status_code]
    assert codes == [200] * 150
    with sessions() as session:
        stored = session.scalar(
            select(func.count()).where(
                Submission.checkin_id.in_([rows.checkin.id for rows in all_rows])
            )
        )
    assert stored == 50


async def test_security_headers_on_every_response(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with portal.client() as client:
        replies = {
            "healthz": await client.get("/healthz"),
            "404": await client.get("/nowhere"),
            "405": await client.put(portal.url()),
            "400": await client.post(
                portal.url(),
                content=b"--x\r\nbroken",
                headers={"content-type": "multipart/form-data"},
            ),
            "invalid": await client.get("/c/nope"),
        }

    def broken(**_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("portal.app.load_page", broken)
    transport = httpx.ASGITransport(
        app=portal.app(), client=("203.0.113.5", 1), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        replies["500"] = await client.get(portal.url())
    assert {name: reply.status_code for name, reply in replies.items()} == {
        "healthz": 200,
        "404": 404,
        "405": 405,
        "400": 400,
        "invalid": 404,
        "500": 500,
    }
    for name, reply in replies.items():
        assert reply.headers.get("x-frame-options") == "DENY", name
        assert reply.headers.get("x-content-type-options") == "nosniff", name
        assert "frame-ancestors 'none'" in reply.headers.get("content-security-policy", ""), name
        assert reply.headers.get("referrer-policy") == "no-referrer", name
    assert "系统暂时无法处理" in replies["500"].text
