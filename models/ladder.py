"""The reconcile decision for one check-in: which prompts, reminders and escalations are due.

Timeline of a check-in due on day D (working days, `WorkCalendar`):

- `request` (报送提醒) from D - `request_lead_workdays` until the day before D;
- `reminder` (到期提醒) from D until the first escalation level is due, if nothing arrived;
- `escalation` level k (催办/督办) from D + `delay_workdays` of level k, while not submitted.

A submission recorded on or before `today` stops everything. Each notice has a business key
that includes the ladder epoch (approved extensions so far), so after an extension moves D the
ladder restarts under new keys. Catch-up rule: when the flow has not run for days, every
escalation level that is due and not yet recorded is returned at once (lowest first), with a
reason saying it is a late catch-up; each level has its own recipients, so none is skipped.
A request is not sent once D has come (the reminder covers it), and a reminder is not sent
once level 1 is due (the escalation covers it).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

from models.calendar import WorkCalendar
from models.policy import EscalationLevel, SupervisionPolicy

__all__ = [
    "CheckinFacts",
    "CheckinState",
    "NoticeDecision",
    "NoticeKind",
    "ScheduledNotice",
    "checkin_state",
    "decide_notices",
    "escalation_level_due",
    "is_overdue",
    "ladder_schedule",
    "next_notice_date",
    "notice_key",
]

CheckinState = Literal[
    "upcoming", "awaiting", "due_today", "overdue", "submitted", "submitted_late"
]
NoticeKind = Literal["request", "reminder", "escalation"]

ROLE_NAMES = {
    "contact": "部室联系人",
    "leader": "分管领导",
    "head": "主要负责人",
    "office": "督查室",
}


@dataclass(frozen=True, slots=True)
class CheckinFacts:
    """What the ladder needs to know about one check-in.

    `due_date` is the current one (already moved by approved extensions); `ladder_epoch`
    counts approved extensions; `submitted_on` is the local date of the first submission.
    """

    checkin_id: int
    due_date: date
    submitted_on: date | None = None
    ladder_epoch: int = 0


@dataclass(frozen=True, slots=True)
class ScheduledNotice:
    """One rung of a check-in's timeline: may fire on days in [`on`, `until`) (`until` None:
    open-ended while unsubmitted)."""

    kind: NoticeKind
    level: int
    on: date
    until: date | None
    recipient_roles: tuple[str, ...]
    delay_workdays: int = 0


@dataclass(frozen=True, slots=True)
class NoticeDecision:
    """A notice that is due now and not yet recorded; `reason` is Chinese, for the record."""

    key: str
    kind: NoticeKind
    level: int
    recipient_roles: tuple[str, ...]
    reason: str
    due_on: date


def notice_key(checkin_id: int, kind: NoticeKind, *, level: int = 0, epoch: int = 0) -> str:
    """The business key: `checkin:{id}:request:e{epoch}`, `checkin:{id}:reminder:e{epoch}`,
    `checkin:{id}:escalation:{level}:e{epoch}`."""
    if kind == "escalation":
        return f"checkin:{checkin_id}:escalation:{level}:e{epoch}"
    return f"checkin:{checkin_id}:{kind}:e{epoch}"


def ladder_schedule(
    due_date: date, policy: SupervisionPolicy, calendar: WorkCalendar
) -> list[ScheduledNotice]:
    """The full timeline of a check-in due on `due_date`, in date order (see module doc).

    `request_lead_workdays == 0` means no request; `reminder_on_due_date` false, no reminder.
    Results are memoised per (calendar, due date, ladder settings).
    """
    return list(
        _timeline(
            calendar,
            due_date,
            policy.request_lead_workdays,
            policy.reminder_on_due_date,
            policy.escalation,
        )
    )


@lru_cache(maxsize=4096)
def _timeline(
    calendar: WorkCalendar,
    due_date: date,
    request_lead_workdays: int,
    reminder_on_due_date: bool,
    ladder: tuple[EscalationLevel, ...],
) -> tuple[ScheduledNotice, ...]:
    timeline: list[ScheduledNotice] = []
    if request_lead_workdays > 0:
        request_on = calendar.add_workdays(due_date, -request_lead_workdays)
        timeline.append(ScheduledNotice("request", 0, request_on, due_date, ("contact",)))
    escalations = [
        ScheduledNotice(
            "escalation",
            rung.level,
            calendar.add_workdays(due_date, rung.delay_workdays),
            None,
            tuple(rung.recipients),
            rung.delay_workdays,
        )
        for rung in ladder
    ]
    if reminder_on_due_date:
        until = escalations[0].on if escalations else calendar.add_workdays(due_date, 1)
        timeline.append(ScheduledNotice("reminder", 0, due_date, until, ("contact",)))
    return (*timeline, *escalations)


def is_overdue(due_date: date, today: date, *, answered: bool) -> bool:
    """The one definition of overdue: not answered and due before `today` (due today is
    not overdue yet)."""
    return not answered and due_date < today


def _submitted_by(facts: CheckinFacts, today: date) -> bool:
    return facts.submitted_on is not None and facts.submitted_on <= today


def decide_notices(
    facts: CheckinFacts,
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
    *,
    today: date,
    done_keys: Collection[str],
) -> list[NoticeDecision]:
    """Notices due on `today` whose keys are not in `done_keys`, in timeline order.

    Pure: the caller records each returned decision (unique key) and sends its email.
    Empty once the check-in is submitted (on or before `today`).
    """
    if _submitted_by(facts, today):
        return []
    decisions: list[NoticeDecision] = []
    for step in ladder_schedule(facts.due_date, policy, calendar):
        if today < step.on or (step.until is not None and today >= step.until):
            continue
        key = notice_key(facts.checkin_id, step.kind, level=step.level, epoch=facts.ladder_epoch)
        if key in done_keys:
            continue
        decisions.append(
            NoticeDecision(
                key=key,
                kind=step.kind,
                level=step.level,
                recipient_roles=step.recipient_roles,
                reason=_reason(step, facts.due_date, policy, today),
                due_on=step.on,
            )
        )
    return decisions


def _reason(step: ScheduledNotice, due: date, policy: SupervisionPolicy, today: date) -> str:
    if step.kind == "request":
        return f"报送截止日为{due}，提前{policy.request_lead_workdays}个工作日发送报送提醒"
    if step.kind == "reminder":
        return f"报送截止日{due}已到，尚未报送"
    roles = "、".join(ROLE_NAMES.get(role, role) for role in step.recipient_roles)
    text = (
        f"截止日{due}后{step.delay_workdays}个工作日仍未报送，启动第{step.level}级督办，通知{roles}"
    )
    if today > step.on:
        text += f"（应于{step.on}发出，补发）"
    return text


def escalation_level_due(
    facts: CheckinFacts, policy: SupervisionPolicy, calendar: WorkCalendar, *, today: date
) -> int:
    """The highest escalation level due on `today` (0 if none or submitted)."""
    if _submitted_by(facts, today):
        return 0
    level = 0
    for rung in policy.escalation:
        if today >= calendar.add_workdays(facts.due_date, rung.delay_workdays):
            level = rung.level
    return level


def next_notice_date(
    facts: CheckinFacts, policy: SupervisionPolicy, calendar: WorkCalendar, *, today: date
) -> date | None:
    """The first date after `today` on which a new notice becomes due; None if none will."""
    if _submitted_by(facts, today):
        return None
    upcoming = [s.on for s in ladder_schedule(facts.due_date, policy, calendar) if s.on > today]
    return min(upcoming, default=None)


def checkin_state(
    facts: CheckinFacts, policy: SupervisionPolicy, calendar: WorkCalendar, *, today: date
) -> CheckinState:
    """`submitted` / `submitted_late` (first submission after the due date) once submitted by
    `today`; otherwise `upcoming` before the request date, `awaiting` until the due date,
    `due_today` on it and `overdue` after it."""
    if facts.submitted_on is not None and facts.submitted_on <= today:
        return "submitted" if facts.submitted_on <= facts.due_date else "submitted_late"
    if is_overdue(facts.due_date, today, answered=False):
        return "overdue"
    if today == facts.due_date:
        return "due_today"
    request_on = calendar.add_workdays(facts.due_date, -policy.request_lead_workdays)
    return "awaiting" if today >= request_on else "upcoming"
