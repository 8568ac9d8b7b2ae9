"""考核 scores from stored rows, worked out by hand for the report scenario (Q3 2021, 30 Sep).

See `tests/report_builders.py` for the scenario; the default rule is in `models/scoring.py`
and `docs/scoring.md`. Pace starts on Jan 1 (the plan was never started) and runs to Dec 31:
on 30 Sep 273 of 365 days have passed, so 200 场次 expects 149.6 and 学会部's 150 is 达进度.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy.orm import Session

from models.vocabulary import DeductionKind, ItemProgress
from tasks.scoring import DETAIL_COLUMNS, SCORE_COLUMNS, department_scores, write_xlsx
from tests.report_builders import AS_OF, seed_plan


def _by_name(session: Session) -> tuple[dict[str, object], object]:
    seeded = seed_plan(session)
    sheet = department_scores(
        session=session, plan_id=seeded.plan_id, as_of=AS_OF, quarter="2021Q3"
    )
    names = {line.name[:3]: line for line in sheet.scores}
    return names, (sheet, seeded)


def test_each_point_of_each_department(session: Session) -> None:
    names, (sheet, seeded) = _by_name(session)
    xuehui, puji, office, zuzhi = (names[n] for n in ("学会部", "普及部", "办公室", "组织部"))
    # 学会部 leads item 1: Aug 16 reported Aug 20 (4 working days: 1 + 0.2 × 4), Sep 15 missing
    # (3), escalated to level 2 (1); supports item 2 with nothing against it.
    lead = xuehui.tasks[0]
    assert [(d.kind, d.points) for d in lead.deductions] == [
        (DeductionKind.LATE, 1.8),
        (DeductionKind.MISSING, 3.0),
        (DeductionKind.ESCALATION, 1.0),
    ]
    assert "逾期4个工作日" in lead.deductions[0].detail
    assert lead.score == 94.2 and xuehui.tasks[1].score == 100.0
    assert xuehui.weighted_tasks == 1.5 and xuehui.mean == 96.13 and xuehui.load_factor == 0.95
    assert xuehui.score == 91.33 and xuehui.grade == "良好"
    assert (xuehui.on_time, xuehui.late, xuehui.missing) == (1, 1, 1)
    # 普及部: item 2 reported 受阻 and item 4 missed its Jun 15 check-in: 欠进度 on both.
    assert [d.kind for t in puji.tasks for d in t.deductions] == [DeductionKind.BEHIND] * 2
    assert puji.mean == 99.0 and puji.score == 94.05
    # 办公室: Sep 20 reported on Oct 8, after the as-of date: missing.
    assert [d.kind for d in office.deductions] == [DeductionKind.MISSING]
    assert office.score == 92.15
    assert zuzhi.score == 95.0 and zuzhi.grade == "优秀"
    assert [(line.rank, line.name[:3]) for line in sheet.scores] == [
        (1, "组织部"),
        (2, "普及部"),
        (3, "办公室"),
        (4, "学会部"),
    ]
    progress = {number: sheet.progress[seeded.items[number]].progress for number in (1, 2, 3, 4, 5)}
    assert progress == {
        1: ItemProgress.ON_PACE,
        2: ItemProgress.BEHIND,
        3: ItemProgress.DONE,
        4: ItemProgress.BEHIND,
        5: ItemProgress.OTHER,
    }


def test_excel_export_holds_the_ranking_and_every_deduction(
    session: Session, tmp_path: Path
) -> None:
    _, (sheet, _) = _by_name(session)
    path = write_xlsx(sheet, tmp_path / "考核.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["考核得分", "扣分明细"]
    summary = [[cell.value for cell in row] for row in book["考核得分"].iter_rows()]
    assert "部门考核得分" in str(summary[0][0])
    assert tuple(summary[1]) == SCORE_COLUMNS
    assert [(row[0], str(row[1])[:3], row[2]) for row in summary[2:]] == [
        (1, "组织部", 95),
        (2, "普及部", 94.05),
        (3, "办公室", 92.15),
        (4, "学会部", 91.33),
    ]
    details = [[cell.value for cell in row] for row in book["扣分明细"].iter_rows()]
    assert tuple(details[0]) == DETAIL_COLUMNS
    lost = [row for row in details[1:] if row[6]]
    assert sum(row[6] for row in lost) == 1.8 + 3 + 1 + 1 + 1 + 3
    assert {row[4] for row in lost} == {"逾期报送", "未报送", "被督办", "欠序时进度"}


def test_a_returned_report_costs_its_department(session: Session) -> None:
    from sqlalchemy import select

    from models.supervision import Checkin, CheckinReview, Submission
    from tests.report_builders import at

    seeded = seed_plan(session)
    first = session.scalars(
        select(Submission).join(Checkin).where(Checkin.item_id == seeded.items[1], Checkin.seq == 1)
    ).one()
    session.add(
        CheckinReview(
            checkin_id=first.checkin_id,
            submission_id=first.id,
            decision="returned",
            reason="内容过于简单",
            reviewer="督查室",
            decided_at=at(7, 16),
        )
    )
    session.flush()
    sheet = department_scores(
        session=session, plan_id=seeded.plan_id, as_of=AS_OF, quarter="2021Q3"
    )
    xuehui = next(line for line in sheet.scores if line.name.startswith("学会部"))
    returned = [d for d in xuehui.deductions if d.kind == DeductionKind.RETURNED]
    assert [(d.points, d.detail) for d in returned] == [(0.5, "2021-07-16报告被退回")]
    assert xuehui.tasks[0].score == 93.7  # 94.2 - 0.5
