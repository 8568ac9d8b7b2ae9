"""The catch-up cap (`models.catch_up`), worked out by hand."""

from __future__ import annotations

from datetime import date

from models.catch_up import HELD, cap_catch_up, summary_key
from models.daily_pass import NoticeAction
from models.vocabulary import NoticeKind

TODAY = date(2021, 12, 6)


def notice(key: str, *emails: str, level: int = 1, item_id: int = 1) -> NoticeAction:
    return NoticeAction(
        key=key,
        kind=NoticeKind.ESCALATION,
        level=level,
        item_id=item_id,
        department_id=1,
        checkin_id=1,
        recipients=[{"role": "leader", "name": email.upper(), "email": email} for email in emails],
        reason=f"{key} 的理由",
        events=(),
    )


def held(action: NoticeAction) -> list[str]:
    return [entry["email"] for entry in action.recipients if entry.get(HELD)]


def test_each_recipient_gets_at_most_the_limit_of_catch_ups_and_one_summary() -> None:
    notices = [
        notice("n1", "a"),
        notice("n2", "a", "b"),
        notice("n3", "a"),  # due today: not a catch-up, never held, not counted
        notice("n4", "a", level=2, item_id=7),
        notice("n5", "b", "c"),
        notice("n6", "b", level=3),
    ]
    capped, summaries = cap_catch_up(
        notices,
        late={"n1", "n2", "n4", "n5", "n6"},
        limit=2,
        plan_id=3,
        today=TODAY,
        first_item_id=1,
        labels={1: "第1项 甲", 7: "第7项 乙"},
    )
    # a: n1, n2 sent (2), n4 held; b: n2, n5 sent, n6 held; c: n5 sent.
    assert [action.key for action in capped] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    assert [held(action) for action in capped] == [[], [], [], ["a"], [], ["b"]]
    assert capped[2] is notices[2] and capped[0] is notices[0]
    assert [(s.recipient["email"], s.sent, [h.key for h in s.held]) for s in summaries] == [
        ("a", 2, ["n4"]),
        ("b", 2, ["n6"]),
    ]
    assert summaries[0].held[0].label == "第7项 乙" and summaries[0].held[0].level == 2
    assert summaries[0].key == summary_key(3, TODAY, "a", 1)
    assert summaries[0].key == "catchup:3:2021-12-06:ca978112ca1bbdca:1"  # sha256("a")[:16]


def test_no_limit_or_no_catch_up_changes_nothing() -> None:
    notices = [notice(f"n{n}", "a") for n in range(10)]
    assert cap_catch_up(
        notices,
        late={n.key for n in notices},
        limit=None,
        plan_id=1,
        today=TODAY,
        first_item_id=1,
        labels={},
    ) == (notices, [])
    assert cap_catch_up(
        notices, late=set(), limit=1, plan_id=1, today=TODAY, first_item_id=1, labels={}
    ) == (notices, [])


def test_the_summary_key_is_per_plan_day_recipient_and_chunk() -> None:
    keys = {
        summary_key(1, TODAY, "a@example.org", 1),
        summary_key(2, TODAY, "a@example.org", 1),
        summary_key(1, date(2021, 12, 7), "a@example.org", 1),
        summary_key(1, TODAY, "b@example.org", 1),
        summary_key(1, TODAY, "a@example.org", 501),
    }
    assert len(keys) == 5 and all(len(key) <= 200 for key in keys)
