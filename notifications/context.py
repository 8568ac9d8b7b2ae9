"""Template contexts for item messages, read from the database (no writes).

The keys match `notifications.samples`; `notifications.compose` adds kind-specific keys
(escalation level, the submission of a receipt, the report) and enqueues.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session, selectinload

from models.clock import local_date
from models.directory import Department
from models.phase_text import phase_range
from models.plan import Item, Phase, Plan
from models.settings import Settings
from models.supervision import LATEST_FIRST, Checkin, Submission
from models.vocabulary import AssignmentRole, CheckinStatus, SelfStatusValue
from notifications.links import department_url, form_url
from notifications.rendering import format_date

_T = TypeVar("_T")


def item_number(item: Item) -> str:
    """`第4项` for a numbered item, the number itself (`（一）`) otherwise."""
    return f"第{item.number}项" if item.number.isdigit() else item.number


def _phase_range(phase: Phase) -> str:
    return phase_range(
        phase.start_text, phase.end_text, phase.start_date, phase.end_date, format_day=format_date
    )


def submission_summary(submission: Submission) -> dict[str, Any]:
    """Version, date, status label and texts of a submission, for templates."""
    return Fields(
        version=submission.version,
        submitted_on=local_date(submission.submitted_at),
        status_label=SelfStatusValue.label_of(submission.status),
        narrative=submission.narrative,
        problems=submission.problems,
        next_steps=submission.next_steps,
    )


def load_item(session: Session, item_id: int) -> Item:
    """The item with its plan and targets loaded."""
    return session.scalars(
        select(Item)
        .where(Item.id == item_id)
        .options(selectinload(Item.plan), selectinload(Item.targets))
    ).one()


def _phase_for(phases: Sequence[Phase], key: str | None, on: date) -> Phase | None:
    if key is not None:
        for phase in phases:
            if phase.key == key:
                return phase
    for phase in phases:
        if phase.start_date <= on <= phase.end_date:
            return phase
    return None


def _latest_submission(
    session: Session, *, item_id: int, department_id: int, before_id: int | None = None
) -> Submission | None:
    query = (
        select(Submission)
        .join(Checkin, Submission.checkin_id == Checkin.id)
        .where(Checkin.item_id == item_id, Checkin.department_id == department_id)
        .order_by(*LATEST_FIRST)
    )
    if before_id is not None:
        query = query.where(Submission.id != before_id)
    return session.scalars(query.limit(1)).first()


CHUNK = 500


def chunked(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """`values` in slices of at most `size`, for `IN (…)` lists the databases accept."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class ContextRows:
    """What the item messages of a batch of notices read, loaded by `load_context_rows`.

    `items` have their plan and targets loaded; `phases` are per plan id; `latest` is the
    newest submission and `next_pending` the earliest pending check-in per (item,
    department).
    """

    items: dict[int, Item]
    phases: dict[int, list[Phase]]
    latest: dict[tuple[int, int], Submission]
    next_pending: dict[tuple[int, int], Checkin]


def _first_per_pair(
    session: Session,
    entity: type[Submission] | type[Checkin],
    ranked: Subquery,
    pairs: set[tuple[int, int]],
) -> dict[tuple[int, int], Any]:
    query = (
        select(entity, ranked.c.item_id, ranked.c.department_id)
        .join(ranked, ranked.c.row_id == entity.id)
        .where(ranked.c.rank == 1)
    )
    return {
        (item_id, department_id): row
        for row, item_id, department_id in session.execute(query).tuples()
        if (item_id, department_id) in pairs
    }


