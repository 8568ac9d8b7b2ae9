"""A rejected completion request reaches the department over real SMTP (loopback), with
the reason, copied to the supervision office; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.directory import Department
from models.settings import Settings
from notifications.relay import relay_once
from tasks.closure import reject_completion, request_completion
from tests.integration.relay_db import clear_outbox, relay_db_fixture  # noqa: F401 - fixture
from tests.integration.smtp_servers import ScriptedServer
from tests.integration.test_reconcile import started_plan

NOW = datetime(2021, 9, 2, 2, 0, tzinfo=UTC)


async def test_the_department_receives_the_rejection_reason(
    relay_db: tuple[str, Engine],
) -> None:
    clear_outbox(relay_db[1])
    sessions: sessionmaker[Session] = make_sessionmaker(relay_db[1])
    with transaction(sessions) as session:
        built, lead, _support = started_plan(session)
        request = request_completion(
            session=session,
            item_id=built.items[0].id,
            department_id=lead,
            summary="已全部完成",
            now=resolve(date(2021, 9, 1)),
        )
        reject_completion(session, request.id, "督查室 赵敏", "缺少验收材料", NOW)
        contact = session.get_one(Department, lead).contact_emails[0]
        office = [
            str(e)
            for d in session.scalars(select(Department).where(Department.is_supervision_office))
            for e in d.contact_emails
        ]
    with ScriptedServer() as server:
        settings = Settings(
            smtp_port=server.port, smtp_timeout_seconds=5, mail_from_address="duban@example.org"
        )
        result = await relay_once(sessions=sessions, settings=settings, now=NOW)
        deliveries = list(server.handler.deliveries)
    assert result.sent == result.claimed and result.dead == 0
    [rejected] = [d for d in deliveries if "驳回" in str(d.message["Subject"])]
    assert str(rejected.message["Subject"]).startswith("【办结申请驳回】第1项")
    assert rejected.rcpt_tos[0] == contact
    assert set(office) <= set(rejected.rcpt_tos)
    text = rejected.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "驳回理由：缺少验收材料" in text and "审核人：督查室 赵敏" in text
    html = rejected.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "缺少验收材料" in html
    assert rejected.message["X-Duban-Kind"] == "closure"
