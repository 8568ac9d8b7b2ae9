"""Hostile instruct links: only the canonical token verifies, and no form token, whatever its
ids, is ever accepted as an instruct token (nor the reverse)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.settings import Settings
from notifications.links import (
    InvalidLink,
    make_instruct_token,
    make_token,
    verify_instruct_token,
    verify_token,
)

SETTINGS = Settings(secret_key="h" * 40, public_url="https://duban.example.org", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
DAY = date(2021, 10, 30)
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=300, deadline=None)
@given(
    item=st.integers(1, 10**9),
    department=st.integers(1, 10**6),
    role=st.sampled_from(["leader", "head"]),
    cut=st.integers(0, 5),
    extra=st.text(alphabet=BASE64 + "=.%é\x00 ", max_size=4),
)
def test_no_other_string_verifies(
    item: int, department: int, role: str, cut: int, extra: str
) -> None:
    token = make_instruct_token(
        settings=SETTINGS, item_id=item, department_id=department, role=role, expires_on=DAY
    )
    assert verify_instruct_token(token, settings=SETTINGS, now=NOW).item_id == item
    with pytest.raises(InvalidLink):
        verify_token(token, settings=SETTINGS, now=NOW)
    variant = token[: len(token) - cut] + extra
    if variant == token:
        return
    with pytest.raises(InvalidLink):
        verify_instruct_token(variant, settings=SETTINGS, now=NOW)


@settings(max_examples=200, deadline=None)
@given(checkin=st.integers(1, 10**9), department=st.integers(1, 10**6))
def test_no_form_token_is_an_instruct_token(checkin: int, department: int) -> None:
    token = make_token(
        settings=SETTINGS, checkin_id=checkin, department_id=department, due_date=DAY
    )
    with pytest.raises(InvalidLink):
        verify_instruct_token(token, settings=SETTINGS, now=NOW)
