"""Done-when of issue 13: seed 002 supervised through 2021 with the loop of 督办 closed.

The plan (examples/changzhi_2021_work_points.txt, the demo's) is imported with
examples/departments.yaml and started on Monday 2021-05-24 through the CLI, under the shipped
default policy with the office chased after three working days (`review.office_workdays: 3`,
`return_workdays` 5 as shipped). Every working day to 2021-12-31, without a Prefect server:

- 09:00 the daily pass (`tasks.supervision.reconcile_now`, what the `reconcile-items` task
  runs, over every item with `as_of` that morning), run twice: the second run must add no
  notice, outbox row or event; then the relay delivers the outbox to a real SMTP sink;
- 10:00 the 督查室 decides what arrived before today with the functions `duban review
  accept|return` and `duban item completion|close` call: it accepts every report, except
  the two below;
- 11:00 a leader writes an instruction through the link of the escalation email delivered
  to them, over HTTP;
- 15:00 every department answers a check-in on the day it is asked, through the form link in
  its delivered email over HTTP (items 3 and 4) or `record_submission` (the others), except
  the answers held below; 学会部 requests completion of item 4 through the form.

Items 3, 4 and 13 (each with one lead department) are worked out by hand below from the
policy (request 5 working days before the due date, reminder on it, escalation levels 1/2/3
after 1/3/5 working days to contact / 分管领导 / 主要负责人 and 督查室) and the 2021
calendar (端午 06-14; 中秋 09-19..21 with the 调休 Saturday 09-18; 国庆 10-01..07 with the
调休 days Sunday 09-26 and Saturday 10-09).
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import LOCAL_TZ, local_date, resolve
from models.completion import CompletionRequest, ItemClosure
from models.db import make_sessionmaker, transaction
from models.forms import SubmissionForm
from models.instruction import Instruction, InstructionAnswer
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Notice, Submission
from notifications.links import verify_token
from notifications.relay import relay_once
from notifications.sink import ENVELOPE_HEADER, MailSink
from portal.app import create_app
from portal.security import RateLimits
from tasks.calendar_store import work_calendar
from tasks.closure import (
    approve_completion,
    close_item,
    pending_completions,
    reject_completion,
)
from tasks.report_review import accept_report, pending_reviews, return_report
from tasks.submissions import record_submission
from tasks.supervision import reconcile_now

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
START, END = date(2021, 5, 24), date(2021, 12, 31)
OFFICE_USER = "督查室 王敏"

X = "xuehuibu@example.org"  # 学会部 contact
L = "liu.weidong@example.org"  # 学会部 分管领导
H = "zhao.zhigang@example.org"  # 主要负责人 (of every department, the office's too)
OF = "bangongshi@example.org"  # 办公室 = the supervision office (督查室)
P = "pujibu@example.org"  # 普及部 contact

RETURN_REASON = "报送内容过于简单：请补充本期活动场次、参与人数等具体数据。"
INSTRUCTION = "请学会部抓紧推进，逐项对照年度目标补齐短板，十月中旬前报送进展。"
REJECT_REASON = "请补充年度目标完成情况的佐证材料后再申请办结。"
CLOSE_REASON = "经市委研究，该项工作调整由其他单位承担，予以销号。"
SUMMARY = "年度各项目标均已完成，学术交流活动已全部举办。"

# Requests go out 5 working days before each due date (the 25th, moved back to a working day:
# 07-25 is a Sunday -> 07-23, 09-25 a Saturday -> 09-24; the self-assessment on 12-31): for
# 06-25 端午 06-14 is skipped; for 09-24 the 中秋 holidays are skipped and 调休 09-18 counts;
# the first, due 05-25, went out on the first day. Departments answer the day they are asked.
REQUESTS = [
    date(2021, 5, 24),
    date(2021, 6, 18),
    date(2021, 7, 16),
    date(2021, 8, 18),
    date(2021, 9, 16),
    date(2021, 10, 18),
    date(2021, 11, 18),
    date(2021, 12, 24),
]
DUES = [
    date(2021, 5, 25),
    date(2021, 6, 25),
    date(2021, 7, 23),
    date(2021, 8, 25),
    date(2021, 9, 24),
    date(2021, 10, 25),
    date(2021, 11, 25),
    date(2021, 12, 31),
]
# The office accepts a report the next working day: 06-18 (Fri) -> 06-21, 07-16 (Fri) ->
# 07-19, 12-24 (Fri) -> 12-27.
ACCEPTED_ON = [
    date(2021, 5, 25),
    date(2021, 6, 21),
    date(2021, 7, 19),
    date(2021, 8, 19),
    date(2021, 9, 17),
    date(2021, 10, 19),
    date(2021, 11, 19),
    date(2021, 12, 27),
]

# Item 3 (学会部): its July report (v1, 07-16) is returned on Monday 07-19. New due date =
# max(07-23, 07-19 + 5 working days) = Monday 07-26; the ladder restarts under epoch 1: the
# request (due 5 working days before 07-26, i.e. 07-19) goes out in the next pass, 07-20;
# reminder on 07-26, level 1 on 07-27, level 2 (分管领导) on Thursday 07-29. 学会部 answers
# (v2) on Friday 07-30, before level 3 (08-02); the office accepts v2 on Monday 08-02.
ITEM3_NOTICES = [
    (date(2021, 5, 24), "assignment", 0, [X]),
    *[(day, "request", 0, [X]) for day in REQUESTS[:3]],
    (date(2021, 7, 20), "request", 0, [X]),
    (date(2021, 7, 26), "reminder", 0, [X]),
    (date(2021, 7, 27), "escalation", 1, [X]),
    (date(2021, 7, 29), "escalation", 2, [L]),
    *[(day, "request", 0, [X]) for day in REQUESTS[3:]],
]
ITEM3_REVIEWS = [
    *[(due, 1, "accepted", on) for due, on in zip(DUES[:2], ACCEPTED_ON[:2], strict=True)],
    (date(2021, 7, 23), 1, "returned", date(2021, 7, 19)),
    (date(2021, 7, 23), 2, "accepted", date(2021, 8, 2)),
    *[(due, 1, "accepted", on) for due, on in zip(DUES[3:], ACCEPTED_ON[3:], strict=True)],
]
# Every email about item 3: (day, kind, To, Cc). A receipt (回执) on each answer; the return
# to the contacts; level 2 goes to the 分管领导 alone (one email, with their instruct link).
Mail = tuple[date, str, list[str], list[str]]
ITEM3_EMAILS: list[Mail] = sorted(
    [
        (date(2021, 5, 24), "assignment", [X], []),
        *[(day, "request", [X], []) for day in REQUESTS],
        *[(day, "receipt", [X], []) for day in REQUESTS],
        (date(2021, 7, 19), "returned", [X], []),
        (date(2021, 7, 20), "request", [X], []),
        (date(2021, 7, 26), "reminder", [X], []),
        (date(2021, 7, 27), "escalation", [X], []),
        (date(2021, 7, 29), "escalation", [L], []),
        (date(2021, 7, 30), "receipt", [X], []),
    ]
)

# Item 4 (学会部): the September check-in (due 09-24, asked 09-16) is answered only on Monday
# 10-11: reminder 09-24, level 1 on 09-26 (调休 Sunday, +1), level 2 on 09-28 (+3: 分管领导),
# level 3 on 09-30 (+5: 主要负责人 and 督查室). The 分管领导 writes an instruction through
# the link of the level-2 email on 09-28 (emailed to 学会部, the office in Cc); the level-3
# email is two: the office's copy without links and the 主要负责人's own with their link.
# The 10-11 report answers the instruction; the office leaves it: 3 working days to 10-14, so
# the pass of Friday 10-15 escalates it to the office's 主要负责人 (the office in Cc), and the
# office accepts it that morning. On 11-18 学会部 answers November and requests completion
# (申请办结); the office rejects on 11-19 with a reason; 学会部 asks again on Monday 11-22 and
# the office approves on 11-23 (销号): the self-assessment due 12-31 is cancelled, so no
# request on 12-24.
SEPT = REQUESTS.index(date(2021, 9, 16)) + 1
ITEM4_NOTICES = [
    (date(2021, 5, 24), "assignment", 0, [X]),
    *[(day, "request", 0, [X]) for day in REQUESTS[:SEPT]],
    (date(2021, 9, 24), "reminder", 0, [X]),
    (date(2021, 9, 26), "escalation", 1, [X]),
    (date(2021, 9, 28), "escalation", 2, [L]),
    (date(2021, 9, 30), "escalation", 3, [H, OF]),
    (date(2021, 10, 15), "review_overdue", 0, [H, OF]),
    (date(2021, 10, 18), "request", 0, [X]),
    (date(2021, 11, 18), "request", 0, [X]),
]
ITEM4_REVIEWS = [
    *[(due, 1, "accepted", on) for due, on in zip(DUES[:4], ACCEPTED_ON[:4], strict=True)],
    (date(2021, 9, 24), 1, "accepted", date(2021, 10, 15)),
    (date(2021, 10, 25), 1, "accepted", date(2021, 10, 19)),
    (date(2021, 11, 25), 1, "accepted", date(2021, 11, 19)),
]
ITEM4_EMAILS: list[Mail] = sorted(
    [
        (date(2021, 5, 24), "assignment", [X], []),
        *[(day, "request", [X], []) for day in REQUESTS[:7]],
        *[(day, "receipt", [X], []) for day in REQUESTS[:4]],
        (date(2021, 9, 24), "reminder", [X], []),
        (date(2021, 9, 26), "escalation", [X], []),
        (date(2021, 9, 28), "escalation", [L], []),
        (date(2021, 9, 28), "instruction", [X], [OF]),
        (date(2021, 9, 30), "escalation", [OF], []),
        (date(2021, 9, 30), "escalation", [H], []),
        (date(2021, 10, 11), "receipt", [X], []),
        (date(2021, 10, 15), "review_overdue", [H], [OF]),
        (date(2021, 10, 18), "receipt", [X], []),
        (date(2021, 11, 18), "receipt", [X], []),
        (date(2021, 11, 18), "closure", [X], [OF]),  # 申请办结 received
        (date(2021, 11, 19), "closure", [X], [OF]),  # rejected
        (date(2021, 11, 22), "closure", [X], [OF]),  # asked again
        (date(2021, 11, 23), "closure", [X], [OF]),  # 销号
    ]
)

# Item 13 (普及部): answered on time through July; the office closes it directly on Tuesday
# 08-10 (a decision moved the work elsewhere): its pending check-ins are cancelled, so no
# request from 08-18 on.
ITEM13_NOTICES = [
    (date(2021, 5, 24), "assignment", 0, [P]),
    *[(day, "request", 0, [P]) for day in REQUESTS[:3]],
]
ITEM13_EMAILS: list[Mail] = sorted(
    [
        (date(2021, 5, 24), "assignment", [P], []),
        *[(day, "request", [P], []) for day in REQUESTS[:3]],
        *[(day, "receipt", [P], []) for day in REQUESTS[:3]],
        (date(2021, 8, 10), "closure", [P], [OF]),
    ]
)

# Answers held back: (item, original due date, returns so far) -> the day it is given.
HELD = {
    ("3", date(2021, 7, 23), 1): date(2021, 7, 30),
    ("4", date(2021, 9, 24), 0): date(2021, 10, 11),
}
# Reports the office does not simply accept the next working day.
RETURNED = {("3", date(2021, 7, 23))}
REVIEW_HELD = {("4", date(2021, 9, 24)): date(2021, 10, 15)}

FORM_LINK = re.compile(r"https?://[^/\s]+(/c/[A-Za-z0-9._~-]+)")
INSTRUCT_LINK = re.compile(r"https?://[^/\s]+(/i/[A-Za-z0-9._~-]+)")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
ANSWER_FIELD = re.compile(r'<textarea[^>]* name="(instruction_\d+)"')


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ)


@dataclass
class Year:
    """What the simulated year left: its database, its delivered mail and what it saw."""

    sessions: sessionmaker[Session]
    settings: Settings
    app: object
    client: httpx.AsyncClient | None = None
    mail: dict[str, EmailMessage] = field(default_factory=dict)  # by outbox id
    seen: set[str] = field(default_factory=set)  # Maildir keys read
    form_links: dict[int, str] = field(default_factory=dict)  # check-in id -> newest path
    rerun_changes: list[tuple[date, tuple[int, int, int], tuple[int, int, int]]] = field(
        default_factory=list
    )
    relay_again: list[tuple[date, int]] = field(default_factory=list)
    colours: dict[str, dict[date, str]] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    clock: list[datetime] = field(default_factory=list)

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.client is not None
        return self.client

    @asynccontextmanager
    async def open_http(self) -> AsyncIterator[None]:
        """A browser: one client (it keeps the form's CSRF cookie) on the in-process portal."""
        transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://duban.test") as client:
            self.client = client
            yield
        self.client = None


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603
        [str(REPO / ".venv/bin/duban"), *args], env=env, cwd=REPO, check=True, capture_output=True
    )


