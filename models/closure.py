"""Completion (申请办结) and closure (销号) as pure rules: who may do what, in which state.

The lead department of an item may request its completion with a closing summary while
the item is open and no other request is pending. The office approves a pending request
(销号: the item is closed) or rejects it with a reason (驳回: the item carries on); it may
close an open item directly with a reason, and reopen a closed one with a reason. Closing
cancels every pending check-in of the item (the ladder stops: no request, reminder or
escalation is due on a cancelled check-in); reopening restores the ones the closure
cancelled that are still ahead, and the schedule adds what is missing from then on.

Every check raises `InputError` with the Chinese message a department or supervisor
reads, before anything is written; the callers (`tasks.closure`) apply the result.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from models.errors import InputError
from models.vocabulary import CheckinStatus, CompletionDecision

__all__ = [
    "MAX_REASON_CHARS",
    "MAX_SUMMARY_CHARS",
    "ItemClosureFacts",
    "check_close",
    "check_decision",
    "check_reopen",
    "check_request",
    "checkins_to_cancel",
    "checkins_to_restore",
    "closed_as_of",
    "closed_label",
]

MAX_SUMMARY_CHARS = 4000
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class ItemClosureFacts:
    """What the rules need to know of an item: its label, whether it is closed (and since
    when), its open lead departments and its pending completion request, if any."""

    label: str
    closed_on: date | None
    lead_department_ids: frozenset[int]
    pending_request_id: int | None

    @property
    def closed(self) -> bool:
        """True while the item is closed (已办结)."""
        return self.closed_on is not None


def closed_label(closed_on: date | None) -> str:
    """`已办结（2026-11-20）` for a closed item, "" for an open one (tables and cards)."""
    return f"已办结（{closed_on.isoformat()}）" if closed_on is not None else ""


def _required_text(value: str, *, what: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InputError(f"请填写{what}。")
    if len(text) > limit:
        raise InputError(f"{what}不能超过{limit}字（现为{len(text)}字），请精简后再提交。")
    return text


def _closed_message(facts: ItemClosureFacts) -> str:
    day = facts.closed_on.isoformat() if facts.closed_on else ""
    return (
        f"{facts.label}已于 {day} 办结（销号），无需再申请办结；"
        "如需继续督办，请联系督查室重新打开。"
    )


def check_request(facts: ItemClosureFacts, *, department_id: int, summary: str) -> str:
    """The cleaned closing summary of a completion request by `department_id`.

    Refuses a department that does not lead the item, a closed item, an item with a request
    already pending, and a missing or over-long summary (`MAX_SUMMARY_CHARS`).
    """
    if department_id not in facts.lead_department_ids:
        raise InputError(f"只有{facts.label}的牵头部门可以申请办结。")
    if facts.closed:
        raise InputError(_closed_message(facts))
    if facts.pending_request_id is not None:
        raise InputError(
            f"{facts.label}已有一份办结申请（编号 {facts.pending_request_id}）待督查室审核，"
            "请等待审核结果，不要重复申请。"
        )
    return _required_text(summary, what="办结情况说明", limit=MAX_SUMMARY_CHARS)


def check_decision(
    facts: ItemClosureFacts,
    *,
    request_id: int,
    decision: CompletionDecision,
    approve: bool,
    reason: str,
) -> str:
    """The cleaned reason of approving (`approve`) or rejecting request `request_id`.

    The request must still be pending and the item open; a rejection needs a reason, an
    approval's note is optional. Returns the cleaned reason ("" when none was given).
    """
    if decision != CompletionDecision.PENDING:
        raise InputError(f"办结申请 {request_id} 已处理（{decision.label}），不能再次审核。")
    if facts.closed:
        raise InputError(f"{facts.label}已办结，办结申请 {request_id} 无需再审核。")
    if approve:
        return _optional_text(reason, what="销号说明")
    return _required_text(reason, what="驳回理由（--reason）", limit=MAX_REASON_CHARS)


def _optional_text(value: str, *, what: str) -> str:
    text = value.strip()
    if len(text) > MAX_REASON_CHARS:
        raise InputError(f"{what}不能超过{MAX_REASON_CHARS}字（现为{len(text)}字）。")
    return text


def check_close(facts: ItemClosureFacts, *, reason: str) -> str:
    """The cleaned reason of the office closing an open item directly (reason required)."""
    if facts.closed:
        day = facts.closed_on.isoformat() if facts.closed_on else ""
        raise InputError(f"{facts.label}已于 {day} 办结，无需再次销号。")
    return _required_text(reason, what="销号理由（--reason）", limit=MAX_REASON_CHARS)


def check_reopen(facts: ItemClosureFacts, *, reason: str) -> str:
    """The cleaned reason of reopening a closed item (reason required)."""
    if not facts.closed:
        raise InputError(f"{facts.label}尚未办结，无需重新打开。")
    return _required_text(reason, what="重新打开的理由（--reason）", limit=MAX_REASON_CHARS)


def checkins_to_cancel(checkins: Iterable[tuple[int, str]]) -> list[int]:
    """Ids of the `(id, status)` check-ins a closure cancels: every pending one, sorted."""
    return sorted(cid for cid, status in checkins if status == CheckinStatus.PENDING)


def checkins_to_restore(
    checkins: Iterable[tuple[int, str, date]], *, cancelled: Collection[int], today: date
) -> list[int]:
    """Ids of the `(id, status, due date)` check-ins a reopen makes pending again: those the
    closure cancelled (`cancelled`), still cancelled, and due on or after `today`."""
    wanted = set(cancelled)
    return sorted(
        cid
        for cid, status, due in checkins
        if cid in wanted and status == CheckinStatus.CANCELLED and due >= today
    )


def closed_as_of(
    closures: Iterable[tuple[int, datetime, datetime | None]], as_of: datetime
) -> dict[int, datetime]:
    """Item id -> closing moment of the items closed at `as_of`, from their closures'
    `(item id, closed at, reopened at)`: closed by then and not reopened by then."""
    found: dict[int, datetime] = {}
    for item_id, closed_at, reopened_at in closures:
        if closed_at <= as_of and (reopened_at is None or reopened_at > as_of):
            found[item_id] = max(closed_at, found.get(item_id, closed_at))
    return found
