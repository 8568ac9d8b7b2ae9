"""Computing a review's figures from plain rows (pure: no I/O, time comes in as `as_of`).

Rules, stated once:
- A check-in is *due in the period* when its (possibly extended) due date lies between the
  period start and the earlier of the period end and the `as_of` local date; cancelled ones
  are left out. It is *on time* when first submitted on or before its due date (local date),
  *late* when submitted after, *missing* when unsubmitted and its due date has passed, and
  *open* when due on the `as_of` day itself and not yet submitted.
- 按时报送率 = on time / (on time + late + missing).
- An item's colour at a moment is that of its last `duban.item.status_changed` event at or
  before it; an item that has no such event at all keeps its stored colour throughout.
- Attainment of a target is `models.attainment.attainment_percent` of the item's latest
  reported value. Section attainment is the mean of the targets' attainment capped at 100 %.
- Overdue days are calendar days from the oldest unsubmitted due date to the `as_of` date.
- Leader instructions (领导批示) of the period are those given between the period start and
  the data's end; one counts as answered when a report answered it by then
  (`models.instruction.summarise_instructions`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from models.attainment import attainment_percent
from models.clock import LOCAL_TZ, local_date
from models.closure import closed_as_of
from models.instruction import summarise_instructions
from models.ladder import is_overdue
from models.progress import PaceVerdict
from models.report_review import review_report_lines
from models.review import (
    COLOURS,
    BlockedLine,
    CheckinCounts,
    CheckinRow,
    ClosedLine,
    DepartmentLine,
    ItemLine,
    ItemRow,
    MilestoneLine,
    OverdueLine,
    PaceLine,
    Review,
    ReviewInputs,
    SectionBlock,
    StatusChange,
    TargetLine,
    WeekPoint,
)
from models.scoring import DepartmentScore
from models.vocabulary import CheckinStatus, SelfStatusValue

EXCERPT_CHARS = 120
NO_SUBMISSION = "尚未报送"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` on one line without control characters, cut to `limit` characters with `…`."""
    cleaned = "".join(
        " " if unicodedata.category(char).startswith("C") or char.isspace() else char
        for char in text
    )
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def attainment(comparator: str, target: float, reported: float | None) -> float | None:
    """A target's attainment in percent (`models.attainment.attainment_percent`), or None when
    nothing was reported, the ratio is undefined or the comparator is unknown."""
    try:
        return attainment_percent(reported, comparator, target)
    except ValueError:
        return None


def classify(checkin: CheckinRow, as_of_day: date) -> str:
    """`on_time`, `late`, `missing` or `open` for a check-in due on or before `as_of_day`."""
    if checkin.submitted_at is not None:
        return "on_time" if local_date(checkin.submitted_at) <= checkin.due_date else "late"
    return "missing" if is_overdue(checkin.due_date, as_of_day, answered=False) else "open"


def count_checkins(outcomes: list[str]) -> CheckinCounts:
    """Tally a list of `classify` outcomes."""
    tally = Counter(outcomes)
    return CheckinCounts(
        due=len(outcomes),
        on_time=tally["on_time"],
        late=tally["late"],
        missing=tally["missing"],
        open=tally["open"],
    )


def colours_at(
    items: tuple[ItemRow, ...], changes: tuple[StatusChange, ...], moments: list[datetime]
) -> list[dict[int, str]]:
    """Each item's colour at each of the ascending `moments` (see the module rules)."""
    ordered = sorted(changes, key=lambda change: (change.occurred_at, change.item_id))
    with_events = {change.item_id for change in ordered}
    current = {item.id: "none" if item.id in with_events else item.colour for item in items}
    result: list[dict[int, str]] = []
    index = 0
    for moment in moments:
        while index < len(ordered) and ordered[index].occurred_at <= moment:
            change = ordered[index]
            if change.item_id in current:
                current[change.item_id] = change.colour
            index += 1
        result.append(dict(current))
    return result


def tally_colours(colour_by_item: dict[int, str]) -> dict[str, int]:
    """Counts per colour in `COLOURS` order (unknown colours count as `none`)."""
    tally = Counter(c if c in COLOURS else "none" for c in colour_by_item.values())
    return {colour: tally[colour] for colour in COLOURS}


