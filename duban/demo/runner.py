"""The demo driver: import seed 002 and seed 000's 八项行动 (`duban.demo.plans`), start
supervising both, and live through 2021 day by day.

Every step goes through the real parts: the Prefect flows with `as_of`, the outbox relay to
the embedded SMTP server, simulated departments answering through the form over HTTP, a
supervisor approving extension requests, and the quarter and year review flows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from duban.demo.actors import (
    DemoError,
    Inbox,
    answer,
    collect_links,
    request_completion,
    write_instruction,
)
from duban.demo.office import (
    INSTRUCTION_TEXT,
    LoopCounts,
    LoopScript,
    office_decides,
    returned_checkins,
)
from duban.demo.plans import SECOND_PLAN_LABEL, has_work, item_figures, prepare_second_plan
from duban.demo.script import (
    DEMO_SCRIPT,
    SUPERVISOR,
    Action,
    Behaviour,
    CheckinView,
    decide_action,
)
from duban.demo.services import SimClock, local_services, start_prefect_server
from duban.runtime import Store, open_store
from models import clock
from models.calendar import WorkCalendar, default_calendar
from models.db import make_engine, transaction, upgrade
from models.directory import Department
from models.directory_file import load_directory_file
from models.plan_reader.document import read_plan_file
from models.policy import default_policy
from models.settings import Settings
from models.supervision import Checkin, Extension
from notifications.relay import relay_once
from tasks.assignment import start_supervision
from tasks.directory import upsert_directory
from tasks.plan_import import digest_bytes, import_plan, matcher_from_session
from tasks.submissions import approve_extension, list_extensions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLAN_FILE = EXAMPLES / "changzhi_2021_work_points.txt"
DIRECTORY_FILE = EXAMPLES / "departments.yaml"
QUARTER_ENDS = ((2, 6), (3, 9), (4, 12))
PHASE_PREPARE = "准备"
PHASE_SERVER = "等待 Prefect 临时服务器启动"
PHASE_FIRST_DAY = "首次巡检"
PHASE_SUPERVISION = "每日巡检（Prefect 流程）"
PHASE_RELAY = "邮件投递"
PHASE_FORM = "读邮件与表单往返"
PHASE_REPORTS = "通报生成"


@dataclass(frozen=True)
class DemoOptions:
    """What to simulate: the date range, where reports go, and the departments' script."""

    start: date = date(2021, 5, 24)
    until: date = date(2021, 12, 31)
    out_dir: Path | None = None
    script: dict[str, Behaviour] = field(default_factory=lambda: dict(DEMO_SCRIPT))
    loop: LoopScript = field(default_factory=LoopScript)


