"""The relay sends `build_email`'s bytes as they are: they are always in transmission form
(CRLF only, no line starting with a dot), whatever the bodies, subject and attachments."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from models.outbox import OutboxMessage
from models.settings import Settings
from notifications.mime import _base64_lines, build_email, encoded_words
from notifications.rendering import KINDS, render_message
from notifications.samples import sample_context
from notifications.smtp import in_transmission_form, transmission_form

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
SETTINGS = Settings(mail_from_address="duban@example.org", mail_from_name="督办系统")
BODY = st.text(alphabet=st.sampled_from("ab 中文.\r\n\t=-_<>"), max_size=300)
ONE_LINE = st.text(alphabet=st.sampled_from("ab 中文.=?-_\t"), min_size=1, max_size=120)


def _aiosmtplib_form(data: bytes) -> bytes:
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))


def _row(**fields: object) -> OutboxMessage:
    values: dict[str, object] = {
        "id": "0123456789abcdef0123456789abcdef",
        "key": "k",
        "kind": "request",
        "to_addrs": ["dept@example.org"],
        "cc_addrs": [],
        "subject": "【报送提醒】第4项",
        "text_body": "请报送。",
        "html_body": "",
        "attachments": [],
        "created_at": NOW,
    }
    values.update(fields)
    return OutboxMessage(**values)


@settings(max_examples=150, deadline=None)
@given(text=BODY, html=BODY, subject=ONE_LINE, name=ONE_LINE, attachment=st.binary(max_size=400))
def test_build_email_is_always_in_transmission_form(
    text: str,
    html: str,
    subject: str,
    name: str,
    attachment: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.getbasetemp() / "wire-form.bin"
    path.write_bytes(attachment)
    row = _row(
        subject=subject,
        text_body=text,
        html_body=html,
        cc_addrs=["leader@例子.中国"],
        attachments=[{"path": str(path), "filename": f"{name}.docx", "mime": "x/y"}],
    )
    data = build_email(row, SETTINGS.model_copy(update={"mail_from_name": name})).data
    assert build_email(row, SETTINGS).wire_form
    assert in_transmission_form(data)
    assert transmission_form(data) == (data, len(data))
    assert _aiosmtplib_form(data) == data


def test_every_kind_is_in_transmission_form() -> None:
    for kind in sorted(KINDS):
        message = render_message(kind, sample_context(kind))
        row = _row(
            kind=kind, subject=message.subject, text_body=message.text, html_body=message.html
        )
        data = build_email(row, SETTINGS).data
        assert in_transmission_form(data), kind
        assert _aiosmtplib_form(data) == data, kind


@given(data=st.binary(max_size=200) | BODY.map(lambda text: text.encode("utf-8")))
def test_other_bytes_are_escaped_as_aiosmtplib_does(data: bytes) -> None:
    wire, size = transmission_form(data)
    assert wire == _aiosmtplib_form(data)
    assert size == len(normalize_message_line_endings(data))
    assert in_transmission_form(data) == (wire == data)


def _encoded_words_one_char_at_a_time(text: str) -> str:
    """The reference: each word takes characters while they fit in 39 bytes of UTF-8."""
    words: list[bytes] = []
    chunk = b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 39 and chunk:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    if chunk or not words:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


@given(text=st.text(alphabet=st.sampled_from("a中😀é- ?=_"), max_size=90))
def test_encoded_words_match_the_reference(text: str) -> None:
    assert encoded_words(text) == _encoded_words_one_char_at_a_time(text)


@given(data=st.binary(max_size=600))
def test_base64_lines_match_encodebytes(data: bytes) -> None:
    assert _base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
