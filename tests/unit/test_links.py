"""Signed form links: round trip, expiry at the local day boundary, tampering, binding."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.clock import LOCAL_TZ
from models.settings import Settings
from notifications.links import (
    InvalidLink,
    form_url,
    link_expiry,
    make_token,
    token_digest,
    verify_token,
)

SECRET = "k" * 40
DUE = date(2026, 6, 30)


@pytest.fixture
def settings() -> Settings:
    return Settings(secret_key=SECRET, public_url="https://duban.example.org/", _env_file=None)


def at_local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


def test_round_trip_returns_bound_claims(settings: Settings) -> None:
    token = make_token(settings=settings, checkin_id=12, department_id=3, due_date=DUE)
    claims = verify_token(token, settings=settings, now=at_local(DUE))
    assert (claims.checkin_id, claims.department_id, claims.purpose) == (12, 3, "checkin")
    assert claims.expires_on == DUE + timedelta(days=30)


def test_valid_through_last_local_day_then_expires(settings: Settings) -> None:
    token = make_token(settings=settings, checkin_id=1, department_id=2, due_date=DUE)
    last = link_expiry(settings=settings, due_date=DUE)
    verify_token(token, settings=settings, now=at_local(last, 23, 59))
    with pytest.raises(InvalidLink):
        verify_token(token, settings=settings, now=at_local(last + timedelta(days=1), 0, 0))


def test_validity_follows_setting() -> None:
    short = Settings(secret_key=SECRET, link_valid_days_after_due=1, _env_file=None)
    token = make_token(settings=short, checkin_id=1, department_id=2, due_date=DUE)
    verify_token(token, settings=short, now=at_local(DUE + timedelta(days=1)))
    with pytest.raises(InvalidLink):
        verify_token(token, settings=short, now=at_local(DUE + timedelta(days=2)))


def test_tampered_payload_or_signature_is_refused(settings: Settings) -> None:
    token = make_token(settings=settings, checkin_id=12, department_id=3, due_date=DUE)
    forged = make_token(settings=settings, checkin_id=13, department_id=3, due_date=DUE)
    payload, signature = token.split(".")
    other_payload, _ = forged.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (f"{other_payload}.{signature}", f"{payload}.{flipped}", payload, "", "x" * 500):
        with pytest.raises(InvalidLink):
            verify_token(bad, settings=settings, now=at_local(DUE))


def test_other_secret_is_refused(settings: Settings) -> None:
    token = make_token(settings=settings, checkin_id=12, department_id=3, due_date=DUE)
    other = Settings(secret_key="z" * 40, _env_file=None)
    with pytest.raises(InvalidLink):
        verify_token(token, settings=other, now=at_local(DUE))


def test_wrong_purpose_is_refused(settings: Settings) -> None:
    token = make_token(
        settings=settings, checkin_id=12, department_id=3, due_date=DUE, purpose="receipt"
    )
    with pytest.raises(InvalidLink):
        verify_token(token, settings=settings, now=at_local(DUE))
    assert verify_token(token, settings=settings, now=at_local(DUE), purpose="receipt").purpose


def test_all_failures_read_the_same(settings: Settings) -> None:
    token = make_token(settings=settings, checkin_id=1, department_id=2, due_date=DUE)
    messages = set()
    for bad, now in ((token + "x", at_local(DUE)), (token, at_local(date(2027, 1, 1)))):
        with pytest.raises(InvalidLink) as caught:
            verify_token(bad, settings=settings, now=now)
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_form_url_is_absolute_and_verifiable(settings: Settings) -> None:
    url = form_url(settings=settings, checkin_id=7, department_id=4, due_date=DUE)
    assert url.startswith("https://duban.example.org/c/")
    token = url.rsplit("/", 1)[1]
    assert verify_token(token, settings=settings, now=at_local(DUE)).checkin_id == 7
    assert token not in token_digest(token) and len(token_digest(token)) == 16


def test_a_link_mailed_after_the_due_date_lives_from_the_mailing(settings: Settings) -> None:
    late = DUE + timedelta(days=120)  # an instruction or a return on a long-overdue check-in
    token = make_token(
        settings=settings, checkin_id=1, department_id=2, due_date=DUE, issued_on=late
    )
    assert verify_token(
        token, settings=settings, now=at_local(late)
    ).expires_on == late + timedelta(days=30)
    early = make_token(
        settings=settings,
        checkin_id=1,
        department_id=2,
        due_date=DUE,
        issued_on=DUE - timedelta(days=5),
    )
    assert verify_token(early, settings=settings, now=at_local(DUE)).expires_on == DUE + timedelta(
        days=30
    )
    with pytest.raises(InvalidLink):
        verify_token(token, settings=settings, now=at_local(late + timedelta(days=31)))
