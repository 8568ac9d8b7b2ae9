"""An item against 序时进度 (pace) on a date: 已完成, 超进度, 达进度, 欠进度 or 其他.

The 总体情况 of a real 通报 counts tasks in these five (see
`../shared/reference/tongbao-and-kaohe.md`); the 考核 score deducts for 欠进度. Pure: the
caller passes the item's facts as plain values. Rules, stated once, first match wins:

1. **已完成** — the lead's latest report says 已完成, or every numeric target is met.
2. Items with numeric targets and a reported figure: each target's reported value against
   its expected value on `as_of` (the target × the share of days elapsed from `start` to the
   item's own deadline, else to the year end: `models.attainment.expected_value`). Any target
   below its expected value → **欠进度**; every target at or above `ahead_ratio` (1.1) × its
   expected value → **超进度**; else **达进度**. A cap (`le`/`lt`) is on pace while within it.
3. A milestone (时序进度) or a check-in due by `as_of` that was not reported, or a latest
   report saying 受阻 → **欠进度**.
4. Something reported and nothing missed → **达进度**.
5. Nothing due yet and nothing reported → **其他** (not yet measurable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from models.attainment import expected_value, target_met
from models.vocabulary import ItemProgress, SelfStatusValue

AHEAD_RATIO = 1.1


@dataclass(frozen=True, slots=True)
class TargetFigure:
    """One numeric target of the item and the highest value reported for it (None: none)."""

    comparator: str
    target: float
    reported: float | None


@dataclass(frozen=True, slots=True)
class ItemPaceFacts:
    """What the rule reads of one item on `as_of`."""

    targets: Sequence[TargetFigure] = ()
    latest_status: str | None = None
    missed: int = 0  # check-ins (milestones included) due by as_of and not reported
    reported: bool = False  # any report at or before as_of


@dataclass(frozen=True, slots=True)
class PaceVerdict:
    """The item's class and, for numeric targets, the lowest reported / expected ratio."""

    progress: ItemProgress
    ratio: float | None = None


def _ratio(figure: TargetFigure, *, start: date, end: date, as_of: date) -> float | None:
    """Reported / expected for one target (None when nothing was reported)."""
    if figure.reported is None:
        return None
    if figure.comparator in ("le", "lt"):
        return 1.0 if target_met(figure.reported, figure.comparator, figure.target) else 0.0
    expected = expected_value(figure.target, start=start, end=end, as_of=as_of)
    if expected <= 0:
        return float("inf") if figure.reported > 0 else 1.0
    return figure.reported / expected


def item_pace(
    facts: ItemPaceFacts,
    *,
    start: date,
    end: date,
    as_of: date,
    ahead_ratio: float = AHEAD_RATIO,
) -> PaceVerdict:
    """The item's 序时进度 class on `as_of` (module rules); `end` is its deadline or year end."""
    figures = [f for f in facts.targets if f.reported is not None]
    done = facts.latest_status == SelfStatusValue.DONE
    if done or (
        facts.targets
        and len(figures) == len(facts.targets)
        and all(target_met(f.reported or 0.0, f.comparator, f.target) for f in figures)
    ):
        return PaceVerdict(ItemProgress.DONE, None)
    if figures:
        ratios = [
            r for f in figures if (r := _ratio(f, start=start, end=end, as_of=as_of)) is not None
        ]
        lowest = min(ratios)
        if lowest < 1.0:
            return PaceVerdict(ItemProgress.BEHIND, lowest)
        if lowest >= ahead_ratio:
            return PaceVerdict(ItemProgress.AHEAD, lowest)
        return PaceVerdict(ItemProgress.ON_PACE, lowest)
    if facts.missed or facts.latest_status == SelfStatusValue.BLOCKED:
        return PaceVerdict(ItemProgress.BEHIND, None)
    if facts.reported:
        return PaceVerdict(ItemProgress.ON_PACE, None)
    return PaceVerdict(ItemProgress.OTHER, None)


def tally(verdicts: Mapping[int, PaceVerdict]) -> dict[ItemProgress, int]:
    """How many items are in each class, every class present (in vocabulary order)."""
    counts = dict.fromkeys(ItemProgress, 0)
    for verdict in verdicts.values():
        counts[verdict.progress] += 1
    return counts
