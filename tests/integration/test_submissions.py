"""Submission and extension repository functions on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import InputError, NotFoundError
from models.forms import ExtensionRequest, SubmissionForm
from models.outbox import DomainEvent, OutboxMessage
from models.supervision import Extension
from models.vocabulary import SelfStatusValue
from tasks.checkins import ladder_epochs
from tasks.submissions import (
    CheckinClosed,
    approve_extension,
    list_extensions,
    list_submissions,
    record_submission,
    reject_extension,
    request_extension,
)
from tests.portal_rows import DUE, CheckinRows, make_checkin

NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
FORM = SubmissionForm(status=SelfStatusValue.ON_TRACK, narrative="按计划推进")


@pytest.fixture
def rows(session: Session) -> CheckinRows:
    return make_checkin(session)


def submit(session: Session, rows: CheckinRows, **kwargs: object) -> object:
    return record_submission(
        session=session,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        form=kwargs.pop("form", FORM),  # type: ignore[arg-type]
        source="cli",
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def events(session: Session, rows: CheckinRows) -> list[str]:
    query = (
        select(DomainEvent.type)
        .where(DomainEvent.resource_id == f"duban.checkin.{rows.checkin.id}")
        .order_by(DomainEvent.id)
    )
    return list(session.scalars(query))


def test_versions_and_idempotency_key(session: Session, rows: CheckinRows) -> None:
    submit(session, rows, idempotency_key="k1")
    submit(session, rows, idempotency_key="k1")
    submit(session, rows)
    versions = [
        sub.version for sub in list_submissions(session=session, checkin_id=rows.checkin.id)
    ]
    assert versions == [2, 1]
    assert events(session, rows) == ["duban.checkin.submitted"] * 2


def test_wrong_department_closed_checkin_and_unknown_target(
    session: Session, rows: CheckinRows
) -> None:
    other = make_checkin(session, title="别的任务")
    with pytest.raises(NotFoundError):
        record_submission(
            session=session,
            checkin_id=rows.checkin.id,
            department_id=other.department.id,
            form=FORM,
            source="cli",
            now=NOW,
        )
    with pytest.raises(InputError, match="不属于该任务"):
        submit(session, rows, form=FORM.model_copy(update={"values": {"99999999": 1.0}}))
    rows.checkin.status = "cancelled"
    session.flush()
    with pytest.raises(CheckinClosed):
        submit(session, rows)
    assert list_submissions(session=session, checkin_id=rows.checkin.id) == []


def test_form_limits_and_numbers() -> None:
    with pytest.raises(ValueError, match="at most 4000"):
        SubmissionForm(status=SelfStatusValue.DONE, narrative="字" * 4001)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite numbers"):
            SubmissionForm(status=SelfStatusValue.DONE, narrative="x", values={"1": bad})
    with pytest.raises(ValueError, match="unknown target key"):
        SubmissionForm(status=SelfStatusValue.DONE, narrative="x", values={"a": 1.0})


def test_newer_request_withdraws_older_and_reject_keeps_due_date(
    session: Session, rows: CheckinRows
) -> None:
    first = request_extension(
        session=session,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        new_date=date(2021, 10, 15),
        reason="场地",
        now=NOW,
    )
    second = request_extension(
        session=session,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        new_date=date(2021, 10, 29),
        reason="专家档期",
        now=NOW + timedelta(hours=1),
    )
    assert first.decision == "withdrawn"
    assert [ext.id for ext in list_extensions(session=session)] == [second.id]
    reject_extension(session=session, extension_id=second.id, decided_by="督查室", now=NOW)
    assert rows.checkin.due_date == DUE
    with pytest.raises(InputError, match="已处理"):
        approve_extension(session=session, extension_id=second.id, decided_by="x", now=NOW)
    assert events(session, rows)[-1] == "duban.checkin.extension_rejected"


def test_approval_moves_to_a_workday_and_raises_the_epoch(
    session: Session, rows: CheckinRows
) -> None:
    submit(
        session,
        rows,
        form=FORM.model_copy(
            update={"extension": ExtensionRequest(new_date=date(2021, 10, 1), reason="国庆")}
        ),
    )
    extension = session.scalars(
        select(Extension).where(Extension.checkin_id == rows.checkin.id)
    ).one()
    assert ladder_epochs(session=session, checkin_ids=[rows.checkin.id]) == {}
    approve_extension(session=session, extension_id=extension.id, decided_by="督查室", now=NOW)
    assert rows.checkin.due_date == date(2021, 10, 8)
    assert rows.checkin.original_due_date == DUE
    assert extension.previous_due_date == DUE
    assert ladder_epochs(session=session, checkin_ids=[rows.checkin.id]) == {rows.checkin.id: 1}
    with pytest.raises(NotFoundError):
        approve_extension(session=session, extension_id=99_999_999, decided_by="x", now=NOW)
    assert events(session, rows) == [
        "duban.checkin.submitted",
        "duban.checkin.extension_requested",
        "duban.checkin.extended",
    ]


def test_line_break_in_a_receipt_header_keeps_the_answer_and_sends_nothing(
    session: Session,
) -> None:
    rows = make_checkin(session, title="第一行\r\nBcc: victim@example.org")
    submission = submit(session, rows)
    receipts = [
        message
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "receipt"))
        if message.to_addrs == rows.department.contact_emails
    ]
    assert receipts == []
    assert events(session, rows) == ["duban.checkin.submitted"]
    assert list_submissions(session=session, checkin_id=rows.checkin.id) == [submission]


def test_receipt_is_enqueued_with_the_submission(session: Session, rows: CheckinRows) -> None:
    submit(session, rows)
    receipts = [
        message
        for message in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "receipt"))
        if message.to_addrs == rows.department.contact_emails
    ]
    assert len(receipts) == 1
    assert "\r" not in receipts[0].subject and "\n" not in receipts[0].subject


def test_every_checkin_event_names_the_item_for_deployment_triggers(
    session: Session, rows: CheckinRows
) -> None:
    submit(
        session,
        rows,
        form=FORM.model_copy(
            update={"extension": ExtensionRequest(new_date=date(2021, 10, 1), reason="国庆")}
        ),
    )
    extension = session.scalars(
        select(Extension).where(Extension.checkin_id == rows.checkin.id)
    ).one()
    approve_extension(session=session, extension_id=extension.id, decided_by="督查室", now=NOW)
    payloads = session.scalars(
        select(DomainEvent.payload).where(
            DomainEvent.resource_id == f"duban.checkin.{rows.checkin.id}"
        )
    ).all()
    assert len(payloads) == 3
    assert {payload["item_id"] for payload in payloads} == {rows.checkin.item_id}
