"""The form never loses an answer: bounded dates, normalised text, no bare 500 (issue 16).

Each test runs on SQLite and PostgreSQL (the `migrated_engine` fixture) over rolled-back rows.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models.calendar import default_calendar
from models.db import transaction
from models.errors import InputError
from models.limits import EXTENSION_MAX_DAYS, add_days, check_extension_date, normalise_text
from models.supervision import Checkin, Extension, Submission
from portal.app import UNSAVED_MESSAGE
from portal.security import RateLimits
from tasks.checkins import extend_checkin
from tasks.submissions import approve_extension
from tests.hostile.portal_support import portal_fixture, sessions_fixture  # noqa: F401
from tests.integration.test_portal import NOW, Portal, answer

HOSTILE_TEXT = [
    ("nul\x00byte", "nulbyte"),
    ("清屏\x1b[2J\x1b[H", "清屏[2J[H"),
    (
        "\x1b]8;;https://evil.example\x1b\\点此\x1b]8;;\x1b\\",
        "]8;;https://evil.example\\点此]8;;\\",
    ),
    ("响铃\x07退格\x08换页\x0c", "响铃退格换页"),
    ("C1\x85\x9b31m", "C131m"),
    ("第一行\r\n第二行\r第三行", "第一行\n第二行\n第三行"),
    ("制表\t保留", "制表\t保留"),
]


def stored_submissions(portal: Portal) -> list[Submission]:
    with portal.sessions() as session:
        return list(
            session.scalars(
                select(Submission)
                .where(Submission.checkin_id == portal.rows.checkin.id)
                .order_by(Submission.version)
            )
        )


async def post_answer(portal: Portal, **fields: str) -> tuple[int, str]:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)
        reply = await client.post(url, data=answer(portal, page.text, **fields))
    return reply.status_code, reply.text


def test_dates_never_overflow() -> None:
    assert add_days(date(9999, 12, 31), 30) == date.max
    assert add_days(date(1, 1, 1), -5) == date.min
    assert add_days(date(2021, 9, 30), 30) == date(2021, 10, 30)


@pytest.mark.parametrize(
    ("due", "new", "ok"),
    [
        (date(2021, 9, 30), date(2021, 12, 31), True),
        (date(2021, 9, 30), date(2022, 1, 1), False),
        (date(2021, 9, 30), date(9999, 12, 31), False),
        (date(2021, 9, 30), date(2021, 9, 30), False),
        (date(2021, 12, 20), add_days(date(2021, 12, 20), EXTENSION_MAX_DAYS), True),
        (date(2021, 12, 20), add_days(date(2021, 12, 20), EXTENSION_MAX_DAYS + 1), False),
        (date(9999, 12, 30), date(9999, 12, 31), True),
    ],
)
def test_extension_bound(due: date, new: date, ok: bool) -> None:
    if ok:
        assert check_extension_date(new, due_date=due, plan_year=2021) == new
    else:
        with pytest.raises(InputError):
            check_extension_date(new, due_date=due, plan_year=2021)


def test_normalise_text_removes_every_control_character() -> None:
    every = "".join(chr(code) for code in range(0x00, 0xA0)) + "\ud800\udfff文"
    cleaned = normalise_text(every)
    assert all(ch in "\t\n" or (0x20 <= ord(ch) < 0x7F) or ch == "文" for ch in cleaned)
    assert "\t" in cleaned and "\n" in cleaned and cleaned.endswith("~文")


async def test_far_extension_date_is_refused_at_the_form(portal: Portal) -> None:
    status, text = await post_answer(portal, extension_date="9999-12-31", extension_reason="无限期")
    assert status == 422 and "超出允许范围" in text and "2021-12-31" in text
    assert stored_submissions(portal) == []
    status, _ = await post_answer(portal, extension_date="2021-12-31", extension_reason="场地")
    assert status == 200


async def test_answers_after_a_far_due_date_are_stored(portal: Portal) -> None:
    # A check-in already moved to 9999-12-31 (by data written before the bound existed):
    # its link expiry and the receipt's link must clamp, not raise OverflowError.
    with transaction(portal.sessions) as session:
        session.get_one(Checkin, portal.rows.checkin.id).due_date = date(9999, 12, 31)
    status, text = await post_answer(portal, narrative="仍在推进")
    assert status == 200, text
    assert [sub.narrative for sub in stored_submissions(portal)] == ["仍在推进"]


def test_approval_and_cli_extension_are_bounded(portal: Portal) -> None:
    with transaction(portal.sessions) as session:
        pending = Extension(
            checkin_id=portal.rows.checkin.id,
            requested_date=date(9999, 12, 31),
            reason="旧数据",
            requested_at=NOW,
        )
        session.add(pending)
        session.flush()
        pending_id = pending.id
    with pytest.raises(InputError, match="超出允许范围"), transaction(portal.sessions) as session:
        approve_extension(session=session, extension_id=pending_id, decided_by="督查室", now=NOW)
    with pytest.raises(InputError, match="超出允许范围"), transaction(portal.sessions) as session:
        extend_checkin(
            session=session,
            checkin_id=portal.rows.checkin.id,
            new_due=date(9999, 12, 31),
            reason="无限期",
            decided_by="督查室",
            now=NOW,
            calendar=default_calendar(),
        )
    with portal.sessions() as session:
        assert (
            session.get_one(Checkin, portal.rows.checkin.id).due_date
            == portal.rows.checkin.due_date
        )


@pytest.mark.parametrize(("typed", "kept"), HOSTILE_TEXT)
async def test_control_characters_are_normalised_on_both_databases(
    portal: Portal, typed: str, kept: str
) -> None:
    status, text = await post_answer(
        portal, narrative=f"进展{typed}", problems=typed, next_steps=typed
    )
    assert status == 200, text
    (sub,) = stored_submissions(portal)
    assert sub.narrative == f"进展{kept}".strip()
    assert sub.problems == sub.next_steps == kept.strip()


async def test_a_failed_write_keeps_the_answer_and_says_so(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("portal.app.record_submission", broken)
    status, text = await post_answer(portal, narrative="已举办活动一百二十场", problems="经费")
    assert status == 503
    assert UNSAVED_MESSAGE in text
    assert "已举办活动一百二十场" in text and "经费" in text
    assert 'name="csrf_token"' in text  # the form itself, ready to send again
    assert stored_submissions(portal) == []


async def test_a_database_outage_keeps_the_answer(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = portal.url()
    async with portal.client() as client:
        page = await client.get(url)

        def down(**_kwargs: object) -> None:
            raise OperationalError("select", {}, Exception("connection refused"))

        monkeypatch.setattr("portal.app.load_page", down)
        reply = await client.post(url, data=answer(portal, page.text, narrative="断网前写好的"))
    assert reply.status_code == 503
    assert UNSAVED_MESSAGE in reply.text and "断网前写好的" in reply.text
    assert reply.headers["x-frame-options"] == "DENY"


form_text = st.text(alphabet=st.characters(codec=None, exclude_categories=["Cs"]), max_size=60)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    narrative=form_text,
    problems=form_text,
    value=st.one_of(form_text, st.floats(allow_nan=True).map(str)),
    extension=st.one_of(st.just(""), st.dates().map(date.isoformat), form_text),
    reason=form_text,
)
def test_post_handler_property(
    portal: Portal, narrative: str, problems: str, value: str, extension: str, reason: str
) -> None:
    """Whatever is typed: 200 with the text stored normalised, or 422 with nothing stored."""
    portal.limits = RateLimits(per_token_get=10**6, per_token_post=10**6)
    first = f"value_{portal.rows.targets[0].id}"
    before = len(stored_submissions(portal))
    fields = {
        "narrative": narrative,
        "problems": problems,
        first: value,
        "extension_date": extension,
        "extension_reason": reason,
    }
    status, text = asyncio.run(post_answer(portal, **fields))
    after = stored_submissions(portal)
    assert status in {200, 422}, text
    if status == 422:
        assert len(after) == before
    else:
        assert len(after) == before + 1
        assert after[-1].narrative == normalise_text(narrative).strip()
        assert "\x00" not in after[-1].problems
