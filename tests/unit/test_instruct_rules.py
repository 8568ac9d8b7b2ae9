"""Leader instructions: instruct tokens are single-purpose, and the pure rules of批示."""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode
from datetime import UTC, date, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from models.clock import LOCAL_TZ
from models.errors import InputError
from models.instruction import (
    ANSWER_MAX,
    INSTRUCTION_MAX,
    InstructionFact,
    answer_field,
    check_instruction_text,
    check_leader_name,
    instruction_key,
    leader_title,
    parse_answers,
    summarise_instructions,
)
from models.settings import Settings
from models.vocabulary import EventType, InstructionSource, InstructionState
from notifications.links import (
    InvalidLink,
    instruct_claims_key,
    instruct_url,
    make_instruct_token,
    make_token,
    verify_instruct_token,
    verify_token,
)

SETTINGS = Settings(secret_key="k" * 40, public_url="https://duban.example.org", _env_file=None)
DAY = date(2026, 6, 30)


def at_local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


def instruct_token(**overrides: object) -> str:
    fields: dict[str, object] = {
        "item_id": 4,
        "department_id": 7,
        "role": "leader",
        "expires_on": DAY,
    }
    fields.update(overrides)
    return make_instruct_token(settings=SETTINGS, **fields)  # type: ignore[arg-type]


def test_instruct_token_round_trip_binds_item_and_leader() -> None:
    claims = verify_instruct_token(instruct_token(), settings=SETTINGS, now=at_local(DAY, 23, 59))
    assert (claims.item_id, claims.department_id, claims.role, claims.purpose) == (
        4,
        7,
        "leader",
        "instruct",
    )
    assert instruct_claims_key(claims) == "instruct:4:7:leader"
    with pytest.raises(InvalidLink):
        verify_instruct_token(
            instruct_token(), settings=SETTINGS, now=at_local(DAY + timedelta(1), 0)
        )


def test_instruct_url_expires_after_the_setting() -> None:
    short = Settings(secret_key="k" * 40, instruct_link_valid_days=2, _env_file=None)
    url = instruct_url(settings=short, item_id=1, department_id=2, role="head", now=at_local(DAY))
    token = url.rsplit("/i/", 1)[1]
    verify_instruct_token(token, settings=short, now=at_local(DAY + timedelta(days=2), 23))
    with pytest.raises(InvalidLink):
        verify_instruct_token(token, settings=short, now=at_local(DAY + timedelta(days=3), 0))


def test_a_form_token_is_never_an_instruct_token_nor_the_reverse() -> None:
    form = make_token(settings=SETTINGS, checkin_id=4, department_id=7, due_date=DAY)
    with pytest.raises(InvalidLink):
        verify_instruct_token(form, settings=SETTINGS, now=at_local(DAY))
    instruct = instruct_token()
    for purpose in ("checkin", "instruct"):
        with pytest.raises(InvalidLink):
            verify_token(instruct, settings=SETTINGS, now=at_local(DAY), purpose=purpose)


def test_a_form_salt_payload_shaped_like_an_instruct_token_is_refused() -> None:
    """Even signed with the form links' salt, the instruct payload does not verify."""
    form_serializer = URLSafeSerializer("k" * 40, salt="duban.link.v1")
    forged = str(form_serializer.dumps(["instruct", 4, 7, "leader", DAY.toordinal()]))
    with pytest.raises(InvalidLink):
        verify_instruct_token(forged, settings=SETTINGS, now=at_local(DAY))


@pytest.mark.parametrize(
    "payload",
    [
        ["checkin", 4, 7, "leader", DAY.toordinal()],
        ["instruct", 4, 7, "contact", DAY.toordinal()],
        ["instruct", True, 7, "leader", DAY.toordinal()],
        ["instruct", 4, 7, "leader"],
        ["instruct", "4", 7, "leader", DAY.toordinal()],
    ],
)
def test_wrong_purpose_role_or_shape_under_the_right_key_is_refused(payload: list[object]) -> None:
    serializer = URLSafeSerializer(
        "k" * 40,
        salt="duban.link.instruct.v1",
        signer_kwargs={"digest_method": __import__("hashlib").sha256},
    )
    with pytest.raises(InvalidLink):
        verify_instruct_token(str(serializer.dumps(payload)), settings=SETTINGS, now=at_local(DAY))