def week_ends(start: date, until: date) -> list[date]:
    """Every Sunday from `start` to `until`, plus `until` itself."""
    days = [start + timedelta(days=n) for n in range((until - start).days + 1)]
    ends = [day for day in days if day.weekday() == 6]
    if not ends or ends[-1] != until:
        ends.append(until)
    return ends


def end_of_local_day(day: date) -> datetime:
    """The last microsecond of `day` in Asia/Shanghai, as UTC."""
    return datetime.combine(day, time.max, tzinfo=LOCAL_TZ).astimezone(UTC)


def build_review(inputs: ReviewInputs) -> Review:
    """Compute every figure of the review of `inputs.period` as of `inputs.as_of`."""
    period, as_of = inputs.period, inputs.as_of
    as_of_day = local_date(as_of)
    until = min(period.end, as_of_day)
    names = {dept.id: dept.name for dept in inputs.departments}
    leads: dict[int, list[str]] = defaultdict(list)
    for assignment in inputs.assignments:
        if assignment.role == "lead" and assignment.department_id in names:
            leads[assignment.item_id].append(names[assignment.department_id])
    items = tuple(sorted(inputs.items, key=lambda item: item.position))

    moments = [min(end_of_local_day(day), as_of) for day in week_ends(period.start, until)]
    snapshots = colours_at(items, inputs.status_changes, [*moments, as_of])
    now_colours = snapshots[-1]
    weeks = tuple(
        WeekPoint(day, tally_colours(snapshot))
        for day, snapshot in zip(week_ends(period.start, until), snapshots[:-1], strict=True)
    )

    live = [c for c in inputs.checkins if c.status != "cancelled"]
    in_period = [c for c in live if period.start <= c.due_date <= until]
    outcomes = [classify(c, as_of_day) for c in in_period]
    by_dept: dict[int, list[str]] = defaultdict(list)
    for checkin, outcome in zip(in_period, outcomes, strict=True):
        by_dept[checkin.department_id].append(outcome)

    start_moment = datetime.combine(period.start, time.min, tzinfo=LOCAL_TZ).astimezone(UTC)
    window_end = min(end_of_local_day(until), as_of)
    escalations = [e for e in inputs.escalations if start_moment <= e.decided_at <= window_end]
    escalations_by_level = dict(sorted(Counter(e.level for e in escalations).items()))
    escalations_by_dept = Counter(e.department_id for e in escalations)
    review_returns, awaiting_review = review_report_lines(
        decisions=inputs.review_decisions,
        awaiting=inputs.awaiting_review,
        names=names,
        items={i.id: (i.number, i.title) for i in items},
        start=start_moment,
        end=window_end,
    )
    granted = sum(
        1
        for ext in inputs.extensions
        if ext.decision == "approved"
        and ext.decided_at is not None
        and start_moment <= ext.decided_at <= window_end
    )

    instructions = summarise_instructions(inputs.instructions, start=start_moment, end=window_end)
    departments = _department_lines(
        names, {k: count_checkins(v) for k, v in by_dept.items()}, escalations_by_dept
    )
    latest = {s.item_id: s for s in inputs.submissions if s.submitted_at <= as_of}
    targets_by_item: dict[int, list[TargetLine]] = defaultdict(list)
    comparators: dict[int, list[float]] = defaultdict(list)
    for target in sorted(inputs.targets, key=lambda t: (t.item_id, t.position)):
        submission = latest.get(target.item_id)
        raw = None if submission is None else submission.values.get(str(target.id))
        reported = float(raw) if isinstance(raw, int | float) else None
        percent = attainment(target.comparator, target.value, reported)
        targets_by_item[target.item_id].append(
            TargetLine(target.text, target.value, target.unit, reported, percent)
        )
        if percent is not None:
            comparators[target.item_id].append(min(percent, 100.0))

    closed = {
        item_id: local_date(moment)
        for item_id, moment in closed_as_of(
            ((c.item_id, c.closed_at, c.reopened_at) for c in inputs.closures), as_of
        ).items()
    }
    lines: dict[int, ItemLine] = {}
    for item in items:
        submission = latest.get(item.id)
        lines[item.id] = ItemLine(
            item_id=item.id,
            number=item.number,
            title=excerpt(item.title, 80),
            leads=tuple(sorted(leads.get(item.id, []))),
            colour=now_colours[item.id],
            status=NO_SUBMISSION
            if submission is None
            else SelfStatusValue.label_of(excerpt(submission.status, 20)),
            status_date=None if submission is None else local_date(submission.submitted_at),
            targets=tuple(targets_by_item.get(item.id, [])),
            narrative="" if submission is None else excerpt(submission.narrative),
            problems="" if submission is None else excerpt(submission.problems),
            next_steps="" if submission is None else excerpt(submission.next_steps),
            closed_on=closed.get(item.id),
            attachments=() if submission is None else inputs.attachments.get(item.id, ()),
        )

    sections: list[SectionBlock] = []
    section_rows = sorted(inputs.sections, key=lambda s: s.position)
    groups: list[tuple[str, str, list[ItemRow]]] = [
        (s.number, s.title, [i for i in items if i.section_id == s.id]) for s in section_rows
    ]
    known = {s.id for s in section_rows}
    orphans = [i for i in items if i.section_id not in known]
    if orphans:
        groups.append(("", "未归入章节的任务", orphans))
    for number, title, members in groups:
        shares = [p for i in members for p in comparators.get(i.id, [])]
        sections.append(
            SectionBlock(
                number=number,
                title=excerpt(title, 60),
                colours=tally_colours({i.id: now_colours[i.id] for i in members}),
                attainment=sum(shares) / len(shares) if shares else None,
                items=tuple(lines[i.id] for i in members),
            )
        )

    return Review(
        plan=inputs.plan,
        period=period,
        as_of=as_of,
        data_until=until,
        colours=tally_colours(now_colours),
        checkins=count_checkins(outcomes),
        escalations_by_level=escalations_by_level,
        extensions_granted=granted,
        sections=tuple(sections),
        departments=departments,
        overdue=_overdue_lines(inputs, lines, names, as_of_day, window_end),
        unassigned=tuple(
            (i.number, lines[i.id].title)
            for i in items
            if i.needs_assignment or not leads.get(i.id)
        ),
        blocked=tuple(
            BlockedLine(
                lines[i.id].number,
                lines[i.id].title,
                lines[i.id].leads,
                lines[i.id].problems or "未填写具体问题",
            )
            for i in items
            if i.id in latest and latest[i.id].status == "blocked"
        ),
        weeks=weeks,
        item_count=len(items),
        missed_milestones=_missed_milestones(in_period, outcomes, lines, names),
        instructions=instructions.facts,
        instructions_answered=instructions.answered,
        closed=_closed_lines(inputs, lines, start_moment, window_end),
        review_returns=review_returns,
        awaiting_review=awaiting_review,
    )


