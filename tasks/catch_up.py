"""Recording the catch-up summaries of a pass (`models.catch_up`): notice rows and email."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from models.catch_up import CatchUpSummary
from models.supervision import Notice
from models.vocabulary import NoticeKind
from notifications.catch_up import summary_messages
from notifications.outbox import NewMessage
from tasks.sql import insert_ignoring, table_of


def record_summaries(
    *,
    session: Session,
    summaries: Sequence[CatchUpSummary],
    plan_title: str,
    organisation: str,
    now: datetime,
) -> list[NewMessage]:
    """Insert a `catch_up` notice per summary in one `INSERT … ON CONFLICT DO NOTHING
    RETURNING` (a summary recorded before, by a re-run, is skipped) and return the emails
    of those this insert recorded, for the caller's outbox insert. Does not commit."""
    if not summaries:
        return []
    notices = table_of(Notice)
    inserted = dict(
        session.execute(
            insert_ignoring(session, notices).returning(notices.c.key, notices.c.id),
            [
                {
                    "key": summary.key,
                    "kind": NoticeKind.CATCH_UP.value,
                    "level": max(held.level for held in summary.held),
                    "recipients": [summary.recipient],
                    "reason": f"补发督办{len(summary.held)}条并入汇总："
                    + "、".join(held.key for held in summary.held),
                    "decided_at": now,
                }
                for summary in summaries
            ],
        )
        .tuples()
        .all()
    )
    return summary_messages(
        summaries=summaries,
        notice_ids=inserted,
        plan_title=plan_title,
        organisation=organisation,
        now=now,
    )