def load_context_rows(
    session: Session, *, pairs: set[tuple[int, int]], pending_pairs: set[tuple[int, int]]
) -> ContextRows:
    """Load in a fixed number of queries per 500 items what `build_item_context` needs for
    every (item id, department id) in `pairs`; next pending check-ins only for
    `pending_pairs`. Reads only."""
    item_ids = sorted({item_id for item_id, _ in pairs})
    items: dict[int, Item] = {}
    latest: dict[tuple[int, int], Submission] = {}
    next_pending: dict[tuple[int, int], Checkin] = {}
    for chunk in chunked(item_ids):
        items.update(
            (item.id, item)
            for item in session.scalars(
                select(Item)
                .where(Item.id.in_(chunk))
                .options(selectinload(Item.plan), selectinload(Item.targets))
            )
        )
        submissions = (
            select(
                Submission.id.label("row_id"),
                Checkin.item_id,
                Checkin.department_id,
                func.row_number()
                .over(partition_by=(Checkin.item_id, Checkin.department_id), order_by=LATEST_FIRST)
                .label("rank"),
            )
            .join(Checkin, Submission.checkin_id == Checkin.id)
            .where(Checkin.item_id.in_(chunk))
            .subquery()
        )
        latest.update(_first_per_pair(session, Submission, submissions, pairs))
    if pending_pairs:
        next_pending = next_pending_checkins(session, pairs=pending_pairs)
    plan_ids = sorted({item.plan_id for item in items.values()})
    phases: defaultdict[int, list[Phase]] = defaultdict(list)
    for chunk in chunked(plan_ids):
        for phase in session.scalars(
            select(Phase).where(Phase.plan_id.in_(chunk)).order_by(Phase.id)
        ):
            phases[phase.plan_id].append(phase)
    return ContextRows(items=items, phases=dict(phases), latest=latest, next_pending=next_pending)


def next_pending_checkins(
    session: Session, *, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], Checkin]:
    """The earliest pending check-in (due date, then id) of each (item id, department id) in
    `pairs`: one query per 500 items. Reads only."""
    found: dict[tuple[int, int], Checkin] = {}
    for chunk in chunked(sorted({item_id for item_id, _ in pairs})):
        pending = (
            select(
                Checkin.id.label("row_id"),
                Checkin.item_id,
                Checkin.department_id,
                func.row_number()
                .over(
                    partition_by=(Checkin.item_id, Checkin.department_id),
                    order_by=(Checkin.due_date, Checkin.id),
                )
                .label("rank"),
            )
            .where(Checkin.item_id.in_(chunk), Checkin.status == CheckinStatus.PENDING)
            .subquery()
        )
        found.update(_first_per_pair(session, Checkin, pending, pairs))
    return found


def item_context(
    *,
    session: Session,
    settings: Settings,
    item: Item,
    department: Department,
    checkin: Checkin | None,
    now: datetime,
    recipient_name: str,
    exclude_submission_id: int | None = None,
) -> dict[str, Any]:
    """The template context shared by every item message (see `notifications.samples`)."""
    phases = list(
        session.scalars(select(Phase).where(Phase.plan_id == item.plan_id).order_by(Phase.id))
    )
    last = _latest_submission(
        session, item_id=item.id, department_id=department.id, before_id=exclude_submission_id
    )
    return build_item_context(
        settings=settings,
        item=item,
        department=department,
        checkin=checkin,
        now=now,
        recipient_name=recipient_name,
        phases=phases,
        last=last,
    )


