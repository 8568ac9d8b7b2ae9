"""The check-in form answers leader instructions (落实批示情况), over HTTP, on SQLite and
PostgreSQL: the form shows the item's open instructions above the fields, requires an
answer to each, stores it with the submission, and then no longer asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from models.instruction import Instruction, InstructionAnswer, answer_field
from models.settings import Settings
from models.supervision import Submission
from models.vocabulary import InstructionSource
from notifications.links import make_token
from portal.app import create_app
from portal.security import RateLimiter
from tasks.instructions import open_instructions, record_instruction
from tests.builders import make_department
from tests.portal_rows import DUE, CheckinRows, make_checkin, rolled_back_sessions

SETTINGS = Settings(secret_key="s" * 40, public_url="http://portal.test", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def sessions(migrated_engine: Engine) -> Iterator[sessionmaker[Session]]:
    with rolled_back_sessions(migrated_engine) as factory:
        yield factory


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> CheckinRows:
    with transaction(sessions) as session:
        rows = make_checkin(session)
        make_department(session, "督查室表单", office=True)
        record_instruction(
            session=session,
            item_id=rows.item.id,
            leader_role="leader",
            leader_name="张副主席",
            leader_department_id=rows.department.id,
            text="请10月底前完成<i>选址</i>。",
            source=InstructionSource.LINK,
            now=NOW - timedelta(days=3),
            settings=SETTINGS,
        )
        return rows


def client(sessions: sessionmaker[Session]) -> httpx.AsyncClient:
    app = create_app(
        SETTINGS,
        sessions,
        now=lambda: NOW,
        publish=lambda _s, _n: 0,
        limiter=RateLimiter(clock=lambda: 0.0),
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://portal.test")


def form_url(rows: CheckinRows) -> str:
    token = make_token(
        settings=SETTINGS,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=DUE,
    )
    return f"/c/{token}"


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def answer(html: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": hidden(html, "csrf_token"),
        "submit_id": hidden(html, "submit_id"),
        "status": "on_track",
        "narrative": "已完成选址论证。",
        **extra,
    }


async def test_the_form_shows_the_instruction_and_the_next_report_answers_it(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    with sessions() as session:
        (instruction,) = open_instructions(session=session, item_id=rows.item.id)
    name = answer_field(instruction.id)
    url = form_url(rows)
    async with client(sessions) as http:
        page = await http.get(url)
        assert page.status_code == 200
        assert "领导批示（请反馈落实批示情况）" in page.text
        assert "分管领导 张副主席" in page.text and "&lt;i&gt;选址&lt;/i&gt;" in page.text
        assert page.text.index('id="instructions"') < page.text.index('name="status"')
        assert f'name="{name}" maxlength="2000" required' in page.text

        missing = await http.post(url, data=answer(page.text))
        assert missing.status_code == 422
        assert "请填写第1条领导批示的落实情况" in missing.text
        assert "已完成选址论证。" in missing.text
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Submission)) == 0

        done = await http.post(
            url, data=answer(page.text, **{name: "已召开专题会议，选址已确定。"})
        )
        assert done.status_code == 200, done.text
        again = await http.post(
            url, data=answer(page.text, **{name: "已召开专题会议，选址已确定。"})
        )
        assert again.status_code == 200
        after = await http.get(url)
    assert 'id="instructions"' not in after.text
    with sessions() as session:
        submission = session.scalars(select(Submission)).one()
        stored = session.scalars(select(InstructionAnswer)).one()
        assert open_instructions(session=session, item_id=rows.item.id) == []
        assert session.scalar(select(func.count()).select_from(Instruction)) == 1
    assert (stored.instruction_id, stored.submission_id) == (instruction.id, submission.id)
    assert stored.department_id == rows.department.id
    assert stored.text == "已召开专题会议，选址已确定。" and stored.answered_at == NOW


async def test_an_overlong_answer_is_refused_with_everything_kept(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    with sessions() as session:
        (instruction,) = open_instructions(session=session, item_id=rows.item.id)
    name = answer_field(instruction.id)
    url = form_url(rows)
    async with client(sessions) as http:
        page = await http.get(url)
        long = "落" * 2001
        response = await http.post(url, data=answer(page.text, **{name: long}))
    assert response.status_code == 422
    assert "第1条落实批示情况不能超过2000字" in response.text
    assert long in response.text and "已完成选址论证。" in response.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InstructionAnswer)) == 0


async def test_a_failed_write_stores_neither_report_nor_answer_and_keeps_both(
    sessions: sessionmaker[Session], rows: CheckinRows, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr("portal.app.record_answers", broken)
    with sessions() as session:
        (instruction,) = open_instructions(session=session, item_id=rows.item.id)
    name = answer_field(instruction.id)
    url = form_url(rows)
    async with client(sessions) as http:
        page = await http.get(url)
        response = await http.post(url, data=answer(page.text, **{name: "已专题部署落实。"}))
    assert response.status_code == 503
    assert "系统暂时无法保存您的报送" in response.text
    assert "已专题部署落实。" in response.text and "已完成选址论证。" in response.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
        assert session.scalar(select(func.count()).select_from(InstructionAnswer)) == 0
