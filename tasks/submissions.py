"""Submissions and extension requests: repository functions (the caller commits).

Every change writes its domain event in the same session, so the change and its event
commit together (see `tasks.events`). A check-in accepts answers until its ladder closes
(`status == "cancelled"`); every answer is a new `Submission` version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, contains_eager

from models.calendar import WorkCalendar
from models.errors import DubanError, InputError, NotFoundError
from models.forms import SubmissionForm
from models.limits import check_extension_date
from models.plan import Item
from models.settings import Settings, get_settings
from models.supervision import Checkin, Extension, Submission
from models.vocabulary import CheckinStatus, ExtensionDecision, ReviewDecision
from notifications.decision_mail import enqueue_extension_decision_email
from notifications.outbox import HeaderInjectionError
from notifications.receipt import insert_receipt
from tasks.attachments import NewAttachment, store_attachments
from tasks.calendar_store import work_calendar
from tasks.checkins import approve_extension_of
from tasks.events import record_event, related

logger = logging.getLogger(__name__)

CLOSED_STATUSES = frozenset({CheckinStatus.CANCELLED})


class CheckinClosed(DubanError):
    """The check-in no longer accepts answers (its ladder is closed)."""

    def __init__(self) -> None:
        super().__init__("该报送已关闭，不再接受提交。")


class HasCheckinStatus(Protocol):
    """A check-in as an ORM row or a plain read row (`portal.pages.PageCheckin`)."""

    @property
    def status(self) -> CheckinStatus:
        """The check-in's status."""
        ...

    @property
    def review(self) -> ReviewDecision | None:
        """The office's decision on its latest report (审核), if any."""
        ...


def accepts_answers(checkin: HasCheckinStatus) -> bool:
    """True while the check-in's ladder is open (it may still be answered and edited); a
    report the office accepted (审核通过) closes it."""
    return checkin.status not in CLOSED_STATUSES and checkin.review != ReviewDecision.ACCEPTED


# Built once (bound parameters, so each is compiled once per engine and cached): the
# check-in with its item, plan, department and targets, and the answer's two probes.
_CHECKIN = (
    select(Checkin)
    .join(Checkin.item)
    .join(Item.plan)
    .join(Checkin.department)
    .where(Checkin.id == bindparam("checkin_id"))
    .options(
        contains_eager(Checkin.item).contains_eager(Item.plan),
        contains_eager(Checkin.item).joinedload(Item.targets),
        contains_eager(Checkin.department),
    )
)
_CHECKIN_FOR_UPDATE = _CHECKIN.with_for_update(of=Checkin)
_REPEAT = select(Submission.id, Submission.checkin_id).where(
    Submission.idempotency_key == bindparam("key")
)
_LATEST_VERSION = select(func.max(Submission.version)).where(
    Submission.checkin_id == bindparam("checkin_id")
)


def load_checkin(*, session: Session, checkin_id: int, for_update: bool = False) -> Checkin:
    """The check-in with its item, targets, plan and department loaded; `NotFoundError` if none.

    One statement: the check-in joined to its item, plan, department and targets.
    `for_update` locks the check-in row (PostgreSQL) so concurrent submissions get distinct
    versions.
    """
    query = _CHECKIN_FOR_UPDATE if for_update else _CHECKIN
    checkin = session.scalars(query, {"checkin_id": checkin_id}).unique().one_or_none()
    if checkin is None:
        raise NotFoundError(f"报送 {checkin_id} 不存在。")
    return checkin


def list_submissions(*, session: Session, checkin_id: int) -> list[Submission]:
    """Every version submitted for a check-in, newest first."""
    query = (
        select(Submission)
        .where(Submission.checkin_id == checkin_id)
        .order_by(Submission.version.desc())
    )
    return list(session.scalars(query))


def _related(checkin: Checkin) -> list[dict[str, str]]:
    item = checkin.item
    return [
        related("item", item.id, f"第{item.number}项 {item.title}"[:200]),
        related("department", checkin.department_id, checkin.department.name),
        related("plan", item.plan_id, item.plan.title[:200]),
    ]


