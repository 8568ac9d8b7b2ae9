"""The catch-up summary email (补发督办汇总): one per recipient the cap held back
(`models.catch_up`), listing the escalations not sent one by one."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from models.catch_up import CatchUpSummary
from models.clock import local_date
from models.settings import Settings, get_settings
from models.vocabulary import NoticeKind
from notifications.outbox import HeaderInjectionError, NewMessage, check_header
from notifications.rendering import environment

logger = logging.getLogger(__name__)


def summary_messages(
    *,
    summaries: Sequence[CatchUpSummary],
    notice_ids: Mapping[str, int],
    plan_title: str,
    organisation: str,
    now: datetime,
    settings: Settings | None = None,
) -> list[NewMessage]:
    """The email of each summary whose notice was recorded (its key in `notice_ids`).

    Reads nothing. A summary whose subject or address holds a line break is logged and
    left out.
    """
    settings = settings or get_settings()
    env = environment()
    messages = []
    for summary in summaries:
        notice_id = notice_ids.get(summary.key)
        email = summary.recipient.get("email", "")
        if notice_id is None or not email:
            continue
        context = {
            "organisation": settings.organisation or organisation or settings.mail_from_name,
            "recipient_name": summary.recipient.get("name") or "各位领导",
            "sent_on": local_date(now),
            "plan": {"title": plan_title},
            "kind_label": NoticeKind.CATCH_UP.label,
            "sent": summary.sent,
            "held": [{"reason": held.reason, "level": held.level} for held in summary.held],
        }
        try:
            subject = check_header(env.get_template("catch_up.subject.j2").render(context).strip())
        except HeaderInjectionError:
            logger.warning("no email for catch-up summary %s: a line break", summary.key)
            continue
        messages.append(
            NewMessage(
                key=f"notice:{summary.key}",
                kind=NoticeKind.CATCH_UP,
                to=[email],
                subject=subject,
                text_body=env.get_template("catch_up.txt.j2").render(context).strip() + "\n",
                html_body=env.get_template("catch_up.html.j2").render(context),
                notice_id=notice_id,
            )
        )
    return messages
