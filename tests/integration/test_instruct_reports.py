"""Leader instructions in the quarter report and the item's status card (SQLite and
PostgreSQL): the period's instructions, who gave them and how each was answered by then."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.settings import Settings
from models.supervision import Checkin, Submission
from models.vocabulary import DeductionKind, InstructionSource
from tasks.instructions import record_answers, record_instruction
from tasks.reporting.store import generate_report
from tasks.scoring import department_scores
from tasks.status_card import status_card
from tests.report_builders import AS_OF, at, seed_plan

SETTINGS = Settings(secret_key="s" * 40, _env_file=None)


def instruct(
    session: Session,
    item_id: int,
    text: str,
    month: int,
    day: int,
    source: InstructionSource = InstructionSource.LINK,
    given_on: int | None = None,
) -> int:
    recorded = record_instruction(
        session=session,
        item_id=item_id,
        leader_role="leader",
        leader_name="张副主席",
        text=text,
        source=source,
        now=at(month, day),
        given_at=at(month, given_on) if given_on else None,
        settings=SETTINGS,
    )
    return recorded.instruction.id


def answer(
    session: Session, item_id: int, instruction_id: int, text: str, month: int, day: int
) -> None:
    submission = session.scalars(
        select(Submission)
        .join(Checkin, Checkin.id == Submission.checkin_id)
        .where(Checkin.item_id == item_id)
        .order_by(Submission.id)
    ).first()
    assert submission is not None
    record_answers(
        session=session, submission=submission, answers={instruction_id: text}, now=at(month, day)
    )


def test_the_quarter_report_lists_the_periods_instructions_and_answers(
    session: Session, tmp_path: Path
) -> None:
    seeded = seed_plan(session)
    first, second = seeded.items[1], seeded.items[2]
    instruct(session, first, "六月的批示", 6, 1)
    answered = instruct(session, first, "请<b>加快</b>学术活动进度。", 8, 10)
    answer(session, first, answered, "已召开推进会，9月新增活动30场次。", 8, 20)
    instruct(session, second, "经费问题请财务部协调。", 9, 5)
    late = instruct(session, second, "月底前报结果。", 9, 28)
    answer(session, second, late, "已报。", 10, 3)
    instruct(session, first, "十月的批示", 10, 8)

    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=AS_OF,
        out_dir=tmp_path,
        quarter="2021Q3",
    )
    review = result.review
    assert [fact.text for fact in review.instructions] == [
        "请<b>加快</b>学术活动进度。",
        "经费问题请财务部协调。",
        "月底前报结果。",
    ]
    assert review.instructions_answered == 1
    assert (review.summary["instructions"], review.summary["instructions_answered"]) == (3, 1)
    markdown = result.markdown
    assert "领导批示及落实情况" in markdown
    assert "本期领导共作出批示3条，牵头部室已反馈落实情况1条，尚有2条待落实" in markdown
    assert "分管领导 张副主席" in markdown and "已召开推进会，9月新增活动30场次。" in markdown
    assert "请&lt;b&gt;加快&lt;/b&gt;学术活动进度。" in markdown
    assert (
        "六月的批示" not in markdown and "十月的批示" not in markdown and "已报。" not in markdown
    )
    html = Path(result.files["html"]).read_text(encoding="utf-8")
    assert "领导批示及落实情况" in html and "<b>加快</b>" not in html


def test_the_status_card_shows_instructions_and_answers(session: Session) -> None:
    seeded = seed_plan(session)
    item = seeded.items[1]
    answered = instruct(session, item, "请*加快*进度 | 见效", 8, 10)
    answer(session, item, answered, "已落实", 8, 20)
    instruct(session, item, "再接再厉", 9, 5, source=InstructionSource.PAPER, given_on=4)
    card = status_card(session=session, item_id=item, state="OnTrack", today=date(2021, 9, 30))
    assert "**领导批示：** 2条，待落实1条" in card
    assert (
        "2021-08-10 分管领导 张副主席（邮件链接批示）："
        "请\\*加快\\*进度 \\| 见效 — **已反馈落实情况**" in card
    )
    assert "落实情况：已落实" in card
    assert "2021-09-04 分管领导 张副主席（督查室代录（书面批示））：再接再厉 — **待落实**" in card


def test_an_unanswered_instruction_costs_the_lead_department_in_its_score(
    session: Session,
) -> None:
    seeded = seed_plan(session)
    instruct(session, seeded.items[1], "请加快进度。", 8, 10)
    answered = instruct(session, seeded.items[2], "请协调经费。", 8, 11)
    answer(session, seeded.items[2], answered, "经费已落实。", 8, 25)
    sheet = department_scores(
        session=session, plan_id=seeded.plan_id, as_of=AS_OF, quarter="2021Q3"
    )
    names = {line.name[:3]: line for line in sheet.scores}
    charged = [
        (d.kind, d.points, d.detail)
        for line in sheet.scores
        for task in line.tasks
        for d in task.deductions
        if d.kind == DeductionKind.INSTRUCTION
    ]
    assert charged == [
        (DeductionKind.INSTRUCTION, 2.0, "2021-08-10领导批示，截至2021-09-30未报落实情况")
    ]
    assert any(
        d.kind == DeductionKind.INSTRUCTION for t in names["学会部"].tasks for d in t.deductions
    )
