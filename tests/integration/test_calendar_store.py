"""Imported work calendars on SQLite and PostgreSQL: stored, shared, and re-dating check-ins."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.calendar import CalendarSource, DayKind
from models.calendar_days import CalendarDay
from models.calendar_file import CalendarFile, parse_calendar_file
from models.outbox import DomainEvent
from models.policy import parse_policy
from models.supervision import Checkin
from tasks.assignment import start_supervision
from tasks.calendar_store import import_calendar, plans_without_calendar, work_calendar
from tests.builders import make_department, make_plan

NOW = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
PHASES = (
    ("mobilize", "动员部署", date(2027, 1, 4), date(2027, 2, 28)),
    ("implement", "组织实施", date(2027, 3, 1), date(2027, 11, 30)),
    ("review", "总结验收", date(2027, 12, 1), date(2027, 12, 31)),
)


def _file(body: str) -> CalendarFile:
    return parse_calendar_file("year: 2027\n" + body, path="calendar-2027.yaml")


def _start(session: Session) -> int:
    lead = make_department(session)
    built = make_plan(session, items=[("任务一", [lead], [])], year=2027, phases=PHASES)
    start_supervision(
        session=session,
        plan_id=built.plan.id,
        now=NOW,
        policy=parse_policy(None),
        calendar=work_calendar(session=session),
    )
    session.flush()
    return built.plan.id


def _dues(session: Session, plan_id: int) -> dict[int, date]:
    from models.plan import Item

    rows = session.execute(
        select(Checkin.id, Checkin.due_date)
        .join(Item, Item.id == Checkin.item_id)
        .where(Item.plan_id == plan_id)
    )
    return dict(rows.tuples().all())


def test_a_year_without_data_is_found_and_an_import_covers_it(session: Session) -> None:
    plan_id = _start(session)
    assert plan_id in [p.id for p in plans_without_calendar(session=session)]
    assert work_calendar(session=session).source(2027) is CalendarSource.weekends_only
    outcome = import_calendar(
        session=session,
        calendar_file=_file("holidays:\n  - {name: 元旦, dates: [2027-01-01]}\n"),
        source_name="calendar-2027.yaml",
        now=NOW,
    )
    assert outcome.applied and not outcome.moves
    calendar = work_calendar(session=session)
    assert calendar.source(2027) is CalendarSource.imported
    assert not calendar.is_workday(date(2027, 1, 1))
    assert plan_id not in [p.id for p in plans_without_calendar(session=session)]
    # The same rows give the same shared calendar instance (its cache and warnings survive).
    assert work_calendar(session=session) is calendar


def test_reimport_that_moves_due_dates_waits_for_confirmation(session: Session) -> None:
    plan_id = _start(session)
    before = _dues(session, plan_id)
    assert before
    checkin_id, due = min(before.items(), key=lambda pair: pair[1])
    assert due.weekday() < 5
    holiday_file = _file(f"holidays:\n  - name: 测试假日\n    dates: [{due.isoformat()}]\n")
    shown = import_calendar(
        session=session, calendar_file=holiday_file, source_name="c.yaml", now=NOW
    )
    assert not shown.applied
    assert [(m.checkin_id, m.old) for m in shown.moves] == [(checkin_id, due)]
    assert shown.moves[0].new < due
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == 0
    assert _dues(session, plan_id) == before

    applied = import_calendar(
        session=session, calendar_file=holiday_file, source_name="c.yaml", now=NOW, confirm=True
    )
    assert applied.applied
    session.expire_all()
    after = _dues(session, plan_id)
    assert after[checkin_id] == shown.moves[0].new
    assert {k: v for k, v in after.items() if k != checkin_id} == {
        k: v for k, v in before.items() if k != checkin_id
    }
    moved = session.get_one(Checkin, checkin_id)
    assert moved.original_due_date == moved.due_date
    event = session.scalars(
        select(DomainEvent).where(DomainEvent.type == "duban.calendar.imported")
    ).one()
    assert event.payload["moved_checkins"] == [checkin_id]


def test_closures_file_keeps_the_national_days(session: Session) -> None:
    national = _file(
        "holidays:\n  - {name: 元旦, dates: [2027-01-01]}\n"
        "workdays:\n  - {name: 春节调休, dates: [2027-02-14]}\n"
    )
    import_calendar(session=session, calendar_file=national, source_name="a.yaml", now=NOW)
    closures = _file("closures:\n  - {name: 单位年休, dates: [2027-08-02]}\n")
    import_calendar(session=session, calendar_file=closures, source_name="b.yaml", now=NOW)
    kinds = dict(session.execute(select(CalendarDay.day, CalendarDay.kind)).tuples().all())
    assert {d: DayKind(k) for d, k in kinds.items()} == {
        date(2027, 1, 1): DayKind.holiday,
        date(2027, 2, 14): DayKind.workday,
        date(2027, 8, 2): DayKind.closure,
    }
    replaced = _file("holidays:\n  - {name: 元旦, dates: [2027-01-01]}\n")
    import_calendar(session=session, calendar_file=replaced, source_name="c.yaml", now=NOW)
    days = set(session.scalars(select(CalendarDay.day)))
    assert days == {date(2027, 1, 1), date(2027, 8, 2)}


@pytest.mark.prefect
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_daily_pass_warns_once_in_its_run_log(
    prefect_harness: None, configured_database: str
) -> None:
    from flows.calendar_gates import supervise_plan_on_workdays
    from tasks import calendar_store

    calendar_store._built.clear()
    heard: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    run_logger = logging.getLogger("prefect.flow_runs")
    run_logger.addHandler(handler)
    try:
        for saturday_or_sunday in (date(2099, 3, 7), date(2099, 3, 8)):
            state = await supervise_plan_on_workdays(
                plan_id=1, as_of=saturday_or_sunday, return_state=True
            )
            assert state.is_completed() and state.name == "NonWorkday"
    finally:
        run_logger.removeHandler(handler)
    warnings = [message for message in heard if "2099年" in message]
    assert len(warnings) == 1, heard
    assert "duban calendar import" in warnings[0]


def test_doctor_names_the_plan_without_calendar_data(configured_database: str) -> None:
    from duban.doctor import check_calendar
    from models.db import make_engine, make_sessionmaker, transaction
    from models.settings import get_settings

    engine = make_engine(configured_database)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        built = make_plan(session, items=[("任务一", [], [])], year=2027, phases=PHASES)
        plan_id = built.plan.id
    check = check_calendar(get_settings())
    assert not check.ok
    assert f"计划 {plan_id}（2027年）没有2027年的节假日数据" in check.detail
    assert "duban calendar import" in check.fix
    with transaction(sessions) as session:
        import_calendar(
            session=session,
            calendar_file=_file("holidays:\n  - {name: 元旦, dates: [2027-01-01]}\n"),
            source_name="c.yaml",
            now=NOW,
        )
    assert check_calendar(get_settings()).ok
    engine.dispose()
