"""The inbox's database side: pending decisions per kind, and applying an answer once.

Each kind of decision registers an `InboxSource` (`register`): how to list a plan's pending
decisions (header fields only, one query), how to load one with its content for the form,
whether it is still pending (locking the row), and the kind's own apply function, the same
one the CLI and bulk decisions call. Extension requests (延期申请) are registered here,
report review (报送审核) in `tasks.inbox_review`, completion requests (办结申请) in
`tasks.inbox_completion`; `tasks.inbox_runs` imports every source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import LOCAL_TZ
from models.daily_pass import item_label
from models.db import transaction
from models.directory import Department
from models.errors import NotFoundError
from models.inbox import Answer, Figure, PendingDecision
from models.plan import Item
from models.supervision import LATEST_FIRST, Checkin, Extension, Submission
from models.vocabulary import (
    AssignmentRole,
    CheckinKind,
    CheckinStatus,
    ExtensionDecision,
    InboxKind,
)
from notifications.context import as_number
from tasks.attachments import attachments_of_submissions
from tasks.submissions import approve_extension, load_checkin, reject_extension

PendingLister = Callable[[Session, int], list[PendingDecision]]
"""`(session, plan_id)` → the plan's pending decisions of one kind (header fields filled)."""
DecisionLoader = Callable[[Session, int, datetime], PendingDecision | None]
"""`(session, decision_id, now)` → the decision with its content, or None if not pending."""
PendingCheck = Callable[[Session, int], bool]
"""`(session, decision_id)` → still pending? Locks the row (PostgreSQL) for the apply."""
Applier = Callable[[Session, Answer, datetime], str]
"""`(session, answer, now)` → applies the decision in the session (no commit); a message."""


@dataclass(frozen=True)
class InboxSource:
    """How the inbox reads and decides one kind of decision (see the module docstring)."""

    kind: InboxKind
    pending: PendingLister
    load: DecisionLoader
    is_pending: PendingCheck
    apply: Applier


SOURCES: dict[InboxKind, InboxSource] = {}


def register(source: InboxSource) -> None:
    """Make `source` the inbox's reader and applier of its kind (replacing an earlier one)."""
    SOURCES[source.kind] = source


def source_of(kind: InboxKind | str) -> InboxSource:
    """The registered source of `kind`; `NotFoundError` (Chinese) for a kind not registered."""
    member = InboxKind.of(str(kind))
    if member is None or member not in SOURCES:
        raise NotFoundError(f"收件箱不认识这种待办：{kind}。")
    return SOURCES[member]


def pending_decisions(*, session: Session, plan_id: int) -> list[PendingDecision]:
    """Every registered kind's pending decisions of the plan, kind by kind."""
    found: list[PendingDecision] = []
    for source in SOURCES.values():
        found.extend(source.pending(session, plan_id))
    return found


def load_decision(
    *, sessions: sessionmaker[Session], kind: InboxKind, decision_id: int, now: datetime
) -> PendingDecision | None:
    """The decision with its content for the form, or None once it is no longer pending."""
    with sessions() as session:
        return source_of(kind).load(session, decision_id, now)


def apply_answer(*, sessions: sessionmaker[Session], answer: Answer, now: datetime) -> str | None:
    """Apply `answer` through its kind's function in one transaction (the decision, its event
    and its email commit together), unless the decision is no longer pending: then nothing is
    written and None is returned. The row is locked first, so two runs never both apply."""
    source = source_of(answer.kind)
    with transaction(sessions) as session:
        if not source.is_pending(session, answer.decision_id):
            return None
        return source.apply(session, answer, now)


def _extension_header(extension: Extension, item: Item, department: str) -> PendingDecision:
    return PendingDecision(
        kind=InboxKind.EXTENSION,
        decision_id=extension.id,
        plan_id=item.plan_id,
        item_id=item.id,
        item_label=item_label(item),
        department=department,
        requested_at=extension.requested_at,
    )