def _checkin_event(
    *,
    session: Session,
    checkin: Checkin,
    event_type: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    """Record `event_type` on the check-in, its item, department and plan related, at `now`.

    The payload always names `checkin_id`, `item_id` and `department_id` (deployment
    triggers map `item_id` to `supervise_item`).
    """
    record_event(
        session=session,
        event_type=event_type,
        resource_id=f"duban.checkin.{checkin.id}",
        occurred_at=now,
        now=now,
        related_resources=_related(checkin),
        payload={
            "checkin_id": checkin.id,
            "item_id": checkin.item_id,
            "department_id": checkin.department_id,
            **payload,
        },
    )


def _owned_open_checkin(*, session: Session, checkin_id: int, department_id: int) -> Checkin:
    checkin = load_checkin(session=session, checkin_id=checkin_id, for_update=True)
    if checkin.department_id != department_id:
        raise NotFoundError(f"报送 {checkin_id} 不属于该部门。")
    if not accepts_answers(checkin):
        raise CheckinClosed
    return checkin


def record_submission(
    *,
    session: Session,
    checkin_id: int,
    department_id: int,
    form: SubmissionForm,
    source: str,
    now: datetime,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    attachments: Sequence[NewAttachment] = (),
) -> Submission:
    """Add the next version of a department's answer; event and receipt in the same session.

    The first version without an extension request marks the check-in `submitted` (with
    `submitted_at`); a version that asks for an extension is kept as an interim note and
    leaves the check-in pending, so the ladder runs on until the extension is decided. A repeated
    `idempotency_key` returns the version it created. Values must name the item's targets
    (`InputError` otherwise); an extension in the form is recorded as a request. The
    receipt email (回执) is enqueued with `settings` (default: the process settings); a
    receipt whose subject would carry CR/LF is refused and logged, and the answer is kept.
    `attachments` (accepted evidence files) are stored with the new version, before its
    receipt, which lists them; a repeated `idempotency_key` stores none again.
    """
    if idempotency_key is not None:
        # a plain-column probe first (the usual answer is "none"), the row only on a repeat
        repeat = session.connection().execute(_REPEAT, {"key": idempotency_key}).first()
        if repeat is not None:
            if repeat.checkin_id != checkin_id:
                raise InputError("重复提交标识与报送不符。")
            existing = session.get(Submission, repeat.id)
            if existing is not None:
                return existing
    checkin = _owned_open_checkin(
        session=session, checkin_id=checkin_id, department_id=department_id
    )
    target_ids = {str(target.id) for target in checkin.item.targets}
    unknown = sorted(set(form.values) - target_ids)
    if unknown:
        raise InputError(f"指标 {unknown[0]} 不属于该任务。")
    latest = session.connection().execute(_LATEST_VERSION, {"checkin_id": checkin.id}).scalar()
    submission = Submission(
        checkin_id=checkin.id,
        version=(latest or 0) + 1,
        submitted_at=now,
        status=form.status.value,
        narrative=form.narrative,
        problems=form.problems,
        next_steps=form.next_steps,
        values=dict(form.values),
        source=source,
        idempotency_key=idempotency_key,
    )
    session.add(submission)
    if form.extension is None and checkin.status != CheckinStatus.SUBMITTED:
        checkin.status = CheckinStatus.SUBMITTED
        checkin.submitted_at = now
    session.flush()
    _checkin_event(
        session=session,
        checkin=checkin,
        event_type="duban.checkin.submitted",
        now=now,
        payload={
            "submission_id": submission.id,
            "version": submission.version,
            "status": submission.status,
            "source": source,
        },
    )
    extension = None
    if form.extension is not None:
        extension = _add_extension(
            session=session,
            checkin=checkin,
            new_date=form.extension.new_date,
            reason=form.extension.reason,
            now=now,
        )
    if attachments:
        store_attachments(
            session=session,
            files=attachments,
            department_id=checkin.department_id,
            submission_id=submission.id,
            now=now,
            settings=settings or get_settings(),
        )
    _enqueue_receipt(
        session=session,
        checkin=checkin,
        submission=submission,
        # the receipt names a request made with this version, not an earlier identical one
        extension=extension if extension is not None and extension.requested_at == now else None,
        now=now,
        settings=settings,
        files=bool(attachments),
    )
    return submission


def _enqueue_receipt(
    *,
    session: Session,
    checkin: Checkin,
    submission: Submission,
    extension: Extension | None,
    now: datetime,
    settings: Settings | None,
    files: bool = False,
) -> None:
    """The receipt from the rows already loaded; a subject with CR/LF is refused before
    anything is written (no savepoint needed), and the answer is kept. `files`: the version
    has evidence files for the receipt to list."""
    try:
        insert_receipt(
            session=session,
            files=files,
            checkin=checkin,
            submission=submission,
            extension=extension,
            now=now,
            settings=settings,
        )
    except HeaderInjectionError:
        logger.warning(
            "no receipt for submission %s: its subject would contain a line break",
            submission.id,
        )


def _add_extension(
    *, session: Session, checkin: Checkin, new_date: date, reason: str, now: datetime
) -> Extension:
    check_extension_date(new_date, due_date=checkin.due_date, plan_year=checkin.item.plan.year)
    pending = session.scalars(
        select(Extension).where(
            Extension.checkin_id == checkin.id, Extension.decision == ExtensionDecision.PENDING
        )
    ).all()
    for earlier in pending:
        if earlier.requested_date == new_date and earlier.reason == reason:
            return earlier
        earlier.decision = ExtensionDecision.WITHDRAWN
        earlier.decided_at = now
        earlier.decided_by = "申请部门更新"
    extension = Extension(
        checkin_id=checkin.id, requested_date=new_date, reason=reason, requested_at=now
    )
    session.add(extension)
    session.flush()
    _checkin_event(
        session=session,
        checkin=checkin,
        event_type="duban.checkin.extension_requested",
        now=now,
        payload={
            "extension_id": extension.id,
            "requested_date": new_date.isoformat(),
            "due_date": checkin.due_date.isoformat(),
        },
    )
    return extension


def request_extension(
    *,
    session: Session,
    checkin_id: int,
    department_id: int,
    new_date: date,
    reason: str,
    now: datetime,
) -> Extension:
    """Record a pending extension request (a newer request withdraws an older pending one).

    Raises `InputError` unless `new_date` is after the current due date.
    """
    checkin = _owned_open_checkin(
        session=session, checkin_id=checkin_id, department_id=department_id
    )
    return _add_extension(
        session=session, checkin=checkin, new_date=new_date, reason=reason.strip(), now=now
    )


def _pending_extension(*, session: Session, extension_id: int) -> tuple[Extension, Checkin]:
    extension = session.get(Extension, extension_id, with_for_update=True)
    if extension is None:
        raise NotFoundError(f"延期申请 {extension_id} 不存在。")
    if extension.decision != ExtensionDecision.PENDING:
        raise InputError(f"延期申请 {extension_id} 已处理（{extension.decision}）。")
    checkin = load_checkin(session=session, checkin_id=extension.checkin_id, for_update=True)
    return extension, checkin


def approve_extension(
    *,
    session: Session,
    extension_id: int,
    decided_by: str,
    now: datetime,
    calendar: WorkCalendar | None = None,
) -> Extension:
    """Approve a pending request: move the due date, restart the ladder, write the event.

    The new due date is the requested date moved to a working day if needed; the approval
    itself is `tasks.checkins.approve_extension_of` (the check-in must still be pending and
    the date later, else `InputError`); `original_due_date` is never changed. Emails the
    department the decision (`notifications.decision_mail`).
    """
    extension, checkin = _pending_extension(session=session, extension_id=extension_id)
    due, year = checkin.due_date, checkin.item.plan.year
    check_extension_date(extension.requested_date, due_date=due, plan_year=year)
    calendar = calendar or work_calendar(session=session)
    target = calendar.next_workday_on_or_after(extension.requested_date)
    approve_extension_of(
        session=session,
        checkin=checkin,
        extension=extension,
        target=target,
        decided_by=decided_by,
        now=now,
    )
    _enqueue_decision(session=session, extension=extension, checkin=checkin, reason="", now=now)
    return extension


def _enqueue_decision(
    *, session: Session, extension: Extension, checkin: Checkin, reason: str, now: datetime
) -> None:
    """The department's 延期审批结果 email, in the decision's transaction (once per request)."""
    try:
        with session.begin_nested():
            enqueue_extension_decision_email(
                session=session, extension=extension, checkin=checkin, reason=reason, now=now
            )
    except HeaderInjectionError:
        logger.warning("no decision email for extension %s: line break in subject", extension.id)


def reject_extension(
    *, session: Session, extension_id: int, decided_by: str, now: datetime, reason: str = ""
) -> Extension:
    """Reject a pending request; the due date stays. Writes `duban.checkin.extension_rejected`
    (with `reason`) and emails the department the decision."""
    extension, checkin = _pending_extension(session=session, extension_id=extension_id)
    extension.decision = ExtensionDecision.REJECTED
    extension.decided_at = now
    extension.decided_by = decided_by
    _checkin_event(
        session=session,
        checkin=checkin,
        event_type="duban.checkin.extension_rejected",
        now=now,
        payload={
            "extension_id": extension.id,
            "due_date": checkin.due_date.isoformat(),
            "decided_by": decided_by,
            "reason": reason,
        },
    )
    _enqueue_decision(session=session, extension=extension, checkin=checkin, reason=reason, now=now)
    return extension


def list_extensions(*, session: Session, pending_only: bool = True) -> list[Extension]:
    """Extension requests, oldest first (only undecided ones unless `pending_only` is false)."""
    query = select(Extension).order_by(Extension.requested_at, Extension.id)
    if pending_only:
        query = query.where(Extension.decision == ExtensionDecision.PENDING)
    return list(session.scalars(query))
