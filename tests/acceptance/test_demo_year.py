"""The demo's simulated year, end to end, checked against numbers worked out independently.

The expected counts come from the fixture's hand-checked lead departments, the default
policy's figures (request 5 working days ahead, reminder on the due date, escalation levels
at +1/+3/+5 working days, monthly check-ins on the 25th) and the demo script's offsets;
the run goes through the real flows, SMTP sink, form over HTTP and review flows.
"""

from __future__ import annotations

import asyncio
import json
import mailbox
import re
from collections import Counter
from datetime import date, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from duban.demo.runner import DemoOptions, DemoRun, at
from duban.demo.script import DEMO_SCRIPT
from duban.demo.services import SimClock
from duban.demo.summary import summarise
from duban.runtime import open_store
from models.calendar import WorkCalendar
from models.directory import Department
from models.outbox import OutboxMessage
from models.settings import Settings
from models.supervision import Notice
from portal.app import create_app
from portal.security import RateLimits
from tests.acceptance.demo_support import run_demo

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "002_changzhi_2021_work_points.expected.json"
START, UNTIL = date(2021, 5, 24), date(2021, 10, 15)
REQUEST_AHEAD, LADDER = 5, {1: 1, 2: 3, 3: 5}
EXTENSION_WORKDAYS = 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.prefect,
    pytest.mark.skipif(not FIXTURE.is_file(), reason="shared fixtures not present"),
]


def due_dates(cal: WorkCalendar) -> list[date]:
    """Monthly check-ins on the 25th (previous working day if needed), from the start on."""
    dates = []
    for month in range(5, 12):
        nominal = date(2021, month, 25)
        while not cal.is_workday(nominal):
            nominal -= timedelta(days=1)
        if nominal >= START:
            dates.append(nominal)
    return dates


def expected(cal: WorkCalendar) -> tuple[Counter[tuple[str, int]], dict[str, Counter[str]]]:
    """Notices by (kind, level) and each department's on-time/late/missing, by hand rules."""
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))["items"]
    notices: Counter[tuple[str, int]] = Counter()
    punctuality: dict[str, Counter[str]] = {}
    for item in items:
        for dept in item["lead_departments"]:
            notices[("assignment", 0)] += 1
            behaviour = DEMO_SCRIPT[dept]
            tally = punctuality.setdefault(dept, Counter())
            for due in due_dates(cal):
                epochs = [due]
                if behaviour.extension_month == due.month:
                    epochs.append(cal.add_workdays(due, EXTENSION_WORKDAYS))
                final = epochs[-1]
                offset = behaviour.offset_workdays
                submitted = None if offset is None else cal.add_workdays(final, offset)
                for index, deadline in enumerate(epochs):
                    last_day = UNTIL if index == len(epochs) - 1 else cal.add_workdays(due, -1)
                    first_pass = START if index == 0 else cal.add_workdays(due, -1)
                    ask = max(cal.add_workdays(deadline, -REQUEST_AHEAD), first_pass)
                    if not cal.is_workday(ask):
                        ask = cal.add_workdays(ask, 1)
                    if ask < deadline and ask <= last_day:
                        notices[("request", 0)] += 1
                    stops = submitted if submitted is not None else date.max
                    if deadline <= last_day and stops >= deadline:
                        notices[("reminder", 0)] += 1
                    for level, delay in LADDER.items():
                        fires = cal.add_workdays(deadline, delay)
                        if fires <= last_day and stops >= fires:
                            notices[("escalation", level)] += 1
                if due > UNTIL:
                    continue
                if submitted is None or submitted > UNTIL:
                    tally["missing"] += 1
                elif submitted <= final:
                    tally["on_time"] += 1
                else:
                    tally["late"] += 1
    return notices, punctuality


