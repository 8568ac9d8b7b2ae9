"""The form over HTTP shows what a check-in asks for when the item's 时序进度 set it."""

from __future__ import annotations

import html

from sqlalchemy import update

from models.db import transaction
from models.supervision import Checkin
from tests.integration.test_portal import Portal, portal, rows, sessions

__all__ = ["portal", "rows", "sessions"]


async def test_the_form_shows_the_milestone_it_asks_for(portal: Portal) -> None:
    async with portal.client() as client:
        plain = await client.get(portal.url())
    assert plain.status_code == 200
    assert "本次报送要求" not in plain.text
    asks = "3月：召集相关部门研讨<b>"
    with transaction(portal.sessions) as session:
        session.execute(
            update(Checkin).where(Checkin.id == portal.rows.checkin.id).values(asks=asks)
        )
    async with portal.client() as client:
        page = await client.get(portal.url())
    assert page.status_code == 200
    assert "本次报送要求" in page.text
    assert html.escape(asks, quote=False) in page.text
    assert "<b>" not in page.text.split("本次报送要求", 1)[1][:200]
