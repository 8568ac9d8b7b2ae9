"""The embedded SMTP sink stores what the relay sends; the Maildir reader shows it back."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.db import make_sessionmaker, transaction
from models.errors import NotFoundError
from models.settings import Settings
from notifications.mailstore import list_mail, read_mail
from notifications.outbox import enqueue_message
from notifications.relay import relay_once
from notifications.rendering import render_message
from notifications.samples import sample_context
from notifications.sink import MailSink
from tests.integration.relay_db import clear_outbox, fresh_database

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    yield from fresh_database("sqlite", tmp_path_factory.mktemp("sink"))


async def test_relay_into_sink_and_read_back(sqlite_db: tuple[str, Engine], tmp_path: Path) -> None:
    clear_outbox(sqlite_db[1])
    sessions = make_sessionmaker(sqlite_db[1])
    store = tmp_path / "mail"
    context = sample_context("escalation")
    context["last"]["narrative"] = "<b>加粗</b>"
    rendered = render_message("escalation", context)
    with transaction(sessions) as session:
        row = enqueue_message(
            session=session,
            key="sink-1",
            kind="escalation",
            to=["leader@example.org"],
            cc=["office@example.org"],
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            now=NOW,
        )
    with MailSink(path=store) as sink:
        settings = Settings(smtp_port=sink.port, mail_from_address="duban@kexie.example")
        result = await relay_once(sessions=sessions, settings=settings, now=NOW)
    assert result.sent == 1
    assert sink.handler.received == 1
    assert len(mailbox.Maildir(store)) == 1
    [stored] = list_mail(store)
    assert stored.subject == rendered.subject
    assert stored.kind == "escalation"
    assert stored.message_id == f"<{row.id}@kexie.example>"
    assert stored.envelope_to == "leader@example.org, office@example.org"
    assert "督办系统" in stored.sender
    assert stored.date == NOW
    shown = read_mail(store, row.id[:8])
    assert shown.text.replace("\r\n", "\n") == rendered.text
    assert "&lt;b&gt;加粗&lt;/b&gt;" in shown.html
    assert shown.mail.key == stored.key


def test_read_mail_reports_unknown_reference(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="没有找到邮件"):
        read_mail(tmp_path / "empty", "nothing")
    assert list_mail(tmp_path / "empty") == []