@pytest.fixture(scope="module")
def demo_year(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> tuple[DemoRun, Settings]:
    return run_demo(tmp_path_factory, "demo", DemoOptions(start=START, until=UNTIL))


def test_closing_numbers_match_the_policy_and_the_script(
    demo_year: tuple[DemoRun, Settings],
) -> None:
    run, settings = demo_year
    cal = WorkCalendar()
    want_notices, want_punctuality = expected(cal)
    store = open_store(settings)
    with store.sessions() as session:
        summary = summarise(
            session=session, plan_id=run.plan_id, until=UNTIL, mail_store=settings.mail_store
        )
    assert Counter(summary.notices) == want_notices
    got = {
        line.name: Counter(on_time=line.on_time, late=line.late, missing=line.missing)
        for line in summary.departments
    }
    assert {name: +tally for name, tally in got.items()} == {
        name: +tally for name, tally in want_punctuality.items()
    }
    extensions = 5  # 机关党支部 leads items 1, 2, 15, 16 and 18: one September check-in each
    assert (run.extensions_requested, run.extensions_approved) == (extensions, extensions)
    assert set(run.reports) == {"2021Q2", "2021Q3", "2021年度"}
    for files in run.reports.values():
        assert all(Path(path).stat().st_size > 0 for path in files.values())


def test_every_mail_link_opens_and_escalations_reach_the_right_people(
    demo_year: tuple[DemoRun, Settings],
) -> None:
    _run, settings = demo_year
    directory = yaml.safe_load((ROOT / "examples" / "departments.yaml").read_text("utf-8"))
    people = {entry["name"]: entry for entry in directory["departments"]}
    office = [
        e["contact"]["email"] for e in directory["departments"] if e.get("supervision_office")
    ]
    store = open_store(settings)
    with store.sessions() as session:
        escalated = {
            message_id: (level, name, notice_id)
            for message_id, level, name, notice_id in session.execute(
                select(OutboxMessage.id, Notice.level, Department.name, Notice.id)
                .join(Notice, OutboxMessage.notice_id == Notice.id)
                .join(Department, Department.id == Notice.department_id)
                .where(Notice.kind == "escalation")
            )
        }
    sim = SimClock(at(UNTIL, 18))
    app = create_app(settings, store.sessions, now=sim.now, limits=RateLimits(per_address=10**6))
    link = re.compile(re.escape(settings.public_url) + r"(/c/[A-Za-z0-9._~-]+)")
    box = mailbox.Maildir(settings.mail_store, factory=None, create=False)
    paths: dict[str, datetime] = {}
    escalations = 0
    top: dict[int, list[tuple[str, str]]] = {}
    for key in box.iterkeys():
        message = message_from_bytes(box.get_bytes(key), policy=default)
        kind = str(message["X-Duban-Kind"])
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        if kind in {"request", "reminder", "escalation"}:
            found = set(link.findall(text))
            assert found, f"{kind} mail {key} carries no form link"
            sent = parsedate_to_datetime(str(message["Date"]))
            paths.update(dict.fromkeys(found, sent))
        if kind != "escalation":
            continue
        escalations += 1
        message_id = str(message["Message-ID"]).strip("<>").split("@")[0]
        level, name, notice_id = escalated[message_id]
        person, to = people[name], str(message["To"])
        if level == 1:
            assert person["contact"]["email"] in to
        elif level == 2:
            assert person["leader"]["email"] in to
        else:
            # The head gets an own copy (their instruct link is theirs alone), the office
            # the shared one.
            top.setdefault(notice_id, []).append((person["head"]["email"], to))
    assert escalations > 0
    for copies in top.values():
        heads = [to for head, to in copies if head in to]
        assert len(heads) == 1 and "," not in heads[0], copies
        assert all(any(address in to for _, to in copies) for address in office), copies

    async def open_all() -> Counter[int]:
        transport = httpx.ASGITransport(app=app)
        codes: Counter[int] = Counter()
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
            for path, sent in sorted(paths.items()):
                sim.moment = sent + timedelta(hours=1)  # the link as its reader opens it
                codes[(await client.get(path)).status_code] += 1
        return codes

    opened = asyncio.run(open_all())
    assert set(opened) == {200}, opened