def test_only_the_canonical_spelling_verifies() -> None:
    token = instruct_token()
    for variant in (token + "=", token + "x", token.upper(), token[:-1]):
        with pytest.raises(InvalidLink):
            verify_instruct_token(variant, settings=SETTINGS, now=at_local(DAY))
    other = str(json.dumps([1]))
    with pytest.raises(InvalidLink):
        verify_instruct_token(
            urlsafe_b64encode(other.encode()).decode(), settings=SETTINGS, now=at_local(DAY)
        )


def test_text_rules_refuse_empty_and_overlong_in_chinese() -> None:
    assert check_instruction_text("  请加快推进。\r\n\x00") == "请加快推进。"
    with pytest.raises(InputError, match="批示内容不能为空"):
        check_instruction_text(" \n\t ")
    with pytest.raises(InputError, match=f"不能超过{INSTRUCTION_MAX}字"):
        check_instruction_text("字" * (INSTRUCTION_MAX + 1))
    assert len(check_instruction_text("字" * INSTRUCTION_MAX)) == INSTRUCTION_MAX
    assert check_leader_name(" 张三 ") == "张三"
    for bad in ("", "张\n三", "名" * 101):
        with pytest.raises(InputError):
            check_leader_name(bad)


def test_the_business_key_is_the_same_instruction_only() -> None:
    base = {"item_id": 4, "leader_role": "leader", "leader_name": "张三", "text": "抓紧"}
    assert instruction_key(**base) == instruction_key(**base)  # type: ignore[arg-type]
    assert instruction_key(**base) != instruction_key(**{**base, "item_id": 5})  # type: ignore[arg-type]
    assert instruction_key(**base) != instruction_key(**{**base, "text": "抓紧。"})  # type: ignore[arg-type]
    assert instruction_key(**base) != instruction_key(**base, given_on=DAY)  # type: ignore[arg-type]


def test_parse_answers_requires_each_open_instruction_and_bounds_it() -> None:
    raw = {answer_field(3): " 已召开专题会议落实。", answer_field(9): ""}
    parsed = parse_answers(raw, [3, 9])
    assert parsed.answers == {}
    assert parsed.errors == ["请填写第2条领导批示的落实情况（落实批示情况）。"]
    ok = parse_answers({answer_field(3): "已落实", answer_field(9): "已部署"}, [3, 9])
    assert ok.answers == {3: "已落实", 9: "已部署"} and ok.errors == []
    long = parse_answers({answer_field(3): "字" * (ANSWER_MAX + 1)}, [3])
    assert long.errors == [f"第1条落实批示情况不能超过{ANSWER_MAX}字。"]
    assert parse_answers({}, []).answers == {}


def fact(ident: int, given: datetime, answered: datetime | None = None) -> InstructionFact:
    return InstructionFact(
        id=ident,
        item_id=1,
        item_label="第1项 某任务",
        leader=leader_title("leader", "张三"),
        text="抓紧",
        source=InstructionSource.LINK,
        given_at=given,
        answered_at=answered,
        answer="已落实" if answered else "",
    )


def test_period_summary_counts_answers_by_the_period_end() -> None:
    start, end = at_local(date(2026, 4, 1), 0), at_local(date(2026, 6, 30), 23)
    facts = [
        fact(1, at_local(date(2026, 3, 1))),
        fact(2, at_local(date(2026, 5, 1)), at_local(date(2026, 5, 10))),
        fact(3, at_local(date(2026, 5, 2)), at_local(date(2026, 7, 3))),
        fact(4, at_local(date(2026, 6, 1))),
    ]
    summary = summarise_instructions(facts, start=start, end=end)
    assert [f.id for f in summary.facts] == [2, 3, 4]
    assert [f.state for f in summary.facts] == [
        InstructionState.ANSWERED,
        InstructionState.OPEN,
        InstructionState.OPEN,
    ]
    assert (summary.answered, summary.open) == (1, 2)


def test_vocabulary_names_the_event_and_labels() -> None:
    assert EventType.ITEM_INSTRUCTED == "duban.item.instructed"
    assert InstructionState.OPEN.label == "待落实"
    assert InstructionSource.PAPER.label == "督查室代录（书面批示）"
    assert leader_title("head", "李四") == "主要负责人 李四"
