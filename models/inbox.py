"""The supervisors' inbox, decided in pure code (no session, no Prefect).

Every decision that waits for a supervisor (an extension request, a report to review, a
completion request) is a row in the database; a Prefect flow run waiting for input is only
its view (DESIGN principle 8). This module says what such a run is called, how it is
tagged, what its form shows and asks, whether an answer is complete, and which runs the
inbox sync must create or cancel so that every pending decision has exactly one live
waiting run and no decided one keeps one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from models.errors import InputError
from models.formats import cn_number
from models.vocabulary import InboxChoice, InboxKind

INBOX_TAG = "duban-inbox"
"""The one tag every inbox run carries: filtering the Prefect UI on it shows the whole inbox."""

WAIT_SECONDS = 14 * 24 * 3600
"""How long a waiting run stays open before Prefect fails it (the sync then re-creates it)."""

NAME_TITLE_MAX = 30
REASON_MAX = 1000
DEFAULT_DECIDER = "督查室"


@dataclass(frozen=True)
class KindSpec:
    """How one kind of decision reads in the inbox: its run-name prefix, the question its form
    asks, the two answers (`yes` applies the request, `no` refuses it and needs a reason) and
    the form's titles and help texts."""

    prefix: str
    question: str
    yes: InboxChoice
    no: InboxChoice
    form_title: str
    decision_title: str
    decision_help: str
    reason_help: str
    decider_title: str


SPECS: dict[InboxKind, KindSpec] = {
    InboxKind.EXTENSION: KindSpec(
        prefix="待审批延期",
        question="是否批准延期？批准则截止日期顺延、催办重新计时；驳回须填写理由，截止日期不变。",
        yes=InboxChoice.APPROVE,
        no=InboxChoice.REJECT,
        form_title="延期审批",
        decision_title="审批意见",
        decision_help="批准：截止日期顺延；驳回：截止日期不变（须填写理由）。",
        reason_help="驳回时必填，会发给申请部门。",
        decider_title="审批人",
    ),
    InboxKind.REPORT_REVIEW: KindSpec(
        prefix="待审核",
        question="是否通过该报送？通过则本次报送办结；退回须填写理由，部门须重新报送。",
        yes=InboxChoice.ACCEPT,
        no=InboxChoice.RETURN,
        form_title="报送审核",
        decision_title="审核意见",
        decision_help="通过：本次报送办结；退回：部门按理由修改后重新报送（须填写理由）。",
        reason_help="退回时必填，会发给报送部门。",
        decider_title="审核人",
    ),
    InboxKind.COMPLETION: KindSpec(
        prefix="待销号",
        question="是否批准办结（销号）？批准则任务办结、后续报送取消；驳回须填写理由，任务继续。",
        yes=InboxChoice.APPROVE,
        no=InboxChoice.REJECT,
        form_title="办结审批",
        decision_title="审批意见",
        decision_help="批准：任务办结（销号）；驳回：任务继续（须填写理由）。",
        reason_help="驳回时必填，会发给牵头部门。",
        decider_title="审批人",
    ),
}


@dataclass(frozen=True)
class Figure:
    """A reported number against its target: `举办学术活动不少于200场次：已完成120场次`."""

    target: str
    reported: float | None
    goal: float | None
    unit: str = ""


@dataclass(frozen=True)
class PendingDecision:
    """One decision waiting for a supervisor, as the inbox shows it.

    `decision_id` is the id of the row that holds the decision (an extension request, a
    submission under review, a completion request); `(kind, decision_id)` is its key. The
    listing used by the sync fills the header fields; the waiting run loads `facts`, `texts`,
    `figures` and `attachments` for its form.
    """

    kind: InboxKind
    decision_id: int
    plan_id: int
    item_id: int
    item_label: str
    department: str
    requested_at: datetime
    facts: tuple[tuple[str, str], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()
    figures: tuple[Figure, ...] = ()
    attachments: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The decision's business key, `extension:12`."""
        return decision_key(self.kind, self.decision_id)


def decision_key(kind: InboxKind | str, decision_id: int) -> str:
    """`kind:id`: the business key of a decision."""
    return f"{InboxKind(kind).value}:{decision_id}"


def pause_key(kind: InboxKind | str, decision_id: int) -> str:
    """`extension-12`: the waiting run's pause key (Prefect allows only `[a-z0-9-]`), the same
    on every re-execution so a resumed run gets its saved answer back."""
    return f"{InboxKind(kind).value.replace('_', '-')}-{decision_id}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_name(decision: PendingDecision) -> str:
    """`待审批延期：第4项 搭建高水平科技开放交流平台—学会部` (a long title is shortened)."""
    spec = SPECS[decision.kind]
    label = _short(decision.item_label, NAME_TITLE_MAX + 4)
    return f"{spec.prefix}：{label}—{decision.department}"


def run_tags(decision: PendingDecision) -> list[str]:
    """The inbox tag, the kind (`inbox:extension`), plan, item and department tags."""
    return [
        INBOX_TAG,
        f"inbox:{decision.kind.value}",
        f"plan:{decision.plan_id}",
        f"item:{decision.item_id}",
        f"dept:{decision.department}",
    ]


def _number(value: float | None) -> str:
    return "—" if value is None else cn_number(value)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "｜").split())


