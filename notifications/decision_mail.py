"""The email a department gets when a supervisor decides its extension request (延期审批结果).

Written in the caller's transaction (it does not commit), once per extension: the outbox key
is `extension-decision:<id>`, so however the decision was taken (CLI, Prefect inbox, demo)
and however often a step is retried, one message is queued.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models.directory import Department
from models.outbox import OutboxMessage
from models.settings import Settings, get_settings
from models.supervision import Checkin, Extension
from models.vocabulary import ExtensionDecision
from notifications.context import item_context, load_item
from notifications.outbox import enqueue_message
from notifications.rendering import render_message

KIND = "extension_decision"


def enqueue_extension_decision_email(
    *,
    session: Session,
    extension: Extension,
    checkin: Checkin,
    reason: str,
    now: datetime,
    settings: Settings | None = None,
) -> OutboxMessage | None:
    """Queue the decision on `extension` (already approved or rejected) to the department's
    contacts, with the item's details and the form link; `reason` is the refusal's reason.

    Returns None when the department has no contact address.
    """
    settings = settings or get_settings()
    department = session.get(Department, checkin.department_id)
    if department is None or not department.contact_emails:
        return None
    item = load_item(session, checkin.item_id)
    context = item_context(
        session=session,
        settings=settings,
        item=item,
        department=department,
        checkin=checkin,
        now=now,
        recipient_name=f"{department.name} {department.contact_name}".strip(),
    )
    approved = extension.decision == ExtensionDecision.APPROVED
    context["decision"] = {
        "approved": approved,
        "label": ExtensionDecision.label_of(extension.decision),
        "requested_date": extension.requested_date,
        "previous_due_date": extension.previous_due_date or checkin.due_date,
        "request_reason": extension.reason,
        "reason": reason,
        "decided_by": extension.decided_by,
    }
    rendered = render_message(KIND, context)
    return enqueue_message(
        session=session,
        key=f"extension-decision:{extension.id}",
        kind=KIND,
        to=list(department.contact_emails),
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        now=now,
    )
