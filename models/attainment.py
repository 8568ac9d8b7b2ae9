"""Target attainment (指标完成率) and pace against a straight line to the year end.

Rules, stated once:
- A target is *met* when the reported value satisfies its comparator: `ge` >=, `gt` >, `le`
  <=, `lt` <; `eq` (a count such as 完成3项) is met on reaching the value; `approx` (约200)
  on reaching 90 % of it.
- Attainment %: `le`/`lt` (a cap) 100 while within it, else target / reported; the others
  reported / target. None when nothing was reported or the ratio is undefined.
- Expected value on `as_of`: target x elapsed share of the inclusive days from `start` to
  `end` (e.g. 200 by Dec 31 is about 150 on Sep 30).
- Pace: `met`; else for a cap `on_pace` within it and `far_behind` once broken; else
  reported / expected >= 1 `on_pace`, >= `behind_ratio` (0.75) `behind`, below `far_behind`;
  `unknown` when nothing was reported. Once `end` has passed an unmet target is never
  `on_pace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = [
    "Attainment",
    "PaceStatus",
    "assess_target",
    "attainment_percent",
    "elapsed_share",
    "expected_value",
    "pace_status",
    "target_met",
]

PaceStatus = Literal["met", "on_pace", "behind", "far_behind", "unknown"]
COMPARATORS = frozenset({"ge", "gt", "le", "lt", "eq", "approx"})
APPROX_SHARE = 0.9
BEHIND_RATIO = 0.75


def _check(comparator: str) -> None:
    if comparator not in COMPARATORS:
        raise ValueError(f"unknown comparator {comparator!r}")


def target_met(reported: float, comparator: str, target: float) -> bool:
    """True if `reported` satisfies `comparator target` (see module rules)."""
    _check(comparator)
    if comparator == "gt":
        return reported > target
    if comparator == "le":
        return reported <= target
    if comparator == "lt":
        return reported < target
    if comparator == "approx":
        return reported >= APPROX_SHARE * target
    return reported >= target


def attainment_percent(reported: float | None, comparator: str, target: float) -> float | None:
    """Attainment in percent (uncapped); None if nothing reported or the ratio is undefined."""
    _check(comparator)
    if reported is None:
        return None
    if comparator in ("le", "lt"):
        if target_met(reported, comparator, target):
            return 100.0
        return 100.0 * target / reported if reported else None
    return 100.0 * reported / target if target else None


def elapsed_share(*, start: date, end: date, as_of: date) -> float:
    """Share (0..1) of the inclusive days `start`..`end` that have passed by `as_of`."""
    total = (end - start).days + 1
    if total <= 0:
        raise ValueError("end must not be before start")
    elapsed = (as_of - start).days + 1
    return min(max(elapsed / total, 0.0), 1.0)


def expected_value(target: float, *, start: date, end: date | None = None, as_of: date) -> float:
    """The straight-line value expected on `as_of` (`end` defaults to Dec 31 of start's year)."""
    end = end or date(start.year, 12, 31)
    return target * elapsed_share(start=start, end=end, as_of=as_of)


def pace_status(
    reported: float | None,
    comparator: str,
    target: float,
    *,
    start: date,
    as_of: date,
    end: date | None = None,
    behind_ratio: float = BEHIND_RATIO,
) -> PaceStatus:
    """How a target is doing on `as_of` against a straight line from `start` to `end`."""
    _check(comparator)
    if reported is None:
        return "unknown"
    met = target_met(reported, comparator, target)
    if comparator in ("le", "lt"):
        return "on_pace" if met else "far_behind"
    if met:
        return "met"
    end = end or date(start.year, 12, 31)
    share = elapsed_share(start=start, end=end, as_of=as_of)
    expected = target * share
    if share < 1 and (expected <= 0 or reported >= expected):
        return "on_pace"
    ratio = reported / expected if expected > 0 else 0.0
    return "behind" if ratio >= behind_ratio else "far_behind"


@dataclass(frozen=True, slots=True)
class Attainment:
    """One target's figures on a date: percent (None if unknown), expected value and pace."""

    reported: float | None
    target: float
    comparator: str
    percent: float | None
    expected: float
    pace: PaceStatus


def assess_target(
    reported: float | None,
    comparator: str,
    target: float,
    *,
    start: date,
    as_of: date,
    end: date | None = None,
) -> Attainment:
    """All of a target's figures at once (see the module rules)."""
    return Attainment(
        reported=reported,
        target=target,
        comparator=comparator,
        percent=attainment_percent(reported, comparator, target),
        expected=expected_value(target, start=start, end=end, as_of=as_of),
        pace=pace_status(reported, comparator, target, start=start, as_of=as_of, end=end),
    )
