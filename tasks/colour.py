"""Gathering what an item's colour depends on: self-reported status and target pace.

One query for the latest submissions and one for the targets of a batch of items; the
colour itself is the pure table `models.rag`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.attainment import PaceStatus, pace_status
from models.clock import local_date
from models.plan import Item, Target
from models.rag import SelfStatus
from models.supervision import Checkin, Submission
from tasks.events import record_event, related

SELF_STATUSES = frozenset({"on_track", "at_risk", "blocked", "done"})


@dataclass
class ReportedSignals:
    """Departments' latest self-reported statuses and each target's pace, for one item."""

    department_statuses: list[SelfStatus] = field(default_factory=list)
    pace: list[PaceStatus] = field(default_factory=list)


def reported_signals(
    *, session: Session, item_ids: Sequence[int], as_of: datetime, start: date, end: date
) -> dict[int, ReportedSignals]:
    """Per item: the latest status of each department, and each target's pace at `as_of`.

    Only submissions made by `as_of` count; the newest (highest id) per department wins. A
    target's reported value is the highest of the departments' latest reported values
    (departments that share a target report the item's running total; the highest cannot
    double count). Pace runs on a straight line from `start` to `end`.
    """
    newest = (
        select(func.max(Submission.id))
        .join(Checkin, Checkin.id == Submission.checkin_id)
        .where(Checkin.item_id.in_(list(item_ids)), Submission.submitted_at <= as_of)
        .group_by(Checkin.item_id, Checkin.department_id)
    )
    latest: dict[tuple[int, int], Submission] = {}
    rows = session.execute(
        select(Checkin.item_id, Checkin.department_id, Submission)
        .join(Submission, Submission.checkin_id == Checkin.id)
        .where(Submission.id.in_(newest.scalar_subquery()))
    ).all()
    for item_id, department_id, submission in rows:
        latest[(item_id, department_id)] = submission
    signals: defaultdict[int, ReportedSignals] = defaultdict(ReportedSignals)
    values: defaultdict[int, dict[str, float]] = defaultdict(dict)
    for (item_id, _), submission in latest.items():
        if submission.status in SELF_STATUSES:
            signals[item_id].department_statuses.append(cast(SelfStatus, submission.status))
        for target_id, value in submission.values.items():
            if isinstance(value, int | float):
                known = values[item_id].get(str(target_id))
                values[item_id][str(target_id)] = max(float(value), known or float(value))
    today = local_date(as_of)
    for target in session.scalars(select(Target).where(Target.item_id.in_(list(item_ids)))):
        reported = values[target.item_id].get(str(target.id))
        if reported is None:
            continue
        signals[target.item_id].pace.append(
            pace_status(
                reported, target.comparator, target.value, start=start, as_of=today, end=end
            )
        )
    return dict(signals)


def update_item_colour(
    *, session: Session, item: Item, colour: str, state: str, now: datetime
) -> None:
    """Set the item's colour with a guarded UPDATE; only the writer that changed it records
    `duban.item.status_changed` (a concurrent run that lost the race records nothing)."""
    if colour == item.colour:
        return
    changed = session.execute(
        update(Item)
        .where(Item.id == item.id, Item.colour == item.colour)
        .values(colour=colour)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return
    record_event(
        session=session,
        event_type="duban.item.status_changed",
        resource_id=f"duban.item.{item.id}",
        occurred_at=now,
        now=now,
        related_resources=[related("plan", item.plan_id)],
        payload={
            "item_id": item.id,
            "previous": item.colour,
            "colour": colour,
            "state": state,
        },
    )
    item.colour = colour