def _closed_lines(
    inputs: ReviewInputs, lines: dict[int, ItemLine], start: datetime, end: datetime
) -> tuple[ClosedLine, ...]:
    """Items closed (销号) within [start, end] and still closed at `inputs.as_of`, by day."""
    still = closed_as_of(
        ((c.item_id, c.closed_at, c.reopened_at) for c in inputs.closures), inputs.as_of
    )
    found = [
        ClosedLine(
            lines[c.item_id].number,
            lines[c.item_id].title,
            lines[c.item_id].leads,
            local_date(c.closed_at),
            excerpt(c.reason, 120),
        )
        for c in inputs.closures
        if c.item_id in lines
        and start <= c.closed_at <= end
        and still.get(c.item_id) == c.closed_at
    ]
    return tuple(sorted(found, key=lambda line: (line.closed_on, line.number)))


def _missed_milestones(
    checkins: list[CheckinRow],
    outcomes: list[str],
    lines: dict[int, ItemLine],
    names: dict[int, str],
) -> tuple[MilestoneLine, ...]:
    """The period's milestone check-ins (those that ask for a 时序进度 output) reported late
    or missing, in due-date order."""
    missed = [
        MilestoneLine(
            lines[c.item_id].number,
            lines[c.item_id].title,
            names.get(c.department_id, "未知部门"),
            c.asks,
            c.due_date,
            local_date(c.submitted_at) if c.submitted_at is not None else None,
        )
        for c, outcome in zip(checkins, outcomes, strict=True)
        if c.asks and outcome in ("late", "missing") and c.item_id in lines
    ]
    return tuple(sorted(missed, key=lambda m: (m.due_date, m.number)))


