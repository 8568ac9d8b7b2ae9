"""Hostile addresses and headers at the MIME layer: pure, no server, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest

from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.mime import PermanentMessageError, build_email, encoded_words, wire_address

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


def row(**fields: object) -> OutboxMessage:
    values: dict[str, object] = {
        "id": "0123456789abcdef",
        "key": "k",
        "kind": "reminder",
        "to_addrs": ["a@example.org"],
        "cc_addrs": [],
        "subject": "【催办】第4项",
        "text_body": "请尽快报送。",
        "html_body": "<p>请尽快报送。</p>",
        "attachments": [],
        "created_at": NOW,
    } | fields
    return OutboxMessage(**values)


def test_non_ascii_domain_travels_in_idna_form() -> None:
    assert wire_address("xuehui@例子.中国") == ("xuehui@xn--fsqu00a.xn--fiqs8s", False)
    assert wire_address("学会部@例子.中国") == ("学会部@xn--fsqu00a.xn--fiqs8s", True)
    assert wire_address("dept@example.org") == ("dept@example.org", False)


@pytest.mark.parametrize(
    "address",
    ["no-at-sign", "@example.org", "dept@", "a b@example.org", "<a@b.org>", "a@b.org\x00"],
)
def test_malformed_addresses_are_refused_in_chinese(address: str) -> None:
    with pytest.raises(PermanentMessageError, match="收件人地址格式无效"):
        wire_address(address)


def test_a_domain_idna_cannot_express_is_refused() -> None:
    with pytest.raises(PermanentMessageError, match="IDNA"):
        wire_address("dept@exa\u200bmple..org")


def test_message_parses_back_with_headers_parts_and_folding() -> None:
    subject = "【督办】第4项 搭建高水平科技开放交流平台（逾期3个工作日未报送）" * 3
    mail = build_email(
        row(subject=subject, to_addrs=["xuehui@例子.中国"], cc_addrs=["leader@example.org"]),
        Settings(mail_from_name="督办系统", mail_from_address="duban@kexie.example"),
    )
    assert mail.recipients == ["xuehui@xn--fsqu00a.xn--fiqs8s", "leader@example.org"]
    assert not mail.smtputf8
    assert mail.data.isascii()
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 78
    parsed = message_from_bytes(mail.data, policy=default)
    assert str(parsed["Subject"]) == subject
    assert str(parsed["From"]) == "督办系统 <duban@kexie.example>"
    assert str(parsed["To"]) == "xuehui@xn--fsqu00a.xn--fiqs8s"
    assert parsed["Message-ID"] == "<0123456789abcdef@kexie.example>"
    assert parsed.get_body(("plain",)).get_content() == "请尽快报送。"  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content() == "<p>请尽快报送。</p>"  # type: ignore[union-attr]


def test_non_ascii_local_part_needs_smtputf8_and_keeps_utf8_headers() -> None:
    mail = build_email(row(to_addrs=["学会部@例子.中国"]), Settings())
    assert mail.smtputf8
    parsed = message_from_bytes(mail.data, policy=default)
    assert str(parsed["To"]) == "学会部@xn--fsqu00a.xn--fiqs8s"


def test_encoded_words_round_trip_any_text() -> None:
    for text in ("", "a", "普及部" * 40, "😀混合 text\t" * 9):
        header = encoded_words(text)
        assert all(len(line) <= 75 for line in header.split("\r\n "))
        parsed = message_from_bytes(f"Subject: {header}\r\n\r\n".encode(), policy=default)
        assert str(parsed["Subject"]) == text