def _counts(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        int(session.scalar(select(func.count()).select_from(table)) or 0)
        for table in (Notice, OutboxMessage, DomainEvent)
    )


async def _deliver(year: Year, day: date, hour: int) -> None:
    """Relay the outbox at `hour` and read what reached the sink (twice: nothing more)."""
    moment = at(day, hour)
    first = await relay_once(sessions=year.sessions, settings=year.settings, now=moment)
    assert first.dead == 0 and first.retried == 0, first.errors
    again = await relay_once(sessions=year.sessions, settings=year.settings, now=moment)
    if again.claimed:
        year.relay_again.append((day, again.claimed))
    box = mailbox.Maildir(year.settings.mail_store, factory=None, create=False)
    for key in set(box.iterkeys()) - year.seen:
        year.seen.add(key)
        message = message_from_bytes(box.get_bytes(key), policy=default)
        outbox_id = str(message["Message-ID"]).strip("<>").split("@")[0]
        assert outbox_id not in year.mail, "an outbox row was delivered twice"
        assert isinstance(message, EmailMessage)
        year.mail[outbox_id] = message
        for path in FORM_LINK.findall(_text(message)):
            claims = verify_token(path[3:], settings=year.settings, now=moment)
            year.form_links[claims.checkin_id] = path


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def _fields(page: str) -> dict[str, str]:
    return dict(HIDDEN.findall(page))


