"""The inbox decided in pure code: names, tags, the form's text, answers and the reconciliation."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from prefect.types.names import LOWERCASE_LETTERS_NUMBERS_AND_DASHES_ONLY_REGEX
from prefect.utilities.schema_tools import validate

from flows.inbox import FORMS
from models.errors import InputError
from models.inbox import (
    CANCEL_DECIDED,
    CANCEL_DUPLICATE,
    CANCEL_EXPIRED,
    INBOX_TAG,
    Figure,
    PendingDecision,
    RunLife,
    WaitingRun,
    description,
    pause_key,
    read_answer,
    reason_rule,
    reconcile_inbox,
    run_life,
    run_name,
    run_tags,
)
from models.vocabulary import InboxChoice, InboxKind

NOW = datetime(2021, 9, 27, 2, 0, tzinfo=UTC)


def _decision(decision_id: int = 7, **changes: object) -> PendingDecision:
    values: dict[str, object] = {
        "kind": InboxKind.EXTENSION,
        "decision_id": decision_id,
        "plan_id": 3,
        "item_id": 40,
        "item_label": "第4项 搭建高水平科技开放交流平台",
        "department": "学会部",
        "requested_at": NOW,
    }
    values.update(changes)
    return PendingDecision(**values)  # type: ignore[arg-type]


def _run(run_id: str, key: str, life: RunLife = RunLife.LIVE, minute: int = 0) -> WaitingRun:
    return WaitingRun(run_id=run_id, key=key, life=life, created=NOW + timedelta(minutes=minute))


def test_run_is_named_for_the_item_and_department_and_tagged_for_one_filter() -> None:
    decision = _decision()
    assert run_name(decision) == "待审批延期：第4项 搭建高水平科技开放交流平台—学会部"
    assert run_tags(decision) == [
        INBOX_TAG,
        "inbox:extension",
        "plan:3",
        "item:40",
        "dept:学会部",
    ]
    long = _decision(item_label="第12项 " + "很长的任务名称" * 10)
    assert run_name(long).endswith("…—学会部")
    assert len(run_name(long)) < 50
    review = _decision(kind=InboxKind.REPORT_REVIEW)
    assert run_name(review).startswith("待审核：第4项")
    assert run_tags(review)[1] == "inbox:report_review"


def test_description_shows_facts_text_figures_against_targets_attachments_and_the_question() -> (
    None
):
    decision = _decision(
        facts=(("申请延期至", "2021-10-15"), ("申请理由", "场地 | 改造")),
        texts=(("工作进展", "已举办120场次。"), ("存在问题", "")),
        figures=(
            Figure("举办学术活动不少于200场次", 120.0, 200.0, "场次"),
            Figure("5家以上", None, 5, "家"),
        ),
        attachments=("活动清单.xlsx", "照片.jpg"),
    )
    text = description(decision, now=NOW)
    assert text.startswith("### 待审批延期：第4项 搭建高水平科技开放交流平台")
    assert "部门：学会部" in text and "`extension:7`" in text
    assert "- **申请延期至**：2021-10-15" in text
    assert "场地 ｜ 改造" in text  # a pipe cannot break the Markdown
    assert "已举办120场次。" in text and "（未填写）" in text
    assert "| 举办学术活动不少于200场次 | 120场次 | 200场次 |" in text
    assert "| 5家以上 | —家 | 5家 |" in text
    assert "附件：活动清单.xlsx、照片.jpg" in text
    assert "是否批准延期？" in text


def test_pause_keys_are_what_prefect_accepts_and_stable() -> None:
    keys = {pause_key(kind, 12) for kind in InboxKind}
    assert keys == {"extension-12", "report-review-12", "completion-12"}
    assert all(re.fullmatch(LOWERCASE_LETTERS_NUMBERS_AND_DASHES_ONLY_REGEX, key) for key in keys)


def test_answer_yes_needs_nothing_no_needs_a_reason() -> None:
    yes = read_answer(InboxKind.EXTENSION, 7, choice="批准", reason=" ", by="")
    assert (yes.approve, yes.reason, yes.decided_by) == (True, "", "督查室")
    no = read_answer(InboxKind.EXTENSION, 7, choice="驳回", reason=" 理由不充分 ", by="王芳")
    assert (no.approve, no.reason, no.decided_by) == (False, "理由不充分", "王芳")
    with pytest.raises(InputError, match="选择“驳回”时必须填写理由"):
        read_answer(InboxKind.EXTENSION, 7, choice="驳回", reason="  ", by="")
    with pytest.raises(InputError, match="只能是“批准”或“驳回”"):
        read_answer(InboxKind.EXTENSION, 7, choice="通过", reason="", by="")
    returned = read_answer(
        InboxKind.REPORT_REVIEW, 9, choice=InboxChoice.RETURN, reason="太简略", by=""
    )
    assert not returned.approve


def test_the_extension_form_schema_makes_the_server_refuse_a_refusal_without_reason() -> None:
    schema = FORMS[InboxKind.EXTENSION].model_json_schema()
    assert schema["properties"]["decision"]["enum"] == ["批准", "驳回"]
    assert schema["title"] == "延期审批"
    assert schema["if"] == reason_rule(InboxKind.EXTENSION)["if"]

    def valid(answer: dict[str, str]) -> bool:
        return not validate(answer, schema)

    assert valid({"decision": "批准"})
    assert valid({"decision": "驳回", "reason": "理由不充分"})
    assert not valid({"decision": "驳回"})
    assert not valid({"decision": "驳回", "reason": "   "})
    assert not valid({"decision": "同意"})


def test_run_life_from_prefect_state_types() -> None:
    later, earlier = NOW + timedelta(days=1), NOW - timedelta(seconds=1)
    assert run_life("PAUSED", later, NOW) is RunLife.LIVE
    assert run_life("PAUSED", None, NOW) is RunLife.LIVE
    assert run_life("PAUSED", earlier, NOW) is RunLife.EXPIRED
    for live in ("SCHEDULED", "PENDING", "RUNNING"):
        assert run_life(live, earlier, NOW) is RunLife.LIVE
    for ended in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING", None):
        assert run_life(ended, None, NOW) is RunLife.ENDED


def test_reconcile_creates_for_missing_keeps_one_and_cancels_the_rest() -> None:
    pending = [_decision(1), _decision(2), _decision(3), _decision(4)]
    runs = [
        _run("a", "extension:1"),  # kept
        _run("b", "extension:2", RunLife.ENDED),  # failed or crashed: re-create
        _run("c", "extension:3", RunLife.EXPIRED),  # paused too long: cancel, re-create
        _run("d", "extension:4", minute=2),  # duplicate, younger
        _run("e", "extension:4", minute=1),  # kept (oldest)
        _run("f", "extension:9"),  # decided elsewhere
        _run("g", "extension:9", RunLife.ENDED),  # already over: left alone
    ]
    changes = reconcile_inbox(pending, runs)
    assert [decision.key for decision in changes.create] == ["extension:2", "extension:3"]
    assert sorted(changes.cancel) == [
        ("c", CANCEL_EXPIRED),
        ("d", CANCEL_DUPLICATE),
        ("f", CANCEL_DECIDED),
    ]


def test_reconcile_is_order_independent_and_a_fixed_point() -> None:
    pending = [_decision(index) for index in range(1, 6)]
    runs = [_run(f"r{index}", f"extension:{index % 7}", minute=index) for index in range(12)]
    expected = reconcile_inbox(pending, runs)
    for seed in range(5):
        shuffled = list(runs)
        random.Random(seed).shuffle(shuffled)
        again = reconcile_inbox(pending, shuffled)
        assert sorted(again.cancel) == sorted(expected.cancel)
        assert again.create == expected.create
    cancelled = {run_id for run_id, _ in expected.cancel}
    after = [run for run in runs if run.run_id not in cancelled] + [
        _run(f"new{decision.decision_id}", decision.key, minute=99) for decision in expected.create
    ]
    settled = reconcile_inbox(pending, after)
    assert settled.create == () and settled.cancel == ()
