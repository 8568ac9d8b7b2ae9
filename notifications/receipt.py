"""The receipt (回执) of one submission version, composed from rows the caller already holds.

Storing an answer (`tasks.submissions.record_submission`) has the check-in with its item,
plan, targets and department loaded, the new submission and the extension it asked for;
the receipt reads only what it does not have (the plan's phases and the department's
previous answer to the item), renders once with the cached templates of
`notifications.rendering`, and inserts its outbox row in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models.clock import LOCAL_TZ
from models.plan import Phase
from models.settings import Settings, get_settings
from models.supervision import LATEST_FIRST, Checkin, Extension, Submission
from notifications.context import (
    as_number,
    build_item_context,
    submission_summary,
)
from notifications.outbox import NewMessage, insert_messages
from notifications.rendering import format_date, render_message
from tasks.attachments import AttachmentLink, submission_attachment_links

# Built once with bound parameters (compiled once per engine, then cached): the plan's
# phases, and the department's answer to the item before this version (the same order as
# `notifications.context`'s latest submission).
_PHASES = select(Phase).where(Phase.plan_id == bindparam("plan_id")).order_by(Phase.id)
_PREVIOUS = (
    select(Submission)
    .join(Checkin, Submission.checkin_id == Checkin.id)
    .where(
        Checkin.item_id == bindparam("item_id"),
        Checkin.department_id == bindparam("department_id"),
        Submission.id != bindparam("before_id"),
    )
    .order_by(*LATEST_FIRST)
    .limit(1)
)


def receipt_key(submission_id: int) -> str:
    """The outbox key of a submission's receipt (one receipt per submission version)."""
    return f"receipt:{submission_id}"


def receipt_message(
    *,
    settings: Settings,
    checkin: Checkin,
    submission: Submission,
    extension: Extension | None,
    phases: Sequence[Phase],
    last: Submission | None,
    now: datetime,
    attachments: Sequence[AttachmentLink] = (),
) -> NewMessage | None:
    """The receipt of `submission` to the department's contacts, from loaded rows (no
    queries): `checkin.item` with its plan and targets and `checkin.department` loaded,
    `extension` the request made with this version, `last` the department's answer to the
    item before this one, `attachments` its evidence files with their signed download links.
    None when the department has no contact address. Raises
    `HeaderInjectionError` when the subject would carry CR/LF.
    """
    department = checkin.department
    if not department.contact_emails:
        return None
    item = checkin.item
    context = build_item_context(
        settings=settings,
        item=item,
        department=department,
        checkin=checkin,
        now=now,
        recipient_name=f"{department.name} {department.contact_name}".strip(),
        phases=phases,
        last=last,
    )
    targets = {str(target.id): target for target in item.targets}
    submitted_local = submission.submitted_at.astimezone(LOCAL_TZ)
    context["submission"] = {
        **submission_summary(submission),
        "submitted_text": f"{format_date(submitted_local.date())}{submitted_local:%H:%M}",
        "figures": [
            {"text": targets[key].text, "unit": targets[key].unit, "value": number}
            for key, value in submission.values.items()
            if key in targets and (number := as_number(value)) is not None
        ],
        "extension": (
            {"requested_date": extension.requested_date, "reason": extension.reason}
            if extension is not None
            else None
        ),
        "attachments": list(attachments),
        "attachment_link_days": settings.attachment_link_days,
    }
    rendered = render_message("receipt", context)
    return NewMessage(
        key=receipt_key(submission.id),
        kind="receipt",
        to=list(department.contact_emails),
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )


def receipt_for(
    *,
    session: Session,
    checkin: Checkin,
    submission: Submission,
    extension: Extension | None,
    now: datetime,
    settings: Settings | None = None,
    files: bool = True,
) -> NewMessage | None:
    """`receipt_message` after reading the plan's phases, the previous answer and, when
    `files` says it has some, the version's evidence files (two or three statements).
    Reads only."""
    settings = settings or get_settings()
    phases = session.scalars(_PHASES, {"plan_id": checkin.item.plan_id}).all()
    last = session.scalars(
        _PREVIOUS,
        {
            "item_id": checkin.item_id,
            "department_id": checkin.department_id,
            "before_id": submission.id,
        },
    ).first()
    return receipt_message(
        settings=settings,
        checkin=checkin,
        submission=submission,
        extension=extension,
        phases=phases,
        last=last,
        now=now,
        attachments=submission_attachment_links(
            session=session, submission_id=submission.id, settings=settings, now=now
        )
        if files
        else (),
    )


def insert_receipt(
    *,
    session: Session,
    checkin: Checkin,
    submission: Submission,
    extension: Extension | None,
    now: datetime,
    settings: Settings | None = None,
    files: bool = True,
) -> int:
    """Compose the receipt (`receipt_for`; `files`: the version has evidence files) and
    insert its outbox row in one statement (a key already there is skipped); returns rows
    added. Writes nothing when the receipt
    cannot be composed (`HeaderInjectionError` propagates). Does not commit."""
    message = receipt_for(
        session=session,
        checkin=checkin,
        submission=submission,
        extension=extension,
        now=now,
        settings=settings,
        files=files,
    )
    if message is None:
        return 0
    return insert_messages(session=session, messages=[message], now=now)