async def _answer_by_form(year: Year, checkin_id: int, moment: datetime, narrative: str) -> None:
    """The department opens the form link of its newest email about the check-in and answers
    (every leader instruction the form asks about gets its 落实批示情况)."""
    year.clock[0] = moment
    path = year.form_links[checkin_id]
    page = await year.http.get(path)
    assert page.status_code == 200, page.text
    fields = _fields(page.text) | {"status": "on_track", "narrative": narrative}
    for name in ANSWER_FIELD.findall(page.text):
        fields[name] = "已按领导批示要求加快推进，本期目标已补齐。"
    response = await year.http.post(path, data=fields)
    assert response.status_code == 200, response.text


async def _request_completion(year: Year, path: str, moment: datetime) -> None:
    year.clock[0] = moment
    form = await year.http.get(f"{path}/close")
    assert form.status_code == 200 and 'name="summary"' in form.text, form.text
    response = await year.http.post(f"{path}/close", data=_fields(form.text) | {"summary": SUMMARY})
    assert response.status_code == 200, response.text


def _mail_of(year: Year, *, kind: str, to: str, day: date) -> EmailMessage:
    (message,) = [
        m
        for m in year.mail.values()
        if m["X-Duban-Kind"] == kind
        and to in str(m["To"])
        and local_date(datetime.fromisoformat(_iso(m)).astimezone(LOCAL_TZ)) == day
    ]
    return message


