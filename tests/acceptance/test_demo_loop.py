"""The demo's closed loop of 督办, end to end on the real flows, SMTP sink and form over HTTP.

The last ten weeks of the demo year (supervision started on 25 October, so the year's November
and December check-ins are due): from 1 November the simulated 督查室 reviews every report,
returns 学会部's first one as too thin, and 学会部 answers with a second version; the first leader
who then receives an escalation writes an instruction through the link in that email, over
HTTP; from 1 December 学会部 and 办公室 attach evidence to their self-assessment and request
completion, which the office approves the next working day (销号).
"""

from __future__ import annotations

import asyncio
import mailbox
from datetime import date
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import func, select

from duban.demo.office import INSTRUCTION_TEXT, THIN_REASON
from duban.demo.runner import DemoOptions, DemoRun, simulate_year
from duban.demo.services import pick_ports
from duban.runtime import open_store
from models.attachment_table import Attachment
from models.completion import CompletionRequest
from models.directory import Department
from models.instruction import Instruction, InstructionAnswer
from models.plan import Item
from models.settings import Settings, get_settings
from models.supervision import Checkin, CheckinReview, Submission

START, UNTIL = date(2021, 10, 25), date(2021, 12, 31)
pytestmark = [pytest.mark.slow, pytest.mark.prefect]


@pytest.fixture(scope="module")
def loop_year(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> tuple[DemoRun, Settings]:
    data_dir = tmp_path_factory.mktemp("demo-loop")
    smtp_port, portal_port = pick_ports()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUBAN_DATA_DIR", str(data_dir))
        patch.setenv("DUBAN_SMTP_PORT", str(smtp_port))
        patch.setenv("DUBAN_PUBLIC_URL", f"http://127.0.0.1:{portal_port}")
        get_settings.cache_clear()
        settings = get_settings()
        run = asyncio.run(
            simulate_year(
                settings=settings,
                options=DemoOptions(start=START, until=UNTIL),
                smtp_port=smtp_port,
                portal_port=portal_port,
            )
        )
    get_settings.cache_clear()
    return run, settings


def test_a_thin_report_is_returned_and_answered_with_a_second_version(
    loop_year: tuple[DemoRun, Settings],
) -> None:
    run, settings = loop_year
    assert run.loop.returned == 1 and run.loop.accepted > 0
    with open_store(settings).sessions() as session:
        (returned,) = session.scalars(
            select(CheckinReview).where(CheckinReview.decision == "returned")
        ).all()
        assert returned.reason == THIN_REASON and returned.decided_at.date() >= date(2021, 11, 1)
        checkin = session.get_one(Checkin, returned.checkin_id)
        department = session.get_one(Department, checkin.department_id)
        assert department.name == "学会部" and checkin.returns == 1
        versions = session.scalars(
            select(Submission)
            .where(Submission.checkin_id == checkin.id)
            .order_by(Submission.version)
        ).all()
        assert [v.version for v in versions] == [1, 2]
        assert (
            "按退回意见补充" in versions[1].narrative
            and versions[1].submitted_at > returned.decided_at
        )
        decisions = session.scalars(
            select(CheckinReview.decision)
            .where(CheckinReview.checkin_id == checkin.id)
            .order_by(CheckinReview.id)
        ).all()
        assert decisions == ["returned", "accepted"]  # the second version passed review
        contact = department.contact_emails[0]
    box = mailbox.Maildir(settings.mail_store, factory=None, create=False)
    returns = [
        message
        for key in box.iterkeys()
        if (message := message_from_bytes(box.get_bytes(key), policy=default))["X-Duban-Kind"]
        == "returned"
    ]
    assert len(returns) == 1 and contact in str(returns[0]["To"])
    body = returns[0].get_body(preferencelist=("plain",))
    assert body is not None and THIN_REASON in body.get_content()


def test_a_leader_instruction_is_written_by_link_and_answered(
    loop_year: tuple[DemoRun, Settings],
) -> None:
    run, settings = loop_year
    assert run.loop.instructions == 1
    with open_store(settings).sessions() as session:
        (instruction,) = session.scalars(select(Instruction)).all()
        assert instruction.text == INSTRUCTION_TEXT and instruction.source == "link"
        assert instruction.leader_role in {"leader", "head"}
        assert instruction.given_at.date() >= date(2021, 11, 1)
        answers = session.scalars(
            select(InstructionAnswer).where(InstructionAnswer.instruction_id == instruction.id)
        ).all()
        lead = session.scalar(
            select(func.count()).select_from(Item).where(Item.id == instruction.item_id)
        )
        assert lead == 1
        # The departments that report after the instruction answer it in their next version;
        # one that never reports (科协系统社会组织行业党委) leaves it open.
        if answers:
            assert all("已按领导批示要求" in answer.text for answer in answers)


def test_items_are_closed_with_evidence_in_the_review_phase(
    loop_year: tuple[DemoRun, Settings],
) -> None:
    run, settings = loop_year
    assert run.loop.completions_requested > 0
    assert run.loop.completions_approved == run.loop.completions_requested
    assert run.loop.evidence_files >= run.loop.completions_requested
    with open_store(settings).sessions() as session:
        requests = session.scalars(select(CompletionRequest)).all()
        assert len(requests) == run.loop.completions_requested
        assert {r.decision for r in requests} == {"approved"}
        closed = session.scalars(select(Item).where(Item.closed_at.is_not(None))).all()
        assert {item.id for item in closed} == {r.item_id for r in requests}
        assert all(
            item.closed_at is not None and item.closed_at.date() >= date(2021, 12, 1)
            for item in closed
        )
        files = session.scalars(select(Attachment)).all()
        assert len(files) == run.loop.evidence_files
        assert {f.file_name for f in files} == {"年度工作总结佐证.pdf"}
        pending = session.scalar(
            select(func.count())
            .select_from(Checkin)
            .where(Checkin.item_id.in_([i.id for i in closed]), Checkin.status == "pending")
        )
        assert pending == 0  # 销号 cancelled what was still open
    year = run.reports["2021年度"]
    markdown = open(year["md"], encoding="utf-8").read()
    assert "已办结" in markdown and "领导批示" in markdown
