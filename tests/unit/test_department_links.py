"""Department-page links (本部门督办事项): round trip, expiry from the mailing day, and no
confusion with form, instruct or download tokens in either direction."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from models.clock import LOCAL_TZ
from models.settings import Settings
from notifications.links import (
    InvalidLink,
    attachment_token,
    department_link_expiry,
    department_url,
    make_department_token,
    make_instruct_token,
    make_token,
    token_digest,
    verify_attachment_token,
    verify_department_token,
    verify_instruct_token,
    verify_token,
)
from portal.server import redact_path

MAILED = date(2021, 5, 26)


@pytest.fixture
def settings() -> Settings:
    return Settings(secret_key="k" * 40, public_url="https://duban.example.org", _env_file=None)


def at_local(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)


def test_a_mailed_link_names_its_department_and_lives_as_long_as_a_form_link(
    settings: Settings,
) -> None:
    url = department_url(settings=settings, department_id=7, issued_on=MAILED)
    assert url.startswith("https://duban.example.org/d/")
    token = url.rsplit("/", 1)[1]
    expires = department_link_expiry(settings=settings, issued_on=MAILED)
    assert expires == date(2021, 6, 25)  # link_valid_days_after_due (30) after the mailing
    claims = verify_department_token(token, settings=settings, now=at_local(expires, 23))
    assert (claims.department_id, claims.purpose, claims.expires_on) == (7, "department", expires)
    with pytest.raises(InvalidLink):
        verify_department_token(token, settings=settings, now=at_local(date(2021, 6, 26), 0))


def test_no_other_kind_of_token_verifies_as_a_department_token(settings: Settings) -> None:
    now = at_local(MAILED)
    others = [
        make_token(settings=settings, checkin_id=7, department_id=7, due_date=MAILED),
        make_instruct_token(
            settings=settings, item_id=7, department_id=7, role="leader", expires_on=MAILED
        ),
        attachment_token(settings=settings, attachment_id=7, department_id=7, now=now),
    ]
    for token in others:
        with pytest.raises(InvalidLink):
            verify_department_token(token, settings=settings, now=now)


def test_a_department_token_opens_nothing_else(settings: Settings) -> None:
    now = at_local(MAILED)
    token = make_department_token(settings=settings, department_id=7, expires_on=MAILED)
    for verify in (verify_token, verify_instruct_token, verify_attachment_token):
        with pytest.raises(InvalidLink):
            verify(token, settings=settings, now=now)


def test_only_the_canonical_spelling_under_the_right_key_verifies(settings: Settings) -> None:
    now = at_local(MAILED)
    token = make_department_token(settings=settings, department_id=7, expires_on=MAILED)
    other_key = Settings(secret_key="x" * 40, _env_file=None)
    for bad in (token + "=", token + "A", token.swapcase(), "", "a" * 401):
        with pytest.raises(InvalidLink):
            verify_department_token(bad, settings=settings, now=now)
    with pytest.raises(InvalidLink):
        verify_department_token(token, settings=other_key, now=now)


def test_a_row_link_of_the_page_is_redacted_in_the_access_log(settings: Settings) -> None:
    """The page's row links (`/d/<token>/c/<id>`) log the token only as a digest."""
    token = make_department_token(settings=settings, department_id=7, expires_on=date(2021, 7, 28))
    redacted = redact_path(f"/d/{token}/c/123")
    assert token not in redacted
    assert redacted == f"/d/~{token_digest(token)}/c/123"