def _iso(message: EmailMessage) -> str:
    return parsedate_to_datetime(str(message["Date"])).isoformat()


def _office_decides(year: Year, session: Session, day: date) -> None:
    moment = at(day, 10)
    numbers = {item_id: number for number, item_id in year.items.items()}
    for review in pending_reviews(session, as_of=moment):
        candidate = review.candidate
        if local_date(candidate.submitted_at) >= day or candidate.item_id not in numbers:
            continue
        checkin = session.get_one(Checkin, candidate.checkin_id)
        key = (numbers[candidate.item_id], checkin.original_due_date)
        if key in RETURNED and checkin.returns == 0:
            return_report(session, checkin.id, OFFICE_USER, RETURN_REASON, moment)
        elif REVIEW_HELD.get(key, day) <= day:
            accept_report(session, checkin.id, OFFICE_USER, moment)
    for request in pending_completions(session=session, plan_id=1):
        if local_date(request.requested_at) >= day:
            continue
        earlier = session.scalar(
            select(func.count())
            .select_from(CompletionRequest)
            .where(CompletionRequest.item_id == request.item_id)
        )
        if earlier == 1:
            reject_completion(session, request.request_id, OFFICE_USER, REJECT_REASON, moment)
        else:
            approve_completion(session, request.request_id, OFFICE_USER, moment)
    if day == date(2021, 8, 10):
        close_item(session, year.items["13"], OFFICE_USER, CLOSE_REASON, moment)