def build_item_context(
    *,
    settings: Settings,
    item: Item,
    department: Department,
    checkin: Checkin | None,
    now: datetime,
    recipient_name: str,
    phases: Sequence[Phase],
    last: Submission | None,
    shared: SharedContext | None = None,
) -> dict[str, Any]:
    """`item_context` from rows already loaded: the plan's `phases`, the `last` submission.

    Pure (no queries): `item.plan` and `item.targets` must be loaded. A batch passes one
    `shared` for all its messages: what is the same for every message of an item, a phase
    or a department on one day is then built once (the same values, `_item_values` and
    `_department_values`), and each message adds its own. Returns a new dict.
    """
    shared = shared or SharedContext()
    today: date = shared.once(("today", now), lambda: local_date(now))
    department_id = department.id
    context = {
        **shared.once(("item", item.id), lambda: _item_values(settings, item, shared)),
        # the page of the department the email is about (本部门督办事项), in every footer
        **shared.once(
            ("department", department_id, today),
            lambda: _department_values(settings, department, today),
        ),
        "recipient_name": recipient_name,
        "sent_on": today,
    }
    phase_key = None
    if checkin is None:
        context["role_label"] = AssignmentRole.label_of(AssignmentRole.LEAD)
        context["due_date"] = context["overdue_days"] = context["form_url"] = None
        context["asks"] = ""
    else:
        phase_key = checkin.phase_key
        due_date = checkin.due_date
        context["role_label"] = AssignmentRole.label_of(checkin.role)
        context["due_date"] = due_date
        context["asks"] = checkin.asks
        context["overdue_days"] = (today - due_date).days if due_date is not None else None
        context["form_url"] = (
            form_url(
                settings=settings,
                checkin_id=checkin.id,
                department_id=department_id,
                due_date=due_date,
                issued_on=today,
            )
            if checkin.status != CheckinStatus.CANCELLED
            else None
        )
    context["phase"] = shared.once(
        ("phase", item.plan_id, phase_key, today),
        lambda: _phase_context(_phase_for(phases, phase_key, today)),
    )
    if last is None:
        context["last"] = None
    else:
        reported: dict[str, Any] = last.values
        context["targets"] = [
            Fields(
                text=target.text, unit=target.unit, reported=as_number(reported.get(str(target.id)))
            )
            for target in item.targets
        ]
        context["last"] = submission_summary(last)
    return context


def _item_values(settings: Settings, item: Item, shared: SharedContext) -> dict[str, Any]:
    """The values of an item's every message: sender, plan, item, and its targets as
    a message without a last submission shows them (nothing reported)."""
    plan: Plan = item.plan
    return {
        "organisation": settings.organisation or plan.organisation or settings.mail_from_name,
        "plan": shared.once(("plan", plan.id), lambda: Fields(title=plan.title, year=plan.year)),
        "item": Fields(label=item_number(item), title=item.title),
        "targets": [
            Fields(text=target.text, unit=target.unit, reported=None) for target in item.targets
        ],
    }


def _department_values(settings: Settings, department: Department, today: date) -> dict[str, Any]:
    """The values of a department's every message on `today`: its name, its page's link."""
    return {
        "department": Fields(name=department.name),
        "department_page_url": department_url(
            settings=settings, department_id=department.id, issued_on=today
        ),
    }


def _phase_context(phase: Phase | None) -> Fields | None:
    return Fields(name=phase.name, range=_phase_range(phase)) if phase else None


class Fields(dict[str, Any]):
    """A dict of template values (`plan.title`, `target.unit`) that Jinja2 reads as an
    attribute directly: on a plain dict the attribute lookup fails first and the key is
    read after it, which costs several times the lookup. The same keys and values; a key
    that names a dict attribute (`items`) is left to the dict, as on a plain one."""

    def __init__(self, **values: Any) -> None:
        super().__init__(values)
        for key, value in values.items():
            self._mirror(key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._mirror(key, value)

    def _mirror(self, key: str, value: Any) -> None:
        if not hasattr(dict, key):
            self.__dict__[key] = value


class SharedContext:
    """The parts of item contexts that one batch of messages (one settings, one `now`)
    shares, each built on first use: templates only read them, so one value serves every
    message it belongs to."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], Any] = {}

    def once(self, key: tuple[Any, ...], build: Callable[[], _T]) -> _T:
        """The value under `key`, built by `build` the first time it is asked for."""
        value: _T
        try:
            value = self._values[key]
        except KeyError:
            value = self._values[key] = build()
        return value


def as_number(value: Any) -> float | None:
    """A reported value as a float, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def period_label(period: str) -> str:
    """`2021Q2` -> `2021年第二季度`, `2021` -> `2021年度`."""
    if len(period) == 6 and period[4] == "Q":
        quarter = "一二三四"[int(period[5]) - 1] if period[5] in "1234" else period[5]
        return f"{period[:4]}年第{quarter}季度"
    return f"{period}年度" if period.isdigit() else period
