"""Whether a plan's year is over: the guard before supervising a plan live.

A plan is for one calendar year (Asia/Shanghai). Supervising a past year's plan against the
real clock would send every check-in of that year as overdue at once, so `duban deploy` and
`duban serve` deploy it with its schedules paused and `duban start` refuses or asks, unless
the user insists; a rehearsal uses a simulated clock (`--as-of`, `duban simulate`).
"""

from __future__ import annotations

from datetime import date


def plan_year_over(plan_year: int, today: date) -> bool:
    """True if `today` (a local date) falls after 31 December of `plan_year`."""
    return today.year > plan_year


def plan_year_over_message(plan_id: int, plan_year: int, today: date) -> str:
    """The Chinese sentence that explains why a past year's plan is not supervised live and
    how to rehearse it; callers add what they do instead and how to insist."""
    return (
        f"计划 {plan_id} 是 {plan_year} 年的计划，该年度已结束（今天是 {today.isoformat()}）："
        "按真实时钟督办会把全年的报送一次性判为逾期并大量发送催办督办邮件。"
        f"演练请使用模拟时钟（duban simulate 或 --as-of {plan_year}-03-01）。"
    )