async def _departments_answer(year: Year, day: date) -> None:
    """Every check-in asked about (it has a notice) and pending is answered today at 15:00,
    except the held ones; items 3 and 4 through the form over HTTP."""
    moment = at(day, 15)
    numbers = {item_id: number for number, item_id in year.items.items()}
    with year.sessions() as session:
        asked = set(
            session.scalars(select(Notice.checkin_id).where(Notice.checkin_id.is_not(None)))
        )
        pending = [
            (c.id, c.item_id, c.department_id, c.original_due_date, c.returns)
            for c in session.scalars(
                select(Checkin).where(Checkin.status == "pending").order_by(Checkin.id)
            )
            if c.id in asked
        ]
    for checkin_id, item_id, department_id, due, returns in pending:
        number = numbers[item_id]
        if HELD.get((number, due, returns), day) > day:
            continue
        if number in {"3", "4"}:
            await _answer_by_form(
                year, checkin_id, moment, f"第{number}项：按计划推进（第{returns + 1}版）"
            )
            continue
        with transaction(year.sessions) as session:
            record_submission(
                session=session,
                checkin_id=checkin_id,
                department_id=department_id,
                form=SubmissionForm(status="on_track", narrative="按计划推进"),
                source="cli",
                now=moment,
            )


async def _leader_instructs(year: Year, day: date) -> None:
    if day != date(2021, 9, 28):
        return
    message = _mail_of(year, kind="escalation", to=L, day=day)
    (path,) = INSTRUCT_LINK.findall(_text(message))
    year.clock[0] = at(day, 11)
    page = await year.http.get(path)
    assert page.status_code == 200, page.text
    response = await year.http.post(path, data=_fields(page.text) | {"text": INSTRUCTION})
    assert response.status_code == 200, response.text


async def _completion_requests(year: Year, day: date) -> None:
    checkin_of = {
        date(2021, 11, 18): ("4", date(2021, 11, 25)),
    }
    if day in checkin_of:
        number, due = checkin_of[day]
        with year.sessions() as session:
            checkin_id = session.scalars(
                select(Checkin.id).where(
                    Checkin.item_id == year.items[number], Checkin.original_due_date == due
                )
            ).one()
        await _request_completion(year, year.form_links[checkin_id], at(day, 15, 30))
    if day == date(2021, 11, 22):
        # Asked again from the link in the rejection email (the next check-in's form).
        message = _mail_of(year, kind="closure", to=X, day=date(2021, 11, 19))
        (path,) = set(FORM_LINK.findall(_text(message)))
        await _request_completion(year, path, at(day, 15))


async def _run_year(year: Year) -> None:
    """Every day from START to END (module doc), the portal served in-process over HTTP."""
    sessions = year.sessions
    with sessions() as session:
        year.items = {
            i.number: i.id for i in session.scalars(select(Item).where(Item.plan_id == 1))
        }
        calendar = work_calendar(session=session)
    year.colours = {number: {} for number in ("3", "4")}
    ids = sorted(year.items.values())
    async with year.open_http():
        day = START
        while day <= END:
            if calendar.is_workday(day):
                reconcile_now(sessions, 1, ids, resolve(day))
                with sessions() as session:
                    before = _counts(session)
                reconcile_now(sessions, 1, ids, resolve(day))
                with sessions() as session:
                    after = _counts(session)
                    for number in year.colours:
                        colour = session.get_one(Item, year.items[number]).colour
                        year.colours[number][day] = colour
                if after != before:
                    year.rerun_changes.append((day, before, after))
                await _deliver(year, day, 9)
                with transaction(sessions) as session:
                    _office_decides(year, session, day)
                await _deliver(year, day, 10)
                await _leader_instructs(year, day)
                await _departments_answer(year, day)
                await _completion_requests(year, day)
                await _deliver(year, day, 16)
            day += timedelta(days=1)


