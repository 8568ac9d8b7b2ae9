"""An item's red / amber / green status (红黄绿灯) as a table of rules.

`RULES` is read top to bottom; every row whose condition holds contributes its colour and
its Chinese reason. The item takes the worst colour that any row gives (red > amber > green),
and green when no row holds:

| colour | condition                                                             |
|--------|-----------------------------------------------------------------------|
| red    | a check-in has reached escalation level >= `red_from_level` (2: 分管领导) |
| red    | a department reports `blocked` (受阻)                                  |
| red    | a target is `far_behind` the straight line (or a cap is broken)       |
| amber  | a check-in is overdue (not yet escalated that far)                    |
| amber  | a department reports `at_risk` (存在风险)                              |
| amber  | a target is `behind` the straight line                                |

Submissions that came late but came are history, not a current problem: they do not colour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from models.attainment import PaceStatus
from models.ladder import CheckinState

__all__ = [
    "RULES",
    "Colour",
    "ItemSignals",
    "RagVerdict",
    "SelfStatus",
    "assess_item",
    "item_colour",
]

Colour = Literal["green", "amber", "red"]
SelfStatus = Literal["on_track", "at_risk", "blocked", "done"]
RED_FROM_LEVEL = 2
_RANK: dict[Colour, int] = {"green": 0, "amber": 1, "red": 2}


@dataclass(frozen=True, slots=True)
class ItemSignals:
    """Everything the colour depends on, for one item on one day.

    `checkin_states`: current state of each of its check-ins (`models.ladder.checkin_state`);
    `escalation_level`: the highest level reached by any open check-in; `department_statuses`:
    each department's latest self-reported status; `pace`: each target's pace status.
    """

    checkin_states: tuple[CheckinState, ...] = ()
    escalation_level: int = 0
    department_statuses: tuple[SelfStatus, ...] = ()
    pace: tuple[PaceStatus, ...] = ()
    red_from_level: int = RED_FROM_LEVEL


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: when `holds`, the item is at least `colour`, because `reason`."""

    colour: Colour
    holds: Callable[[ItemSignals], bool]
    reason: str


RULES: tuple[Rule, ...] = (
    Rule("red", lambda s: s.escalation_level >= s.red_from_level, "逾期未报送，已升级督办"),
    Rule("red", lambda s: "blocked" in s.department_statuses, "部室报告工作受阻"),
    Rule("red", lambda s: "far_behind" in s.pace, "指标进度严重滞后"),
    Rule("amber", lambda s: "overdue" in s.checkin_states, "有报送逾期未交"),
    Rule("amber", lambda s: "at_risk" in s.department_statuses, "部室报告存在风险"),
    Rule("amber", lambda s: "behind" in s.pace, "指标进度落后于时间进度"),
)


@dataclass(frozen=True, slots=True)
class RagVerdict:
    """The colour and the Chinese reasons for it (`("按计划推进",)` when green)."""

    colour: Colour
    reasons: tuple[str, ...]


def assess_item(signals: ItemSignals) -> RagVerdict:
    """Apply `RULES` to `signals`: the worst matching colour and every matching reason."""
    matched = [rule for rule in RULES if rule.holds(signals)]
    if not matched:
        return RagVerdict("green", ("按计划推进",))
    colour = max((rule.colour for rule in matched), key=_RANK.__getitem__)
    return RagVerdict(colour, tuple(rule.reason for rule in matched))


def item_colour(signals: ItemSignals) -> Colour:
    """Just the colour of `assess_item(signals)`."""
    return assess_item(signals).colour
