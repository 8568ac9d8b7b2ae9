"""An item's own check-ins: its 完成时限 and 时序进度 reshape the policy's generic schedule.

`models.schedule.plan_checkins` gives what every lead department owes under the policy.
`item_checkins` adapts that list to one item:

- milestones: the policy's cadence check-ins (monthly / quarterly) give way to one check-in
  at each milestone's end, asking for that milestone's output; once-per-phase check-ins
  (work plan, self-assessment) stay;
- a dated deadline: nothing is owed after it, and the final report is due on it (the ladder
  runs from there);
- a recurring deadline (`每季度末`): the cadence check-ins follow its period;
- ongoing items keep the policy's cadence.

Sequence numbers of the item's own check-ins live in ranges of their own (`MILESTONE_SEQ`,
`DEADLINE_SEQ`, `RECURRING_SEQ`), so the (item, department, phase, seq) key of every
check-in stays stable when the schedule is computed again. Pure: no database, no Prefect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from models.calendar import WorkCalendar
from models.plan_schema import ParsedDeadline, ParsedMilestone
from models.policy import SupervisionPolicy
from models.schedule import CheckinSpec, PhaseWindow

MILESTONE_SEQ = 100
DEADLINE_SEQ = 200
RECURRING_SEQ = 300

_PERIOD_MONTHS = {
    "monthly": tuple(range(1, 13)),
    "quarterly": (3, 6, 9, 12),
    "half_yearly": (6, 12),
    "yearly": (12,),
}


class DeadlineLike(Protocol):
    """What `item_checkins` reads of a deadline (`ParsedDeadline` or a stored one)."""

    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def due(self) -> date | None: ...
    @property
    def rule(self) -> str | None: ...


class MilestoneLike(Protocol):
    """What `item_checkins` reads of a milestone (`ParsedMilestone` or a stored one)."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> date: ...
    @property
    def end(self) -> date: ...
    @property
    def output(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ItemCheckin:
    """One check-in an item's department owes; `asks` is what it asks for ("" = generic)."""

    phase_key: str
    seq: int
    kind: str
    due_date: date
    asks: str = ""


def _phase_of(day: date, phases: Sequence[PhaseWindow]) -> str:
    """The key of the phase holding `day`, else of the nearest phase before it (or the first)."""
    before = [phase for phase in phases if phase.start_date <= day]
    for phase in before:
        if day <= phase.end_date:
            return phase.key
    if before:
        return before[-1].key
    return phases[0].key if phases else "implement"


def _due_on(nominal: date, calendar: WorkCalendar, *, not_before: date) -> date:
    """The last working day on or before `nominal`, or the next one if that is too early."""
    due = calendar.previous_workday_on_or_before(nominal)
    return due if due >= not_before else calendar.next_workday_on_or_after(nominal)


def _is_cadence(spec: CheckinSpec, policy: SupervisionPolicy) -> bool:
    rule = policy.rule_for(spec.phase_key)
    return rule is not None and rule.cadence != "once"


def _generic(specs: Sequence[CheckinSpec]) -> list[ItemCheckin]:
    return [ItemCheckin(s.phase_key, s.seq, s.kind, s.due_date) for s in specs]


def item_checkins(
    specs: Sequence[CheckinSpec],
    *,
    phases: Sequence[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
    deadline: DeadlineLike | None = None,
    milestones: Sequence[MilestoneLike] = (),
    use_milestones: bool = True,
    use_deadlines: bool = True,
) -> list[ItemCheckin]:
    """The check-ins one department owes on one item, in due-date order (see module doc).

    `specs` are the policy's check-ins for the department's role (`plan_checkins`); a
    department that owes none under the policy (a support department) owes none here.
    """
    if not specs:
        return []
    checkins = _generic(specs)
    if use_milestones and milestones:
        checkins = _with_milestones(checkins, specs, milestones, phases, policy, calendar)
    elif use_deadlines and deadline is not None and deadline.kind == "recurring" and deadline.rule:
        checkins = _with_recurrence(checkins, specs, deadline.rule, phases, policy, calendar)
    if use_deadlines and deadline is not None and deadline.kind == "date" and deadline.due:
        checkins = _with_deadline(checkins, deadline, phases, policy, calendar)
    return sorted(checkins, key=lambda c: (c.due_date, c.phase_key, c.seq))


def _with_milestones(
    checkins: list[ItemCheckin],
    specs: Sequence[CheckinSpec],
    milestones: Sequence[MilestoneLike],
    phases: Sequence[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemCheckin]:
    kept = [c for c, s in zip(checkins, specs, strict=True) if not _is_cadence(s, policy)]
    kind = next((s.kind for s in specs if _is_cadence(s, policy)), "progress")
    not_before = min(s.due_date for s in specs)
    by_day = {c.due_date: index for index, c in enumerate(kept)}
    for number, milestone in enumerate(milestones, start=1):
        due = _due_on(milestone.end, calendar, not_before=milestone.start)
        if due < not_before:
            continue
        asks = f"{milestone.text}：{milestone.output}" if milestone.output else milestone.text
        if due in by_day:
            same = kept[by_day[due]]
            kept[by_day[due]] = ItemCheckin(same.phase_key, same.seq, same.kind, due, asks)
            continue
        kept.append(ItemCheckin(_phase_of(due, phases), MILESTONE_SEQ + number, kind, due, asks))
        by_day[due] = len(kept) - 1
    return kept


def _with_recurrence(
    checkins: list[ItemCheckin],
    specs: Sequence[CheckinSpec],
    rule: str,
    phases: Sequence[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemCheckin]:
    cadence = [s for s in specs if _is_cadence(s, policy)]
    if not cadence or rule not in _PERIOD_MONTHS:
        return checkins
    kept = [c for c, s in zip(checkins, specs, strict=True) if not _is_cadence(s, policy)]
    not_before = min(s.due_date for s in cadence)
    taken = {c.due_date for c in kept}
    windows = [p for p in phases if {s.phase_key for s in cadence} & {p.key}]
    for window in windows:
        for number, month in enumerate(_PERIOD_MONTHS[rule], start=1):
            due = calendar.last_workday_of_month(window.start_date.year, month)
            inside = window.start_date <= due <= window.end_date and due >= not_before
            if inside and due not in taken:
                seq = RECURRING_SEQ + number
                kept.append(ItemCheckin(window.key, seq, cadence[0].kind, due))
                taken.add(due)
    return kept


def _with_deadline(
    checkins: list[ItemCheckin],
    deadline: DeadlineLike,
    phases: Sequence[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> list[ItemCheckin]:
    assert deadline.due is not None  # noqa: S101 - checked by the caller
    first = min(c.due_date for c in checkins)
    due = _due_on(deadline.due, calendar, not_before=first)
    kept = [c for c in checkins if c.due_date < due]
    asks = f"完成情况（完成时限：{deadline.text}）"
    final_rule = policy.rule_for("review")
    kind = final_rule.kind if final_rule is not None else "progress"
    on_day = [c for c in checkins if c.due_date == due]
    if on_day:
        same = on_day[0]
        kept.append(ItemCheckin(same.phase_key, same.seq, kind, due, same.asks or asks))
    else:
        kept.append(ItemCheckin(_phase_of(due, phases), DEADLINE_SEQ, kind, due, asks))
    return kept


def stored_schedule(
    deadline: Mapping[str, Any] | None, milestones: Sequence[Mapping[str, Any]]
) -> tuple[ParsedDeadline | None, list[ParsedMilestone]]:
    """An item's stored `deadline` / `milestones` JSON read back as the reader's values."""
    read_deadline = ParsedDeadline.model_validate(deadline) if deadline else None
    return read_deadline, [ParsedMilestone.model_validate(m) for m in milestones]


def item_specs(
    items: Iterable[tuple[int, Mapping[str, Any] | None, Sequence[Mapping[str, Any]]]],
    specs: Mapping[str, Sequence[CheckinSpec]],
    *,
    phases: Sequence[PhaseWindow],
    policy: SupervisionPolicy,
    calendar: WorkCalendar,
) -> dict[tuple[int, str], list[ItemCheckin]]:
    """Per `(item id, role)`, the check-ins of each item whose own deadline or milestones
    change the policy's schedule (`item_checkins`); items without either are left out, so
    they keep `specs`. `items` are `(id, deadline JSON, milestones JSON)` as stored."""
    use_milestones, use_deadlines = policy.item_milestones, policy.item_deadlines
    found: dict[tuple[int, str], list[ItemCheckin]] = {}
    if not (use_milestones or use_deadlines):
        return found
    for item_id, deadline_json, milestones_json in items:
        if not deadline_json and not milestones_json:
            continue
        deadline, milestones = stored_schedule(deadline_json, milestones_json)
        for role, role_specs in specs.items():
            found[(item_id, role)] = item_checkins(
                role_specs,
                phases=phases,
                policy=policy,
                calendar=calendar,
                deadline=deadline,
                milestones=milestones,
                use_milestones=use_milestones,
                use_deadlines=use_deadlines,
            )
    return found