@pytest.fixture(scope="module")
def year(own_migrated_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Year]:
    url = own_migrated_engine.url.render_as_string(hide_password=False)
    data_dir = tmp_path_factory.mktemp("loop-year")
    policy = data_dir / "policy.yaml"
    policy.write_text("review:\n  checkins: lead\n  office_workdays: 3\n", encoding="utf-8")
    with MailSink(path=data_dir / "mail") as sink, pytest.MonkeyPatch.context() as patch:
        env = {
            "DUBAN_DATA_DIR": str(data_dir),
            "DUBAN_DATABASE_URL": url,
            "DUBAN_SMTP_PORT": str(sink.port),
            "DUBAN_PUBLIC_URL": "http://duban.test",
        }
        for name, value in env.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        env = {**os.environ, **env}
        _cli(env, "departments", "import", "examples/departments.yaml")
        _cli(
            env,
            *("plan", "import", "examples/changzhi_2021_work_points.txt"),
            *("--departments", "examples/departments.yaml", "--yes"),
        )
        _cli(env, "start", "1", "--as-of", START.isoformat(), "--policy", str(policy))
        settings = get_settings()
        sessions = make_sessionmaker(own_migrated_engine)
        clock = [at(START, 9)]
        app = create_app(
            settings,
            sessions,
            now=lambda: clock[0],
            publish=lambda _sessions, _now: 0,
            limits=RateLimits(per_address=10**6, per_token_get=10**6, per_token_post=10**6),
        )
        year = Year(sessions=sessions, settings=settings, app=app, clock=clock)
        asyncio.run(_run_year(year))
        yield year
    get_settings.cache_clear()


def _notices(session: Session, item_id: int) -> list[tuple[date, str, int, list[str]]]:
    rows = session.scalars(
        select(Notice).where(Notice.item_id == item_id).order_by(Notice.decided_at, Notice.id)
    ).all()
    return [
        (local_date(n.decided_at), n.kind, n.level, [r["email"] for r in n.recipients])
        for n in rows
    ]


LOOP_ITEM_EVENTS = (
    "duban.item.instructed",
    "duban.item.completion_requested",
    "duban.item.completion_rejected",
    "duban.item.closed",
    "duban.item.reopened",
)
REVIEW_EVENTS = ("duban.checkin.accepted", "duban.checkin.returned")


def _events(session: Session, resource: str, types: tuple[str, ...]) -> list[tuple[date, str]]:
    rows = session.execute(
        select(DomainEvent.occurred_at, DomainEvent.type)
        .where(DomainEvent.resource_id == resource, DomainEvent.type.in_(types))
        .order_by(DomainEvent.occurred_at, DomainEvent.id)
    ).tuples()
    return [(local_date(when), kind) for when, kind in rows]


def _reviews(session: Session, item_id: int) -> list[tuple[date, int, str, date]]:
    rows = session.execute(
        select(Checkin.original_due_date, Submission.version, CheckinReview)
        .join(Checkin, Checkin.id == CheckinReview.checkin_id)
        .join(Submission, Submission.id == CheckinReview.submission_id)
        .where(Checkin.item_id == item_id)
        .order_by(Checkin.original_due_date, CheckinReview.id)
    ).tuples()
    return [(due, version, row.decision, local_date(row.decided_at)) for due, version, row in rows]


def _emails(year: Year, session: Session, item_id: int) -> list[Mail]:
    """Every outbox row about `item_id` (by its business key), as delivered: day, kind and the
    To and Cc headers of the message the SMTP sink received."""
    rows = session.scalars(select(OutboxMessage)).all()
    notices = dict(session.execute(select(Notice.id, Notice.item_id)).tuples().all())
    receipts = dict(
        session.execute(
            select(Submission.id, Checkin.item_id).join(
                Checkin, Checkin.id == Submission.checkin_id
            )
        )
        .tuples()
        .all()
    )
    returns = dict(
        session.execute(
            select(CheckinReview.id, Checkin.item_id).join(
                Checkin, Checkin.id == CheckinReview.checkin_id
            )
        )
        .tuples()
        .all()
    )
    instructions = dict(session.execute(select(Instruction.id, Instruction.item_id)).tuples().all())
    requests = dict(
        session.execute(select(CompletionRequest.id, CompletionRequest.item_id)).tuples().all()
    )
    closures = dict(session.execute(select(ItemClosure.id, ItemClosure.item_id)).tuples().all())
    found: list[Mail] = []
    for row in rows:
        prefix, _, rest = row.key.partition(":")
        number = int(rest.split(":")[0]) if rest.split(":")[0].isdigit() else 0
        owner = {
            "notice": notices.get(row.notice_id or 0),
            "receipt": receipts.get(number),
            "returned": returns.get(number),
            "instruction": instructions.get(number),
            "completion": requests.get(number),
            "closure": closures.get(number),
        }.get(prefix)
        if owner != item_id:
            continue
        message = year.mail[row.id]  # delivered
        to = [a.strip() for a in str(message["To"]).split(",")] if message["To"] else []
        cc = [a.strip() for a in str(message["Cc"]).split(",")] if message["Cc"] else []
        assert (to, cc) == (row.to_addrs, row.cc_addrs), row.key
        envelope = str(message[ENVELOPE_HEADER]).split(", ")
        assert envelope == [*to, *cc], row.key  # what the SMTP server was given
        found.append((local_date(row.created_at), row.kind, row.to_addrs, row.cc_addrs))
    return sorted(found)


