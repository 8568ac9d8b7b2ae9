"""The daily digest's pure rules: which notices are held, and how a digest is grouped."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.digest import (
    DeliveryDecision,
    DeliveryRule,
    EntryFacts,
    delivery_decision,
    digest_key,
    group_digests,
    held_entries,
)
from models.errors import InputError
from models.policy import DeliveryNames, default_policy, load_policy, parse_policy

CONTACT = {"role": "contact", "name": "王联系", "email": "c@example.org"}
CONTACT2 = {"role": "contact", "name": "", "email": "c2@example.org"}
LEADER = {"role": "leader", "name": "李分管", "email": "Leader@example.org"}
HEAD = {"role": "head", "name": "张主任", "email": "head@example.org"}
OFFICE = {"role": "office", "name": "督查室", "email": "office@example.org"}
BOTH = DeliveryRule(departments="digest", leaders="digest")


def held(
    kind: str, recipients: list[object], rule: DeliveryRule
) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (entry.recipient, entry.addresses)
        for entry in held_entries(
            key="k", kind=kind, department_id=7, recipients=recipients, rule=rule
        )
    ]


def test_the_default_policy_sends_one_email_per_notice() -> None:
    assert default_policy().delivery == DeliveryRule(departments="each", leaders="each")
    for kind in ("request", "reminder", "escalation", "assignment"):
        assert held(kind, [CONTACT, LEADER], default_policy().delivery) == []


def test_the_policy_reads_delivery_per_recipient_kind() -> None:
    policy = parse_policy({**default_policy().to_mapping(), "delivery": {"departments": "digest"}})
    assert policy.delivery == DeliveryRule(departments="digest", leaders="each")
    with pytest.raises(Exception, match="delivery"):
        parse_policy({**default_policy().to_mapping(), "delivery": {"departments": "weekly"}})


def test_a_department_notice_goes_to_its_departments_digest_with_all_contacts() -> None:
    assert held("request", [CONTACT, CONTACT2], BOTH) == [
        ("department:7", ("c@example.org", "c2@example.org"))
    ]
    assert held("reminder", [CONTACT], DeliveryRule(departments="digest")) == [
        ("department:7", ("c@example.org",))
    ]
    # Assignments (交办) keep their own email: they carry the item's whole text.
    assert held("assignment", [CONTACT], BOTH) == []


def test_a_return_goes_to_its_departments_digest_only_under_departments_digest() -> None:
    assert held("returned", [CONTACT, CONTACT2], DeliveryRule(departments="digest")) == [
        ("department:7", ("c@example.org", "c2@example.org"))
    ]
    # Under `each` (leaders on digests or not) the return keeps its own email.
    assert held("returned", [CONTACT], DeliveryRule(leaders="digest")) == []
    assert held("returned", [CONTACT], DeliveryRule()) == []
    # A department without a contact address has no digest to go to.
    assert held("returned", [], BOTH) == []


def test_an_escalation_goes_to_each_leaders_own_digest() -> None:
    entries = held("escalation", [LEADER, HEAD, OFFICE, CONTACT], BOTH)
    assert entries == [
        ("leader:leader@example.org", ("Leader@example.org",)),
        ("leader:head@example.org", ("head@example.org",)),
        ("leader:office@example.org", ("office@example.org",)),
        ("department:7", ("c@example.org",)),
    ]
    # Leaders on digests, departments not: the contacts' Cc is dropped (they have reminders).
    assert held("escalation", [LEADER, CONTACT], DeliveryRule(leaders="digest")) == [
        ("leader:leader@example.org", ("Leader@example.org",))
    ]
    # Leaders on single emails: the escalation keeps its email (with the contacts in Cc).
    assert held("escalation", [LEADER, CONTACT], DeliveryRule(departments="digest")) == []


def test_a_first_rung_escalation_to_the_contacts_is_a_department_notice() -> None:
    assert held("escalation", [CONTACT], DeliveryRule(departments="digest")) == [
        ("department:7", ("c@example.org",))
    ]
    assert held("escalation", [CONTACT], DeliveryRule(leaders="digest")) == []


def test_recipients_the_catch_up_cap_held_and_notices_without_department_are_not_held() -> None:
    assert held("request", [{**CONTACT, "held": "1"}], BOTH) == []
    assert (
        held_entries(key="k", kind="request", department_id=None, recipients=[CONTACT], rule=BOTH)
        == []
    )


def fact(
    entry: int,
    notice: int,
    kind: str,
    item: int,
    checkin: int | None,
    due: date | None,
    *,
    recipient: str = "department:1",
    level: int = 0,
    order: int = 0,
    reason: str = "",
) -> EntryFacts:
    return EntryFacts(
        entry_id=entry,
        recipient=recipient,
        notice_id=notice,
        kind=kind,
        level=level,
        item_id=item,
        department_id=1,
        checkin_id=checkin,
        due_date=due,
        item_order=(order,),
        reason=reason,
    )


def test_a_digest_lists_each_item_once_and_each_checkin_once_with_what_is_due() -> None:
    day = date(2021, 6, 25)
    entries = [
        fact(1, 30, "reminder", 5, 50, date(2021, 6, 25), order=2),
        fact(2, 31, "request", 4, 41, date(2021, 7, 2), order=1),
        fact(3, 20, "request", 5, 50, date(2021, 6, 25), order=2),
        fact(4, 32, "escalation", 4, 40, date(2021, 6, 18), level=1, order=1),
        fact(5, 33, "escalation", 4, 40, date(2021, 6, 18), level=2, order=1),
        fact(6, 34, "escalation", 4, 40, date(2021, 6, 18), recipient="leader:l@x", level=2),
    ]
    plans = group_digests(entries, day=day)
    assert [plan.recipient for plan in plans] == ["department:1", "leader:l@x"]
    department, leader = plans
    assert department.key == "digest:2021-06-25:department:1:20"
    assert department.entry_ids == [1, 2, 3, 4, 5]
    assert department.notice_ids == [20, 30, 31, 32, 33]
    # Items in plan order (item 4 before 5), lines by due date, kinds in notice order.
    assert [
        (item_id, [(line.checkin_id, line.due_date, line.kinds, line.level) for line in lines])
        for item_id, lines in department.items
    ] == [
        (
            4,
            [
                (40, date(2021, 6, 18), ["escalation"], 2),
                (41, date(2021, 7, 2), ["request"], 0),
            ],
        ),
        (5, [(50, date(2021, 6, 25), ["request", "reminder"], 0)]),
    ]
    assert leader.key == "digest:2021-06-25:leader:l@x:34"
    assert [item_id for item_id, _ in leader.items] == [4]


def test_a_returned_checkin_is_one_line_with_its_latest_reason() -> None:
    entries = [
        fact(1, 10, "returned", 5, 50, date(2021, 7, 6), reason="请补充数据"),
        fact(2, 11, "request", 5, 50, date(2021, 7, 6)),
        fact(3, 12, "returned", 5, 50, date(2021, 7, 6), reason="请附照片"),
        fact(4, 13, "reminder", 6, 60, date(2021, 6, 30)),
    ]
    (plan,) = group_digests(entries, day=date(2021, 6, 30))
    assert [
        (item_id, [(line.checkin_id, line.kinds, line.reason) for line in lines])
        for item_id, lines in plan.items
    ] == [
        (5, [(50, ["returned", "request"], "请附照片")]),  # returned twice: the latest reason
        (6, [(60, ["reminder"], "")]),
    ]


def test_digest_keys_are_stable_and_short() -> None:
    assert digest_key(date(2021, 1, 4), "department:3", 9) == "digest:2021-01-04:department:3:9"
    long = digest_key(date(2021, 1, 4), "leader:" + "x" * 250 + "@example.org", 9)
    assert len(long) <= 200 and long.startswith("digest:2021-01-04:sha256:") and long.endswith(":9")
    assert group_digests([], day=date(2021, 1, 4)) == []


# Per recipient: one department on a digest, another on single emails; one leader likewise.
XUEHUI = DeliveryRule(digest_departments=("学会部",), digest_leaders=("leader@EXAMPLE.org",))


def decided(kind: str, recipients: list[object], rule: DeliveryRule, name: str) -> DeliveryDecision:
    return delivery_decision(
        key="k", kind=kind, department_id=7, recipients=recipients, rule=rule, department_name=name
    )


def test_a_department_named_in_digest_departments_gets_a_digest_the_others_single_emails() -> None:
    assert not XUEHUI.all_each and DeliveryRule().all_each
    on_digest = decided("request", [CONTACT], XUEHUI, "学会部")
    assert (on_digest.single, [e.recipient for e in on_digest.entries]) == (False, ["department:7"])
    for kind in ("request", "reminder", "returned"):
        assert decided(kind, [CONTACT], XUEHUI, "普及部") == DeliveryDecision()
    # each_departments overrides `departments: digest` the other way.
    rule = DeliveryRule(departments="digest", each_departments=("普及部",))
    assert decided("reminder", [CONTACT], rule, "普及部").single
    assert not decided("reminder", [CONTACT], rule, "学会部").single


def test_a_leader_named_in_digest_leaders_gets_a_digest_the_others_keep_the_email() -> None:
    # Matched by address in any case, or by name.
    assert XUEHUI.for_leader("", "Leader@example.org") == "digest"
    assert (
        DeliveryRule(digest_leaders=("张主任",)).for_leader("张主任", "x@example.org") == "digest"
    )
    assert XUEHUI.for_leader("张主任", "head@example.org") == "each"
    # The only leader on a digest: no email of its own; the contacts' Cc is dropped
    # (their department is on single emails) or goes to their digest (学会部).
    alone = decided("escalation", [LEADER, CONTACT], XUEHUI, "普及部")
    assert (alone.single, [e.recipient for e in alone.entries]) == (
        False,
        ["leader:leader@example.org"],
    )
    both = decided("escalation", [LEADER, CONTACT], XUEHUI, "学会部")
    assert [e.recipient for e in both.entries] == ["leader:leader@example.org", "department:7"]
    # Mixed: the head keeps the single email (contacts in Cc), the leader is left out of it.
    mixed = decided("escalation", [LEADER, HEAD, CONTACT], XUEHUI, "学会部")
    assert mixed.single and mixed.held == {"Leader@example.org"}
    assert [e.recipient for e in mixed.entries] == ["leader:leader@example.org"]
    # A leader on single emails under `leaders: digest`.
    rule = DeliveryRule(leaders="digest", each_leaders=("李分管",))
    kept = decided("escalation", [LEADER, HEAD], rule, "")
    assert kept.single and kept.held == {"head@example.org"}


def test_the_policy_refuses_a_name_in_both_lists_and_reads_the_lists() -> None:
    base = default_policy().to_mapping()
    policy = parse_policy({**base, "delivery": {"digest_departments": ["学会部"]}})
    assert policy.delivery.digest_departments == ("学会部",)
    with pytest.raises(InputError, match="同时列在 digest_departments 和 each_departments"):
        parse_policy(
            {**base, "delivery": {"digest_departments": ["学会部"], "each_departments": ["学会部"]}}
        )
    with pytest.raises(InputError, match="同时列在 digest_leaders"):
        parse_policy(
            {**base, "delivery": {"digest_leaders": ["A@x.org"], "each_leaders": ["a@x.org"]}}
        )


NAMES = DeliveryNames(
    departments={"学会部": "学会部", "學會部": "学会部", "普及部": "普及部"},
    leaders=frozenset({"刘卫东", "liu.weidong@example.org"}),
)


def test_the_directory_checks_the_policys_lists_with_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "delivery:\n  digest_departments: [學會部]\n  each_departments: [普及部]\n"
        "  digest_leaders: [Liu.Weidong@example.org]\n",
        encoding="utf-8",
    )
    rule = load_policy(good, names=NAMES).delivery
    assert rule.digest_departments == ("学会部",)  # the alias becomes the canonical name
    assert rule.for_department("学会部") == "digest" and rule.for_department("普及部") == "each"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "delivery:\n  digest_departments:\n    - 学会部\n    - 宣传部\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as caught:
        load_policy(bad, names=NAMES)
    assert caught.value.line == 4 and caught.value.path == str(bad)
    assert "部门“宣传部”不在部门名录中" in caught.value.reason
    assert load_policy(bad).delivery.digest_departments == ("学会部", "宣传部")  # no directory
    leader = tmp_path / "leader.yaml"
    leader.write_text("delivery:\n  leaders: each\n  digest_leaders: [王五]\n", encoding="utf-8")
    with pytest.raises(InputError, match="“王五”不是部门名录中") as caught:
        load_policy(leader, names=NAMES)
    assert caught.value.line == 3
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "delivery:\n  digest_departments: [學會部]\n  each_departments: [学会部]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="即部门“学会部”，已列在 digest_departments") as caught:
        load_policy(twice, names=NAMES)
    assert caught.value.line == 3