def description(decision: PendingDecision, *, now: datetime) -> str:
    """The Markdown shown above the run's form: what is asked, the submission's content
    (facts, text, figures against targets, attachment names) and the question."""
    spec = SPECS[decision.kind]
    lines = [
        f"### {spec.prefix}：{decision.item_label}",
        f"部门：{decision.department}　类型：{decision.kind.label}　编号：`{decision.key}`",
        "",
    ]
    lines.extend(f"- **{label}**：{_cell(value)}" for label, value in decision.facts)
    for heading, text in decision.texts:
        lines.extend(["", f"**{heading}**", "", text.strip() or "（未填写）"])
    if decision.figures:
        lines.extend(["", "| 指标 | 报送完成数 | 目标 |", "|---|---|---|"])
        lines.extend(
            f"| {_cell(figure.target)} | {_number(figure.reported)}{figure.unit} "
            f"| {_number(figure.goal)}{figure.unit} |"
            for figure in decision.figures
        )
    if decision.attachments:
        lines.extend(["", "附件：" + "、".join(decision.attachments)])
    lines.extend(
        [
            "",
            f"**{spec.question}**",
            "",
            f"（生成于 {now:%Y-%m-%d %H:%M}。数据库中的记录为准：若已在命令行或批量处理，"
            "本表单提交后不会重复处理。）",
        ]
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Answer:
    """A supervisor's complete answer to one decision: `approve` is the `yes` choice."""

    kind: InboxKind
    decision_id: int
    approve: bool
    reason: str
    decided_by: str


def read_answer(kind: InboxKind, decision_id: int, *, choice: str, reason: str, by: str) -> Answer:
    """Check a form's answer against the kind's two choices; the `no` choice needs a reason.

    Raises `InputError` (Chinese) for an unknown choice or a refusal without a reason.
    """
    spec = SPECS[kind]
    if choice not in (spec.yes, spec.no):
        raise InputError(f"审批意见只能是“{spec.yes}”或“{spec.no}”，收到“{choice}”。")
    reason = reason.strip()
    if choice == spec.no and not reason:
        raise InputError(f"选择“{spec.no}”时必须填写理由。")
    if len(reason) > REASON_MAX:
        raise InputError(f"理由不能超过 {REASON_MAX} 字。")
    return Answer(
        kind=kind,
        decision_id=decision_id,
        approve=choice == spec.yes,
        reason=reason,
        decided_by=(by.strip() or DEFAULT_DECIDER)[:100],
    )


def reason_rule(kind: InboxKind) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) saying the form's `reason` is required with the `no` choice,
    so the Prefect server refuses such a resume before the run restarts."""
    return {
        "if": {"properties": {"decision": {"const": SPECS[kind].no.value}}},
        "then": {
            "required": ["reason"],
            "properties": {"reason": {"minLength": 1, "pattern": r"\S"}},
        },
    }


class RunLife(StrEnum):
    """Where a waiting run stands for the sync: live (it will ask, or is asking, or is applying),
    expired (paused past its timeout, not yet failed by the server) or ended."""

    LIVE = "live"
    EXPIRED = "expired"
    ENDED = "ended"


LIVE_STATE_TYPES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED"})


def run_life(state_type: str | None, pause_timeout: datetime | None, now: datetime) -> RunLife:
    """Classify a Prefect state type (`PAUSED`, `RUNNING`, …): a pause past `pause_timeout` is
    expired; the other non-final types are live; final ones and cancelling are ended."""
    if state_type not in LIVE_STATE_TYPES:
        return RunLife.ENDED
    if state_type == "PAUSED" and pause_timeout is not None and pause_timeout <= now:
        return RunLife.EXPIRED
    return RunLife.LIVE


@dataclass(frozen=True)
class WaitingRun:
    """An inbox run as the sync sees it: its id, the decision it is for, life and creation."""

    run_id: str
    key: str
    life: RunLife
    created: datetime


@dataclass(frozen=True)
class InboxChanges:
    """What the sync does: decisions to give a waiting run, and runs to cancel with why."""

    create: tuple[PendingDecision, ...] = ()
    cancel: tuple[tuple[str, str], ...] = ()


CANCEL_DECIDED = "该事项已在别处处理（命令行、批量或另一运行），本运行不再等待。"
CANCEL_DUPLICATE = "同一事项已有等待中的运行，本运行重复。"
CANCEL_EXPIRED = "等待已超时，已由督办同步重新创建。"


def reconcile_inbox(pending: Iterable[PendingDecision], runs: Sequence[WaitingRun]) -> InboxChanges:
    """Compare the decisions pending in the database with the inbox runs seen in Prefect.

    Each pending decision keeps its oldest live run and gets a new one when it has none (its
    run was deleted, failed, crashed or expired); an expired pause, a second live run of a
    decision and any live run of a decision no longer pending are cancelled. Pure; the
    result does not depend on the order of `runs`.
    """
    by_key = {decision.key: decision for decision in pending}
    live: dict[str, list[WaitingRun]] = {}
    cancel: list[tuple[str, str]] = []
    for run in sorted(runs, key=lambda run: (run.created, run.run_id)):
        if run.life is RunLife.EXPIRED:
            cancel.append((run.run_id, CANCEL_EXPIRED))
        elif run.life is RunLife.LIVE:
            live.setdefault(run.key, []).append(run)
    for key, waiting in live.items():
        if key not in by_key:
            cancel.extend((run.run_id, CANCEL_DECIDED) for run in waiting)
        else:
            cancel.extend((run.run_id, CANCEL_DUPLICATE) for run in waiting[1:])
    create = tuple(decision for key, decision in by_key.items() if key not in live)
    return InboxChanges(create=create, cancel=tuple(cancel))
