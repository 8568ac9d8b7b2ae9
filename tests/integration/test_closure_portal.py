"""The completion-request page (申请办结) over HTTP, on SQLite and PostgreSQL.

The lead department opens it from its check-in form's signed link, asks for completion
with a closing summary (CSRF-checked, GET-safe, one request per submit id); a second
pending request, a closed item, a missing summary or another department each get a
Chinese message, the typed text kept and nothing written.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from models.completion import CompletionRequest
from models.db import transaction
from models.outbox import DomainEvent, OutboxMessage
from models.supervision import Assignment, Checkin
from models.vocabulary import CompletionDecision, EventType
from tasks.closure import approve_completion
from tests.builders import BUILT_AT, make_department
from tests.integration.test_portal import NOW, Portal, hidden, portal, rows, sessions
from tests.portal_rows import DUE

__all__ = ["portal", "rows", "sessions"]

SUMMARY = "平台已建成运行，全年举办学术交流活动212场次，新建院士专家工作站5家。"


def closure_counts(portal: Portal) -> tuple[int, int, int]:
    with portal.sessions() as session:
        requests = session.scalar(select(func.count()).select_from(CompletionRequest))
        events = session.scalar(
            select(func.count()).where(DomainEvent.type == EventType.ITEM_COMPLETION_REQUESTED)
        )
        mails = session.scalar(select(func.count()).where(OutboxMessage.kind == "closure"))
    return int(requests or 0), int(events or 0), int(mails or 0)


def textarea(html: str) -> str:
    match = re.search(r'<textarea id="summary"[^>]*>([^<]*)</textarea>', html)
    assert match, "no summary field"
    return match.group(1)


async def test_lead_department_requests_completion_from_its_form(portal: Portal) -> None:
    url = portal.url()
    async with portal.client() as client:
        form = await client.get(url)
        assert form.status_code == 200
        assert f'href="{url}/close"' in form.text and "申请办结" in form.text
        page = await client.get(f"{url}/close")
        head = await client.head(f"{url}/close")
        assert page.status_code == 200 and head.status_code == 200
        assert "搭建高水平科技开放交流平台" in page.text and "办结情况说明（必填）" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert closure_counts(portal) == (0, 0, 0)

        data = {"csrf_token": hidden(page.text, "csrf_token"), "submit_id": "", "summary": SUMMARY}
        forged = await client.post(f"{url}/close", data={**data, "csrf_token": "0" * 64})
        assert forged.status_code == 403 and "页面已过期或来源不明" in forged.text
        empty = await client.post(f"{url}/close", data={**data, "summary": "   "})
        assert empty.status_code == 422 and "请填写办结情况说明" in empty.text
        assert closure_counts(portal) == (0, 0, 0)

        data["submit_id"] = hidden(page.text, "submit_id")
        done = await client.post(f"{url}/close", data=data)
        assert done.status_code == 200, done.text
        assert "办结申请已提交" in done.text
        again = await client.post(f"{url}/close", data=data)
        assert again.status_code == 200 and "办结申请已提交" in again.text
        assert closure_counts(portal) == (1, 1, 1)

        page = await client.get(f"{url}/close")
        assert "办结申请待审核" in page.text and SUMMARY in page.text
        assert 'id="completion-form"' not in page.text
        second = {
            "csrf_token": data["csrf_token"],
            "submit_id": "another-submit-id",
            "summary": "再次申请<b>办结</b>",
        }
        refused = await client.post(f"{url}/close", data=second)
        assert refused.status_code == 422
        assert "已有一份办结申请" in refused.text and "不要重复申请" in refused.text
        assert textarea(refused.text) == "再次申请&lt;b&gt;办结&lt;/b&gt;"
        assert closure_counts(portal) == (1, 1, 1)

        with transaction(portal.sessions) as session:
            request = session.scalars(select(CompletionRequest)).one()
            assert request.summary == SUMMARY
            assert request.department_id == portal.rows.department.id
            assert request.decision == CompletionDecision.PENDING
            approve_completion(session, request.id, "督查室", NOW + timedelta(days=1))
        portal.now = NOW + timedelta(days=2)
        late = {**second, "submit_id": "third", "summary": "补充说明"}
        closed = await client.post(f"{url}/close", data=late)
        assert closed.status_code == 422
        assert "办结（销号），无需再申请办结" in closed.text
        assert textarea(closed.text) == "补充说明"
        page = await client.get(f"{url}/close")
        assert page.status_code == 200 and "已办结" in page.text
        assert "2021年9月21日" in page.text
        assert 'id="completion-form"' not in page.text
        # The cancelled check-in's old form link says the item is closed, with the date.
        settled = await client.get(url)
        assert settled.status_code == 410, "the cancelled check-in's form"
        assert "任务已办结" in settled.text and "2021年9月21日" in settled.text
        assert 'id="checkin-form"' not in settled.text
    assert closure_counts(portal) == (1, 1, 2)


async def test_a_support_department_sees_no_link_and_is_refused(portal: Portal) -> None:
    with transaction(portal.sessions) as session:
        support = make_department(session)
        session.add(
            Assignment(
                item_id=portal.rows.item.id,
                department_id=support.id,
                role="support",
                assigned_at=BUILT_AT,
            )
        )
        checkin = Checkin(
            item_id=portal.rows.item.id,
            department_id=support.id,
            phase_key="implement",
            seq=1,
            kind="progress",
            role="support",
            due_date=DUE,
            original_due_date=DUE,
            created_at=BUILT_AT,
        )
        session.add(checkin)
        session.flush()
        ids = (checkin.id, support.id)
    url = portal.url(checkin_id=ids[0], department_id=ids[1])
    async with portal.client() as client:
        form = await client.get(url)
        assert form.status_code == 200 and "/close" not in form.text
        page = await client.get(f"{url}/close")
        assert "只有本任务的牵头部门可以申请办结" in page.text
        assert 'id="completion-form"' not in page.text
        data = {"csrf_token": hidden(form.text, "csrf_token"), "submit_id": "x", "summary": "完成"}
        refused = await client.post(f"{url}/close", data=data)
        assert refused.status_code == 422 and "牵头部门可以申请办结" in refused.text
        bad = await client.get(f"{url[:-3]}xyz/close")
        assert bad.status_code == 404
    assert closure_counts(portal) == (0, 0, 0)
