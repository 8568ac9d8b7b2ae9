"""The scripted behaviour of the demo's simulated departments (pure: no I/O, time passed in).

Each department answers every check-in it is prompted for at a fixed offset in working days
from the due date; one never answers, one asks for an extension once, one reports an item as
blocked. The acceptance tests derive the expected closing numbers from the same script.

Figures against numeric targets (the second plan's, `duban.demo.plans`) follow each
department's `pace`: the share of the straight line to the year's end it keeps (1.0: exactly
on it). 学会部 runs ahead (1.5: 超进度), 普及部 on pace (1.05: 达进度, a little above the line so
a figure reported a day before the quarter's end still meets the line at the end), and 素质中心
behind (0.6: 欠进度); 素质中心 also reports four working days late, so its check-ins climb to
level 2 and a 督办单 is issued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from models.calendar import WorkCalendar


@dataclass(frozen=True)
class Behaviour:
    """How one department answers.

    `offset_workdays` is when it submits relative to the due date (negative: early; None:
    never). `extension_month` names the month whose first check-in it asks to extend by
    `extension_workdays` instead (asked `extension_lead_workdays` before the due date).
    `blocked_items` are item numbers it reports as blocked; `pace` scales the figures it
    reports against numeric targets (`reported_value`).
    """

    offset_workdays: int | None
    extension_month: int | None = None
    extension_workdays: int = 10
    extension_lead_workdays: int = 2
    blocked_items: frozenset[str] = frozenset()
    pace: float = 1.0


DEMO_SCRIPT: dict[str, Behaviour] = {
    "学会部": Behaviour(offset_workdays=-2, pace=1.5),
    "普及部": Behaviour(offset_workdays=-1, blocked_items=frozenset({"8"}), pace=1.05),
    "办公室": Behaviour(offset_workdays=0),
    "素质中心": Behaviour(offset_workdays=4, pace=0.6),
    "机关党支部": Behaviour(offset_workdays=-1, extension_month=9),
    "科协系统社会组织行业党委": Behaviour(offset_workdays=None),
}

SUPERVISOR = "督查室（演示）"


@dataclass(frozen=True)
class CheckinView:
    """What a simulated department knows about one of its check-ins."""

    checkin_id: int
    item_id: int
    department: str
    item_number: str
    due_date: date
    original_due_date: date
    submitted: bool
    extension_requested: bool
    kind: str = ""


@dataclass(frozen=True)
class Action:
    """What a department does today: `submit` (with a status) or `extend` (to `new_date`)."""

    kind: str
    checkin_id: int
    status: str = "on_track"
    new_date: date | None = None


def decide_action(
    view: CheckinView, *, today: date, calendar: WorkCalendar, script: dict[str, Behaviour]
) -> Action | None:
    """The department's action on `view` today, or None (nothing to do yet, or never)."""
    behaviour = script.get(view.department)
    if behaviour is None or view.submitted or behaviour.offset_workdays is None:
        return None
    wants_extension = (
        behaviour.extension_month is not None
        and view.original_due_date.month == behaviour.extension_month
        and view.due_date == view.original_due_date
    )
    if wants_extension and not view.extension_requested:
        ask_on = calendar.add_workdays(view.due_date, -behaviour.extension_lead_workdays)
        if today >= ask_on:
            new_date = calendar.add_workdays(view.due_date, behaviour.extension_workdays)
            return Action(kind="extend", checkin_id=view.checkin_id, new_date=new_date)
        return None
    if wants_extension:
        return None
    submit_on = calendar.add_workdays(view.due_date, behaviour.offset_workdays)
    if today < submit_on:
        return None
    status = "blocked" if view.item_number in behaviour.blocked_items else "on_track"
    return Action(kind="submit", checkin_id=view.checkin_id, status=status)


def reported_value(target_value: float, *, share: float, pace: float) -> float:
    """The cumulative number a department reports: its pace times the straight line's value
    (`share` of the target, 0..1), rounded up to one decimal (a rounded-down figure could
    fall just below the line)."""
    exact = target_value * min(1.0, max(0.0, share)) * pace
    return math.ceil(round(exact * 10, 6)) / 10
