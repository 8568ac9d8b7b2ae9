"""The inbox's database side on SQLite and PostgreSQL: listing, loading, applying once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select

from models.db import transaction
from models.errors import InputError
from models.inbox import read_answer
from models.outbox import DomainEvent, OutboxMessage
from models.supervision import Extension
from models.vocabulary import ExtensionDecision, InboxKind
from tasks.inbox import SOURCES, apply_answer, load_decision, pending_decisions
from tasks.inbox_runs import SOURCES_LOADED
from tasks.submissions import approve_extension, request_extension
from tests.portal_rows import make_checkin, rolled_back_sessions

NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)


def test_every_kind_is_registered() -> None:
    assert SOURCES_LOADED == ("tasks.inbox_review", "tasks.inbox_completion")
    assert set(SOURCES) == set(InboxKind)


def test_an_answer_applies_once_and_a_decided_request_leaves_the_inbox(
    migrated_engine: Engine,
) -> None:
    with rolled_back_sessions(migrated_engine) as sessions:
        with transaction(sessions) as session:
            rows = make_checkin(session)
            first = request_extension(
                session=session,
                checkin_id=rows.checkin.id,
                department_id=rows.department.id,
                new_date=date(2021, 10, 15),
                reason="场地改造",
                now=NOW,
            )
            plan_id, extension_id = rows.item.plan_id, first.id
        with sessions() as session:
            listed = pending_decisions(session=session, plan_id=plan_id)
        assert [decision.key for decision in listed] == [f"extension:{extension_id}"]
        loaded = load_decision(
            sessions=sessions, kind=InboxKind.EXTENSION, decision_id=extension_id, now=NOW
        )
        assert loaded is not None and ("申请理由", "场地改造") in loaded.facts
        assert [figure.goal for figure in loaded.figures] == [200, 5]

        no = read_answer(InboxKind.EXTENSION, extension_id, choice="驳回", reason="材料不全", by="")
        assert apply_answer(sessions=sessions, answer=no, now=NOW) == (
            f"已驳回延期申请 {extension_id}：材料不全"
        )
        again = read_answer(InboxKind.EXTENSION, extension_id, choice="批准", reason="", by="")
        assert apply_answer(sessions=sessions, answer=again, now=NOW) is None
        with sessions() as session:
            stored = session.get(Extension, extension_id)
            events = session.scalar(
                select(func.count())
                .select_from(DomainEvent)
                .where(DomainEvent.type == "duban.checkin.extension_rejected")
                .where(DomainEvent.resource_id == f"duban.checkin.{rows.checkin.id}")
            )
            mails = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.key == f"extension-decision:{extension_id}")
            )
            assert pending_decisions(session=session, plan_id=plan_id) == []
        assert stored is not None and stored.decision == ExtensionDecision.REJECTED
        assert (events, mails) == (1, 1)
        assert (
            load_decision(
                sessions=sessions, kind=InboxKind.EXTENSION, decision_id=extension_id, now=NOW
            )
            is None
        )
        with transaction(sessions) as session, pytest.raises(InputError, match="已处理"):
            approve_extension(
                session=session, extension_id=extension_id, decided_by="督查室", now=NOW
            )