def test_rerunning_any_day_changes_nothing_and_every_email_is_delivered_once(year: Year) -> None:
    assert year.rerun_changes == []
    assert year.relay_again == []
    with year.sessions() as session:
        outbox = {row.id: row.status for row in session.scalars(select(OutboxMessage))}
    assert set(outbox.values()) == {"sent"}
    assert set(year.mail) == set(outbox)


def test_item_3_returned_and_answered_again_by_hand(year: Year) -> None:
    item_id = year.items["3"]
    with year.sessions() as session:
        assert _notices(session, item_id) == ITEM3_NOTICES
        assert _reviews(session, item_id) == ITEM3_REVIEWS
        assert _emails(year, session, item_id) == ITEM3_EMAILS
        july = session.scalars(
            select(Checkin).where(
                Checkin.item_id == item_id, Checkin.original_due_date == date(2021, 7, 23)
            )
        ).one()
        assert (july.due_date, july.returns, july.review) == (date(2021, 7, 26), 1, "accepted")
        returned = session.scalars(
            select(CheckinReview).where(
                CheckinReview.checkin_id == july.id, CheckinReview.decision == "returned"
            )
        ).one()
        assert (returned.previous_due_date, returned.due_date, returned.reason) == (
            date(2021, 7, 23),
            date(2021, 7, 26),
            RETURN_REASON,
        )
        keys = session.scalars(
            select(Notice.key).where(Notice.checkin_id == july.id).order_by(Notice.id)
        ).all()
        assert keys == [
            f"checkin:{july.id}:request:e0",
            f"checkin:{july.id}:request:e1",
            f"checkin:{july.id}:reminder:e1",
            f"checkin:{july.id}:escalation:1:e1",
            f"checkin:{july.id}:escalation:2:e1",
        ]
        assert _events(session, f"duban.checkin.{july.id}", REVIEW_EVENTS) == [
            (date(2021, 7, 19), "duban.checkin.returned"),
            (date(2021, 8, 2), "duban.checkin.accepted"),
        ]
        versions = session.scalars(
            select(Submission.narrative)
            .where(Submission.checkin_id == july.id)
            .order_by(Submission.version)
        ).all()
        assert versions == ["第3项：按计划推进（第1版）", "第3项：按计划推进（第2版）"]
    returned_mail = _mail_of(year, kind="returned", to=X, day=date(2021, 7, 19))
    assert RETURN_REASON in _text(returned_mail) and "2021年7月26日" in _text(returned_mail)
    colours = year.colours["3"]
    assert colours[date(2021, 7, 26)] == "green"  # due today, not yet late
    assert colours[date(2021, 7, 27)] == "amber"
    assert colours[date(2021, 7, 29)] == "red"
    assert colours[date(2021, 8, 2)] == "green"  # answered: not red for the return
    assert colours[END] == "green"