@dataclass
class DemoRun:
    """What the run produced: the plans, the reports written and the counters of the loop."""

    plan_id: int
    second_plan_id: int = 0  # the 八项行动 (`duban.demo.plans`)
    second_reports: dict[str, dict[str, str]] = field(default_factory=dict)
    reports: dict[str, dict[str, str]] = field(default_factory=dict)
    submissions: int = 0
    extensions_requested: int = 0
    extensions_approved: int = 0
    workdays: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    final_moment: datetime | None = None
    loop: LoopCounts = field(default_factory=LoopCounts)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to `seconds[phase]`."""
        started = perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + perf_counter() - started


def reset_data_dir(settings: Settings) -> None:
    """Delete what earlier runs left in the data dir (database, Prefect home, mail, reports)."""
    for name in ("duban.db", "duban.db-wal", "duban.db-shm"):
        (settings.data_dir / name).unlink(missing_ok=True)
    for name in ("prefect", "mail", "reports"):
        shutil.rmtree(settings.data_dir / name, ignore_errors=True)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """An aware moment at local wall time `hour:minute` on `day`."""
    return datetime.combine(day, time(hour, minute), tzinfo=clock.LOCAL_TZ)


def prepare(settings: Settings, *, start: date) -> tuple[Store, int]:
    """Migrate, load the demo directory, import seed 002 and start supervising it on `start`."""
    upgrade(make_engine(settings.effective_database_url))
    store = open_store(settings)
    moment = at(start, 8, 0)
    directory = load_directory_file(DIRECTORY_FILE)
    parsed = read_plan_file(PLAN_FILE)
    with transaction(store.sessions) as session:
        upsert_directory(session=session, directory=directory, now=moment)
        session.flush()
        outcome = import_plan(
            session=session,
            parsed=parsed,
            source_name=PLAN_FILE.name,
            source_sha256=digest_bytes(PLAN_FILE.read_bytes()),
            now=moment,
            matcher=matcher_from_session(session=session),
        )
        if outcome.status != "created":
            raise DemoError("演示数据已存在：请加 --reset 从头运行。")
        start_supervision(
            session=session,
            plan_id=outcome.plan_id,
            now=moment,
            policy=default_policy(),
            calendar=default_calendar(),
        )
    return store, outcome.plan_id


def _views(session: Session, checkin_ids: list[int]) -> list[CheckinView]:
    rows = session.scalars(
        select(Checkin)
        .where(Checkin.id.in_(checkin_ids))
        .options(selectinload(Checkin.item), selectinload(Checkin.department))
        .order_by(Checkin.id)
    ).all()
    requested = set(
        session.scalars(select(Extension.checkin_id).where(Extension.checkin_id.in_(checkin_ids)))
    )
    return [
        CheckinView(
            checkin_id=row.id,
            item_id=row.item_id,
            department=row.department.name,
            item_number=row.item.number,
            due_date=row.due_date,
            original_due_date=row.original_due_date,
            submitted=row.status != "pending",
            extension_requested=row.id in requested,
            kind=row.kind,
        )
        for row in rows
    ]


def departments_act(
    *,
    store: Store,
    client: httpx.Client,
    inbox: Inbox,
    today: date,
    calendar: WorkCalendar,
    script: dict[str, Behaviour],
    run: DemoRun,
    loop: LoopScript,
) -> None:
    """Let every simulated department do what its script says today, through the form: a
    returned report is answered with a second version, and from `loop.close_from` the
    `loop.closers` attach evidence to their self-assessment and request completion."""
    plans: list[tuple[Action, CheckinView, str, dict[str, float]]] = []
    returned = returned_checkins(store=store, checkin_ids=sorted(inbox.links))
    with store.sessions() as session:
        for view in _views(session, sorted(inbox.links)):
            action = decide_action(view, today=today, calendar=calendar, script=script)
            if action is not None:
                pace = script[view.department].pace
                title, values = item_figures(session, view.item_id, today, pace)
                plans.append((action, view, title, values))
    for action, view, title, values in plans:
        problems = "场地与经费未落实，活动无法按期开展。" if action.status == "blocked" else ""
        closing = (
            action.kind == "submit"
            and today >= loop.close_from
            and view.kind == "self_assessment"
            and view.department in loop.closers
        )
        answer(
            client=client,
            url=inbox.links[action.checkin_id],
            action=action,
            values=values,
            item_title=title,
            problems=problems,
            second_version=action.checkin_id in returned,
            evidence=closing,
        )
        if action.kind == "extend":
            run.extensions_requested += 1
            continue
        run.submissions += 1
        if closing:
            run.loop.evidence_files += 1
            summary = f"{title}：年度任务已全部完成，年度工作总结及佐证材料已随自查报告报送。"
            if request_completion(
                client=client, form_url=inbox.links[action.checkin_id], summary=summary
            ):
                run.loop.completions_requested += 1


def leader_instructs(
    *, client: httpx.Client, inbox: Inbox, today: date, loop: LoopScript, run: DemoRun
) -> None:
    """From `loop.instruct_from`, the first leader who received an escalation with an instruct
    link writes an instruction on that item (once in the year)."""
    if run.loop.instructions or today < loop.instruct_from:
        return
    for item_id, url in sorted(inbox.instruct.items()):
        if clock.local_date(inbox.instruct_since[item_id]) >= loop.instruct_from:
            write_instruction(client=client, url=url, text=INSTRUCTION_TEXT)
            run.loop.instructions += 1
            return


def supervisor_decides(*, store: Store, today: date, now: datetime, run: DemoRun) -> None:
    """Approve every extension request made before today (the supervisor reads them daily)."""
    with transaction(store.sessions) as session:
        for extension in list_extensions(session=session):
            if clock.local_date(extension.requested_at) < today:
                approve_extension(
                    session=session, extension_id=extension.id, decided_by=SUPERVISOR, now=now
                )
                run.extensions_approved += 1


async def simulate_year(
    *,
    settings: Settings,
    options: DemoOptions,
    smtp_port: int,
    portal_port: int,
    on_day: Callable[[date, int], None] = lambda _day, _total: None,
    on_report: Callable[[str, dict[str, str]], None] = lambda _period, _files: None,
) -> DemoRun:
    """Run the whole demo year; `on_day(day, total)` reports progress after each working day,
    `on_report(period, files)` each report written. `DemoRun.seconds` holds the wall time
    per phase (the pass with Prefect's run cost, mail relay, form round trips, reports).

    Each working day `flows.simulate.simulate` runs the plan's supervision pass at 09:00;
    then the day continues here: mail is relayed to the SMTP sink, the supervisor decides
    earlier extension requests, departments answer through the form at 10:00, receipts are
    relayed, and on the last working day of a quarter the quarter review runs at 17:00.
    """
    started = perf_counter()
    prefect_ready = start_prefect_server()
    from flows.review import quarter_review, year_review
    from flows.simulate import simulate
    from flows.supervise import supervise_plan

    calendar = default_calendar()
    store, plan_id = prepare(settings, start=options.start)
    run = DemoRun(plan_id=plan_id, seconds={PHASE_PREPARE: perf_counter() - started})
    with run.timed(PHASE_PREPARE):
        second_id = run.second_plan_id = prepare_second_plan(store, now=at(options.start, 8, 0))
    out_dir = options.out_dir or settings.data_dir / "reports"
    sim = SimClock(at(options.start, 8, 0))
    inbox = Inbox()
    mark = [perf_counter()]
    total = calendar.workdays_between(options.start - timedelta(days=1), options.until)
    quarter_days = {
        calendar.last_workday_of_quarter(options.until.year, q): f"{options.until.year}Q{q}"
        for q, _month in QUARTER_ENDS
    }

    async def after_pass(day: date) -> None:
        if has_work(store, second_id, clock.resolve(day)):
            await supervise_plan(plan_id=second_id, as_of=clock.resolve(day), return_state=True)
        phase = PHASE_SUPERVISION if run.workdays else PHASE_FIRST_DAY
        run.seconds[phase] = run.seconds.get(phase, 0.0) + perf_counter() - mark[0]
        sim.moment = at(day, 9, 30)
        with run.timed(PHASE_RELAY):
            await relay_once(sessions=store.sessions, settings=settings, now=sim.moment)
        with run.timed(PHASE_FORM):
            collect_links(
                inbox=inbox, mail_store=settings.mail_store, settings=settings, now=sim.moment
            )
            supervisor_decides(store=store, today=day, now=sim.moment, run=run)
            office_decides(
                store=store,
                plan_ids=(plan_id, second_id),
                today=day,
                now=sim.moment,
                loop=options.loop,
                counts=run.loop,
            )
            leader_instructs(client=client, inbox=inbox, today=day, loop=options.loop, run=run)
            sim.moment = at(day, 10, 0)
            departments_act(
                store=store,
                client=client,
                inbox=inbox,
                today=day,
                calendar=calendar,
                script=options.script,
                run=run,
                loop=options.loop,
            )
        with run.timed(PHASE_RELAY):
            await relay_once(sessions=store.sessions, settings=settings, now=sim.moment)
        if day in quarter_days:
            sim.moment = at(day, 17, 0)
            with run.timed(PHASE_REPORTS):
                result = await quarter_review(
                    plan_id=plan_id,
                    quarter=quarter_days[day],
                    as_of=sim.moment,
                    out_dir=str(out_dir),
                )
                second = await quarter_review(
                    plan_id=second_id,
                    quarter=quarter_days[day],
                    as_of=sim.moment,
                    out_dir=str(out_dir),
                )
            run.reports[quarter_days[day]] = dict(result["files"])
            on_report(quarter_days[day], run.reports[quarter_days[day]])
            run.second_reports[quarter_days[day]] = dict(second["files"])
            on_report(f"{SECOND_PLAN_LABEL} {quarter_days[day]}", dict(second["files"]))
        run.workdays += 1
        on_day(day, total)
        mark[0] = perf_counter()

    with (
        local_services(
            settings=settings,
            sessions=store.sessions,
            now=sim.now,
            smtp_port=smtp_port,
            portal_port=portal_port,
        ),
        httpx.Client(timeout=30) as client,
    ):
        with run.timed(PHASE_SERVER):
            prefect_ready()
        mark[0] = perf_counter()
        await simulate(plan_id, options.start, options.until, on_day=after_pass, calendar=calendar)
        sim.moment = at(options.until, 17, 0)
        with run.timed(PHASE_FORM):  # the office clears what waits for it before the review
            office_decides(
                store=store,
                plan_ids=(plan_id, second_id),
                today=options.until,
                now=sim.moment,
                loop=options.loop,
                counts=run.loop,
                year_end=True,
            )
        sim.moment = at(options.until, 17, 30)
        with run.timed(PHASE_REPORTS):
            result = await year_review(plan_id=plan_id, as_of=sim.moment, out_dir=str(out_dir))
            second = await year_review(plan_id=second_id, as_of=sim.moment, out_dir=str(out_dir))
        period = f"{options.until.year}年度"
        run.reports[period] = dict(result["files"])
        on_report(period, run.reports[period])
        run.second_reports[period] = dict(second["files"])
        on_report(f"{SECOND_PLAN_LABEL} {period}", run.second_reports[period])
        with run.timed(PHASE_RELAY):
            await relay_once(sessions=store.sessions, settings=settings, now=sim.moment)
    run.final_moment = sim.moment
    return run


def department_names(store: Store) -> list[str]:
    """Every department name, for the summary."""
    with store.sessions() as session:
        return list(session.scalars(select(Department.name).order_by(Department.name)))