def _department_lines(
    names: dict[int, str], counts: dict[int, CheckinCounts], escalations: Counter[int | None]
) -> tuple[DepartmentLine, ...]:
    """Ranked department lines: rate desc, then fewer missing, fewer late, name."""
    rated = sorted(
        (dept for dept in names if counts.get(dept, CheckinCounts()).settled),
        key=lambda d: (
            -(counts[d].on_time_rate or 0.0),
            counts[d].missing,
            counts[d].late,
            names[d],
        ),
    )
    unrated = sorted((d for d in names if d not in rated), key=lambda d: names[d])
    lines = [
        DepartmentLine(rank, names[d], counts[d], escalations.get(d, 0))
        for rank, d in enumerate(rated, start=1)
    ]
    lines += [
        DepartmentLine(None, names[d], counts.get(d, CheckinCounts()), escalations.get(d, 0))
        for d in unrated
    ]
    return tuple(lines)


def _overdue_lines(
    inputs: ReviewInputs,
    lines: dict[int, ItemLine],
    names: dict[int, str],
    as_of_day: date,
    window_end: datetime,
) -> tuple[OverdueLine, ...]:
    """Items with unsubmitted check-ins past due at `as_of_day`, longest overdue first."""
    overdue: dict[int, list[CheckinRow]] = defaultdict(list)
    for checkin in inputs.checkins:
        if (
            checkin.status != CheckinStatus.CANCELLED
            and is_overdue(checkin.due_date, as_of_day, answered=checkin.submitted_at is not None)
            and checkin.item_id in lines
        ):
            overdue[checkin.item_id].append(checkin)
    levels: dict[int, int] = defaultdict(int)
    for escalation in inputs.escalations:
        if escalation.decided_at <= window_end:
            levels[escalation.item_id] = max(levels[escalation.item_id], escalation.level)
    order = {item_id: index for index, item_id in enumerate(lines)}
    result: list[tuple[int, OverdueLine]] = []
    for item_id, checkins in overdue.items():
        oldest = min(c.due_date for c in checkins)
        depts = tuple(sorted({names.get(c.department_id, "未知部门") for c in checkins}))
        line = lines[item_id]
        days = (as_of_day - oldest).days
        entry = OverdueLine(line.number, line.title, depts, oldest, days, levels[item_id])
        result.append((order[item_id], entry))
    result.sort(key=lambda pair: (-pair[1].days_overdue, -pair[1].level, pair[0]))
    return tuple(entry for _, entry in result)


def with_pace(
    review: Review,
    inputs: ReviewInputs,
    verdicts: Mapping[int, PaceVerdict],
    scores: Sequence[DepartmentScore] = (),
    orders: Mapping[str, int] | None = None,
) -> Review:
    """`review` with each item's 序时进度 line (plan order), the departments' 考核 scores and
    the 督办单 issued in the period by colour."""
    names = {dept.id: dept.name for dept in inputs.departments}
    roles: dict[tuple[int, str], list[str]] = defaultdict(list)
    for assignment in inputs.assignments:
        if assignment.department_id in names:
            roles[(assignment.item_id, assignment.role)].append(names[assignment.department_id])
    lines = {line.item_id: line for block in review.sections for line in block.items}
    pace = tuple(
        PaceLine(
            number=item.number,
            title=lines[item.id].title if item.id in lines else excerpt(item.title, 80),
            leads=tuple(sorted(roles.get((item.id, "lead"), []))),
            supports=tuple(sorted(roles.get((item.id, "support"), []))),
            progress=verdicts[item.id].progress,
            targets=lines[item.id].targets if item.id in lines else (),
            ratio=verdicts[item.id].ratio,
        )
        for item in sorted(inputs.items, key=lambda item: item.position)
        if item.id in verdicts
    )
    return replace(review, pace=pace, scores=tuple(scores), orders=dict(orders or {}))
