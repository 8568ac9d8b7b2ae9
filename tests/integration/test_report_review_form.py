"""The form over HTTP after the office's decision: a returned report shows the reason above
the fields (escaped) and takes the next version; an accepted one takes no more."""

from __future__ import annotations

from datetime import timedelta

from models.calendar import WorkCalendar
from models.db import transaction
from models.supervision import Checkin
from tasks.report_review import accept_report, return_report
from tests.integration.test_portal import NOW, Portal, answer, portal, rows, sessions

__all__ = ["portal", "rows", "sessions"]

REASON = '未附活动清单，请补充<script>alert("x")</script>'


async def test_the_form_shows_the_return_reason_and_takes_the_next_version(
    portal: Portal,
) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        first = await client.post(url, data=answer(portal, page.text))
        assert first.status_code == 200 and "第1版" in first.text
        assert "退回" not in (await client.get(url)).text
        with transaction(portal.sessions) as session:
            return_report(
                session,
                portal.rows.checkin.id,
                "督查室 赵敏",
                REASON,
                NOW + timedelta(hours=2),
                calendar=WorkCalendar(),
            )
        portal.now = NOW + timedelta(days=1)
        page = await client.get(url)
        assert page.status_code == 200
        assert "本报送已被督查室退回" in page.text
        assert "未附活动清单，请补充&lt;script&gt;alert(" in page.text
        assert "<script>" not in page.text
        assert page.text.index('id="returned"') < page.text.index('id="checkin-form"')
        second = await client.post(url, data=answer(portal, page.text, narrative="已补充清单"))
        assert second.status_code == 200 and "第2版" in second.text
        page = await client.get(url)
        assert "已按督查室退回意见重新报送，等待审核" in page.text
    with portal.sessions() as session:
        checkin = session.get_one(Checkin, portal.rows.checkin.id)
        assert (checkin.status, checkin.returns) == ("submitted", 1)
    with transaction(portal.sessions) as session:
        accept_report(session, portal.rows.checkin.id, "督查室 赵敏", NOW + timedelta(days=2))
    async with portal.client() as client:
        closed = await client.get(url)
        again = await client.post(url, data={"status": "on_track", "narrative": "第三版"})
    # The old link says the report was accepted (not the generic invalid-link page); GET
    # and POST change nothing.
    assert closed.status_code == 410
    assert "报送已审核通过" in closed.text and "经督查室审核通过，无需再报送" in closed.text
    assert "链接不可用" not in closed.text
    assert "已举办学术活动" not in closed.text
    assert again.status_code == 410 and "无需再报送" in again.text
    assert "<textarea readonly>第三版</textarea>" in again.text  # what was typed is kept
    with portal.sessions() as session:
        checkin = session.get_one(Checkin, portal.rows.checkin.id)
        assert (checkin.status, checkin.review, checkin.returns) == ("submitted", "accepted", 1)
