"""The reconcile loop on SQLite and PostgreSQL: once per key, ladders stop and restart."""

from __future__ import annotations

import threading
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models.calendar import WorkCalendar
from models.clock import resolve
from models.db import make_sessionmaker, transaction
from models.errors import DubanError, InputError
from models.forms import SubmissionForm
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Plan
from models.policy import default_policy
from models.supervision import Assignment, Checkin, Notice
from tasks.assignment import reassign_item, start_supervision
from tasks.checkins import extend_checkin
from tasks.reconcile import reconcile_item
from tasks.submissions import record_submission
from tests.builders import BuiltPlan, make_department, make_plan

CALENDAR = WorkCalendar()
POLICY = default_policy()


def at(day: date) -> datetime:
    return resolve(day)


def started_plan(session: Session) -> tuple[BuiltPlan, int, int]:
    """One item led by A (supported by B), started on 2021-05-24; returns (plan, a, b)."""
    make_department(session, office=True)
    lead = make_department(session)
    support = make_department(session)
    built = make_plan(session, items=[("搭建高水平科技开放交流平台", [lead], [support])])
    summary = start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=at(date(2021, 5, 24)),
        policy=POLICY,
        calendar=CALENDAR,
    )
    assert summary.checkins == 7
    assert summary.assignments == 2
    return built, lead.id, support.id


def run(session: Session, item_id: int, day: date) -> list[str]:
    return reconcile_item(
        session=session, item_id=item_id, as_of=at(day), policy=POLICY, calendar=CALENDAR
    ).notices


def first_checkin(session: Session, item_id: int) -> Checkin:
    return session.scalars(
        select(Checkin).where(Checkin.item_id == item_id).order_by(Checkin.due_date)
    ).first()  # type: ignore[return-value]


def test_schedule_honours_holidays_and_support_does_not_report(session: Session) -> None:
    built, lead, _support = started_plan(session)
    dues = session.execute(
        select(Checkin.department_id, Checkin.kind, Checkin.due_date)
        .where(Checkin.item_id == built.items[0].id)
        .order_by(Checkin.due_date)
    ).all()
    assert {row[0] for row in dues} == {lead}
    assert [(kind, due) for _, kind, due in dues] == [
        ("work_plan", date(2021, 6, 30)),
        ("progress", date(2021, 7, 23)),
        ("progress", date(2021, 8, 25)),
        ("progress", date(2021, 9, 24)),
        ("progress", date(2021, 10, 25)),
        ("progress", date(2021, 11, 25)),
        ("self_assessment", date(2021, 12, 31)),
    ]


def test_reconcile_is_idempotent_at_the_same_as_of(session: Session) -> None:
    built, _, _ = started_plan(session)
    item_id = built.items[0].id
    checkin = first_checkin(session, item_id)
    assert run(session, item_id, date(2021, 6, 22)) == []
    assert run(session, item_id, date(2021, 6, 23)) == [f"checkin:{checkin.id}:request:e0"]
    events = session.scalar(select(func.count()).select_from(DomainEvent))
    mails = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert run(session, item_id, date(2021, 6, 23)) == []
    assert session.scalar(select(func.count()).select_from(DomainEvent)) == events
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == mails
    notice = session.scalars(select(Notice).where(Notice.checkin_id == checkin.id)).one()
    assert notice.kind == "request"
    assert [r["role"] for r in notice.recipients] == ["contact"]


def test_ladder_climbs_and_a_submission_stops_it(session: Session) -> None:
    built, lead, _ = started_plan(session)
    item_id = built.items[0].id
    checkin = first_checkin(session, item_id)
    run(session, item_id, date(2021, 6, 23))
    assert run(session, item_id, date(2021, 6, 30)) == [f"checkin:{checkin.id}:reminder:e0"]
    assert run(session, item_id, date(2021, 7, 1)) == [f"checkin:{checkin.id}:escalation:1:e0"]
    assert built.items[0].colour == "amber"
    level2 = run(session, item_id, date(2021, 7, 5))
    assert level2 == [f"checkin:{checkin.id}:escalation:2:e0"]
    session.refresh(checkin)
    assert checkin.escalation_level == 2
    assert built.items[0].colour == "red"
    notice = session.scalars(select(Notice).where(Notice.key == level2[0])).one()
    assert [r["role"] for r in notice.recipients] == ["leader"]
    overdue = session.scalars(
        select(DomainEvent).where(
            DomainEvent.type == "duban.checkin.overdue",
            DomainEvent.resource_id == f"duban.checkin.{checkin.id}",
        )
    ).all()
    assert len(overdue) == 1
    record_submission(
        session=session,
        checkin_id=checkin.id,
        department_id=lead,
        form=SubmissionForm(status="on_track", narrative="已制定实施方案"),
        source="cli",
        now=at(date(2021, 7, 6)),
    )
    assert run(session, item_id, date(2021, 7, 7)) == []
    assert built.items[0].colour == "green"