def test_item_4_instructed_escalated_reviewers_chased_and_closed_by_hand(year: Year) -> None:
    item_id = year.items["4"]
    with year.sessions() as session:
        assert _notices(session, item_id) == ITEM4_NOTICES
        assert _reviews(session, item_id) == ITEM4_REVIEWS
        assert _emails(year, session, item_id) == ITEM4_EMAILS
        (instruction,) = session.scalars(
            select(Instruction).where(Instruction.item_id == item_id)
        ).all()
        assert (instruction.text, instruction.source, instruction.leader_role) == (
            INSTRUCTION,
            "link",
            "leader",
        )
        assert instruction.given_at == at(date(2021, 9, 28), 11)
        (answer,) = session.scalars(
            select(InstructionAnswer).where(InstructionAnswer.instruction_id == instruction.id)
        ).all()
        answered_by = session.get_one(Submission, answer.submission_id)
        assert local_date(answered_by.submitted_at) == date(2021, 10, 11)
        requests = session.execute(
            select(CompletionRequest.requested_at, CompletionRequest.decision)
            .where(CompletionRequest.item_id == item_id)
            .order_by(CompletionRequest.id)
        ).all()
        assert [(local_date(when), decision) for when, decision in requests] == [
            (date(2021, 11, 18), "rejected"),
            (date(2021, 11, 22), "approved"),
        ]
        item = session.get_one(Item, item_id)
        assert item.closed_at is not None and local_date(item.closed_at) == date(2021, 11, 23)
        statuses = session.execute(
            select(Checkin.original_due_date, Checkin.status)
            .where(Checkin.item_id == item_id)
            .order_by(Checkin.original_due_date)
        ).all()
        assert statuses[-1] == (date(2021, 12, 31), "cancelled")
        # Each decision's domain event, written with it.
        assert _events(session, f"duban.item.{item_id}", LOOP_ITEM_EVENTS) == [
            (date(2021, 9, 28), "duban.item.instructed"),
            (date(2021, 11, 18), "duban.item.completion_requested"),
            (date(2021, 11, 19), "duban.item.completion_rejected"),
            (date(2021, 11, 22), "duban.item.completion_requested"),
            (date(2021, 11, 23), "duban.item.closed"),
        ]
        assert all(status == "submitted" for _, status in statuses[:-1])
    # The instruct links: the 分管领导's escalation carries theirs; at level 3 only the
    # 主要负责人's own copy carries a link, the office's copy none.
    level2 = _mail_of(year, kind="escalation", to=L, day=date(2021, 9, 28))
    assert len(INSTRUCT_LINK.findall(_text(level2))) == 1
    head = _mail_of(year, kind="escalation", to=H, day=date(2021, 9, 30))
    office = _mail_of(year, kind="escalation", to=OF, day=date(2021, 9, 30))
    assert len(INSTRUCT_LINK.findall(_text(head))) == 1
    assert INSTRUCT_LINK.findall(_text(office)) == [] and "/i/" not in str(office)
    instructed = _mail_of(year, kind="instruction", to=X, day=date(2021, 9, 28))
    assert INSTRUCTION in _text(instructed)
    chased = _mail_of(year, kind="review_overdue", to=H, day=date(2021, 10, 15))
    assert "2021年10月14日" in _text(chased)
    rejected = _mail_of(year, kind="closure", to=X, day=date(2021, 11, 19))
    assert REJECT_REASON in _text(rejected)
    colours = year.colours["4"]
    assert colours[date(2021, 9, 24)] == "green"
    assert colours[date(2021, 9, 26)] == "amber"
    assert colours[date(2021, 9, 28)] == "red"
    assert colours[date(2021, 10, 12)] == "green"


def test_item_13_closed_by_the_office_by_hand(year: Year) -> None:
    item_id = year.items["13"]
    with year.sessions() as session:
        assert _notices(session, item_id) == ITEM13_NOTICES
        assert _emails(year, session, item_id) == ITEM13_EMAILS
        pending = session.scalar(
            select(func.count())
            .select_from(Checkin)
            .where(Checkin.item_id == item_id, Checkin.status == "pending")
        )
        assert pending == 0
    closed = _mail_of(year, kind="closure", to=P, day=date(2021, 8, 10))
    assert CLOSE_REASON in _text(closed)


def test_old_links_of_settled_checkins_say_so(year: Year) -> None:
    """GET-safe: the old link of an accepted report or a closed item says so, in Chinese,
    and changes nothing."""
    with year.sessions() as session:

        def checkin(number: str, due: date) -> int:
            return session.scalars(
                select(Checkin.id).where(
                    Checkin.item_id == year.items[number], Checkin.original_due_date == due
                )
            ).one()

        accepted = year.form_links[checkin("3", date(2021, 12, 31))]
        closed = year.form_links[checkin("4", date(2021, 11, 25))]
        before = _counts(session)

    async def open_links() -> list[httpx.Response]:
        # Each link while it is valid (30 days after its due date): the November one on
        # 12-20, the year-end one on the last evening.
        opened = []
        async with year.open_http():
            for path, moment in (
                (accepted, at(END, 18)),
                (closed, at(date(2021, 12, 20), 18)),
                (accepted + "x", at(END, 18)),
            ):
                year.clock[0] = moment
                opened.append(await year.http.get(path))
        return opened

    done, ended, bad = asyncio.run(open_links())
    assert done.status_code == 410
    assert "已审核通过" in done.text and "无需再报送" in done.text
    assert "2021年12月27日" in done.text
    assert ended.status_code == 410 and "已办结" in ended.text and "2021年11月23日" in ended.text
    assert bad.status_code == 404 and "链接不可用" in bad.text
    with year.sessions() as session:
        assert _counts(session) == before
