"""The catch-up cap: what one pass sends a person when many escalations are late at once.

A plan set live after a gap (or a past year's plan) has every missed escalation due on the
first pass, each a late catch-up (补发). Each recipient (by address) gets at most
`SupervisionPolicy.catch_up_limit` of them one by one per pass chunk, in the pass's order
(item, due date, level); every further one is still recorded (its business key, so it is
never sent later and a re-run sends nothing), with that recipient marked `held` in its
`recipients`, and listed in ONE summary email to the recipient (`CatchUpSummary`, key
`catchup:{plan}:{date}:{recipient}:{first item}`). Escalations due today are never held:
the cap is for catch-up, not for the ladder's normal course. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.daily_pass import NoticeAction

__all__ = ["HELD", "CatchUpSummary", "HeldNotice", "cap_catch_up", "summary_key"]

HELD = "held"
"""The key a recipient entry carries (value `"1"`) when the cap held the notice back."""


@dataclass(frozen=True, slots=True)
class HeldNotice:
    """One escalation a summary lists: the item's name, department, level and reason."""

    key: str
    item_id: int
    label: str
    level: int
    reason: str


@dataclass
class CatchUpSummary:
    """One recipient's summary of the catch-up escalations the cap held back this pass."""

    key: str
    plan_id: int
    recipient: dict[str, str]
    sent: int
    held: list[HeldNotice] = field(default_factory=list)


def summary_key(plan_id: int, today: date, email: str, first_item_id: int) -> str:
    """The business key of a summary (one per plan, day, recipient and chunk)."""
    digest = hashlib.sha256(email.encode()).hexdigest()[:16]
    return f"catchup:{plan_id}:{today.isoformat()}:{digest}:{first_item_id}"


def cap_catch_up(
    notices: Sequence[NoticeAction],
    *,
    late: Collection[str],
    limit: int | None,
    plan_id: int,
    today: date,
    first_item_id: int,
    labels: Mapping[int, str],
) -> tuple[list[NoticeAction], list[CatchUpSummary]]:
    """Apply the cap to `notices` (in the pass's order), whose keys in `late` are catch-up
    escalations.

    Returns the notices in order, each held recipient carrying `held: "1"`, and one summary
    per recipient with something held. `limit` None returns `notices` unchanged.
    """
    if limit is None or not late:
        return list(notices), []
    counts: dict[str, int] = {}
    summaries: dict[str, CatchUpSummary] = {}
    capped: list[NoticeAction] = []
    for notice in notices:
        if notice.key not in late:
            capped.append(notice)
            continue
        entries: list[dict[str, str]] = []
        for entry in notice.recipients:
            email = entry.get("email", "")
            if not email or counts.get(email, 0) < limit:
                counts[email] = counts.get(email, 0) + 1
                entries.append(entry)
                continue
            entries.append({**entry, HELD: "1"})
            if email not in summaries:
                summaries[email] = CatchUpSummary(
                    key=summary_key(plan_id, today, email, first_item_id),
                    plan_id=plan_id,
                    recipient=dict(entry),
                    sent=limit,
                )
            summaries[email].held.append(
                HeldNotice(
                    key=notice.key,
                    item_id=notice.item_id,
                    label=labels.get(notice.item_id, ""),
                    level=notice.level,
                    reason=notice.reason,
                )
            )
        capped.append(
            replace(notice, recipients=entries) if entries != notice.recipients else notice
        )
    return capped, list(summaries.values())