def test_extension_restarts_the_ladder(session: Session) -> None:
    built, _, _ = started_plan(session)
    item_id = built.items[0].id
    checkin = first_checkin(session, item_id)
    run(session, item_id, date(2021, 7, 1))
    result = extend_checkin(
        session=session,
        checkin_id=checkin.id,
        new_due=date(2021, 7, 10),
        reason="等待上级文件",
        decided_by="督查室",
        now=at(date(2021, 7, 1)),
        calendar=CALENDAR,
    )
    assert result.due_date == date(2021, 7, 12)
    assert result.epoch == 1
    assert run(session, item_id, date(2021, 7, 2)) == []
    assert run(session, item_id, date(2021, 7, 12)) == [f"checkin:{checkin.id}:reminder:e1"]
    assert run(session, item_id, date(2021, 7, 13)) == [f"checkin:{checkin.id}:escalation:1:e1"]
    with pytest.raises(InputError):
        extend_checkin(
            session=session,
            checkin_id=checkin.id,
            new_due=date(2021, 7, 1),
            reason="x",
            decided_by="督查室",
            now=at(date(2021, 7, 13)),
            calendar=CALENDAR,
        )


def test_bad_starts_and_as_of_before_start_are_refused(session: Session) -> None:
    built, _, _ = started_plan(session)
    notices = session.scalar(select(func.count()).select_from(Notice))
    with pytest.raises(DubanError, match="已经开始督办"):
        start_supervision(
            session=session,
            plan_id=built.plan.id,
            now=at(date(2021, 5, 25)),
            policy=POLICY,
            calendar=CALENDAR,
        )
    assert session.scalar(select(func.count()).select_from(Notice)) == notices
    with pytest.raises(InputError, match="早于"):
        run(session, built.items[0].id, date(2021, 5, 1))


@pytest.mark.postgres
def test_two_concurrent_reconciles_send_nothing_twice(own_migrated_engine: Engine) -> None:
    """Its rows are committed: a database of the module's own keeps them from the others."""
    if own_migrated_engine.dialect.name != "postgresql":
        pytest.skip("concurrency is checked on PostgreSQL")
    sessions = make_sessionmaker(own_migrated_engine)
    with transaction(sessions) as session:
        built, _, _ = started_plan(session)
        item_id = built.items[0].id
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with transaction(sessions) as own:
                reconcile_item(
                    session=own,
                    item_id=item_id,
                    as_of=at(date(2021, 7, 6)),
                    policy=POLICY,
                    calendar=CALENDAR,
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        keys = list(session.scalars(select(Notice.key).where(Notice.item_id == item_id)))
        assert len(keys) == len(set(keys))
        assert sum(":escalation:" in key for key in keys) == 2
        mails = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Notice, Notice.id == OutboxMessage.notice_id)
            .where(Notice.item_id == item_id)
        )
        assert mails == len(keys)


def test_overlapping_phases_refuse_to_start_and_write_nothing(
    own_migrated_engine: Engine,
) -> None:
    """Its rows are committed: a database of the module's own keeps them from the others."""
    sessions = make_sessionmaker(own_migrated_engine)
    with transaction(sessions) as session:
        lead = make_department(session)
        built = make_plan(
            session,
            items=[("任务", [lead], [])],
            phases=[
                ("mobilize", "动员部署", date(2021, 3, 1), date(2021, 5, 10)),
                ("implement", "组织实施", date(2021, 5, 1), date(2021, 12, 15)),
            ],
        )
        plan_id = built.plan.id
    with pytest.raises(InputError, match="重叠"), transaction(sessions) as session:
        start_supervision(
            session=session,
            plan_id=plan_id,
            now=at(date(2021, 5, 24)),
            policy=POLICY,
            calendar=CALENDAR,
        )
    with sessions() as session:
        plan = session.get_one(Plan, plan_id)
        assert plan.status == "imported"
        assert plan.started_at is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(Checkin)
                .where(Checkin.item_id == built.items[0].id)
            )
            == 0
        )


def test_reassignment_keeps_history_and_moves_the_work(session: Session) -> None:
    built, lead, _ = started_plan(session)
    item_id = built.items[0].id
    newcomer = make_department(session)
    reassign_item(
        session=session,
        item_id=item_id,
        from_department_id=lead,
        to_department_id=newcomer.id,
        now=at(date(2021, 8, 2)),
        reason="职能调整",
    )
    rows = session.scalars(
        select(Assignment).where(Assignment.item_id == item_id).order_by(Assignment.id)
    ).all()
    ended = [row for row in rows if row.department_id == lead and row.role == "lead"]
    assert ended[0].ended_at == at(date(2021, 8, 2))
    assert [r.department_id for r in rows if r.ended_at is None and r.role == "lead"] == [
        newcomer.id
    ]
    old = session.scalars(
        select(Checkin.status).where(Checkin.item_id == item_id, Checkin.department_id == lead)
    ).all()
    assert set(old) == {"cancelled"}
    result = reconcile_item(
        session=session,
        item_id=item_id,
        as_of=at(date(2021, 8, 2)),
        policy=POLICY,
        calendar=CALENDAR,
    )
    assert result.assignments_notified == 1
    assert result.checkins_created == 5
    assert result.notices == []
    dues = session.scalars(
        select(Checkin.due_date)
        .where(Checkin.item_id == item_id, Checkin.department_id == newcomer.id)
        .order_by(Checkin.due_date)
    ).all()
    assert dues[0] == date(2021, 8, 25)
    sent = run(session, item_id, date(2021, 8, 18))
    assert len(sent) == 1 and sent[0].endswith(":request:e0")
    notice = session.scalars(select(Notice).where(Notice.key == sent[0])).one()
    assert notice.department_id == newcomer.id