def pending_extensions(session: Session, plan_id: int) -> list[PendingDecision]:
    """The plan's pending extension requests on check-ins still awaited, oldest first."""
    rows = session.execute(
        select(Extension, Item, Department.name)
        .join(Checkin, Checkin.id == Extension.checkin_id)
        .join(Item, Item.id == Checkin.item_id)
        .join(Department, Department.id == Checkin.department_id)
        .where(
            Item.plan_id == plan_id,
            Extension.decision == ExtensionDecision.PENDING,
            Checkin.status == CheckinStatus.PENDING,
        )
        .order_by(Extension.requested_at, Extension.id)
    )
    return [_extension_header(ext, item, name) for ext, item, name in rows.tuples()]


def load_extension(session: Session, extension_id: int, now: datetime) -> PendingDecision | None:
    """An extension request with the check-in's dates, the latest report and its figures."""
    del now
    extension = session.get(Extension, extension_id)
    if extension is None or extension.decision != ExtensionDecision.PENDING:
        return None
    checkin = load_checkin(session=session, checkin_id=extension.checkin_id)
    if checkin.status != CheckinStatus.PENDING:
        return None
    latest = session.scalars(
        select(Submission).where(Submission.checkin_id == checkin.id).order_by(*LATEST_FIRST)
    ).first()
    header = _extension_header(extension, checkin.item, checkin.department.name)
    requested = extension.requested_at.astimezone(LOCAL_TZ)
    facts = [
        (
            "报送",
            f"{CheckinKind.label_of(checkin.kind)}（{AssignmentRole.label_of(checkin.role)}）",
        ),
        ("当前截止日期", checkin.due_date.isoformat()),
        ("申请延期至", extension.requested_date.isoformat()),
        ("申请理由", extension.reason or "（未填写）"),
        ("申请时间", f"{requested:%Y-%m-%d %H:%M}"),
    ]
    if checkin.original_due_date != checkin.due_date:
        facts.append(("原定截止日期", checkin.original_due_date.isoformat()))
    texts: list[tuple[str, str]] = []
    if latest is not None:
        texts.append((f"最近一次报送（第{latest.version}版）进展", latest.narrative))
        if latest.problems:
            texts.append(("存在问题", latest.problems))
    figures = target_figures(checkin.item, latest)
    names: tuple[str, ...] = ()
    if latest is not None:
        evidence = attachments_of_submissions(session=session, submission_ids=[latest.id])
        names = tuple(info.file_name for info in evidence.get(latest.id, []))
    return replace(
        header, facts=tuple(facts), texts=tuple(texts), figures=figures, attachments=names
    )


def target_figures(item: Item, latest: Submission | None) -> tuple[Figure, ...]:
    """The item's targets (loaded) against the numbers `latest` reported (— when none)."""
    reported = latest.values if latest is not None else {}
    return tuple(
        Figure(
            target=target.text,
            reported=as_number(reported.get(str(target.id))),
            goal=target.value,
            unit=target.unit,
        )
        for target in item.targets
    )


def extension_is_pending(session: Session, extension_id: int) -> bool:
    """True while the request is undecided and its check-in still awaited (as listed by
    `pending_extensions`); locks both rows (PostgreSQL) for the apply."""
    extension = session.get(Extension, extension_id, with_for_update=True)
    if extension is None or extension.decision != ExtensionDecision.PENDING:
        return False
    checkin = session.get(Checkin, extension.checkin_id, with_for_update=True)
    return checkin is not None and checkin.status == CheckinStatus.PENDING


def apply_extension(session: Session, answer: Answer, now: datetime) -> str:
    """Approve (`approve_extension`) or reject with the reason (`reject_extension`)."""
    if answer.approve:
        extension = approve_extension(
            session=session, extension_id=answer.decision_id, decided_by=answer.decided_by, now=now
        )
        return (
            f"已批准延期申请 {extension.id}：截止日期由 {extension.previous_due_date} "
            f"延至 {extension.requested_date}。"
        )
    extension = reject_extension(
        session=session,
        extension_id=answer.decision_id,
        decided_by=answer.decided_by,
        now=now,
        reason=answer.reason,
    )
    return f"已驳回延期申请 {extension.id}：{answer.reason}"


register(
    InboxSource(
        kind=InboxKind.EXTENSION,
        pending=pending_extensions,
        load=load_extension,
        is_pending=extension_is_pending,
        apply=apply_extension,
    )
)
