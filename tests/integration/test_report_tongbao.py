"""The 通报 in the register offices write (see ../shared/reference/tongbao-and-kaohe.md): counts
against 序时进度, what went well, the lagging items one by one with their units, the 考核 ranking,
and 下一步工作要求 as 一是…二是…. The scenario is `tests/report_builders.py`, Q3 2021."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models.plan import Plan
from tasks.reporting.outline import Heading, Paragraph, Table, build_outline
from tasks.reporting.store import generate_report
from tests.report_builders import AS_OF, seed_plan

GENERATED = datetime(2021, 9, 30, 10, 0, tzinfo=UTC)


def _outline(session: Session, tmp_path: Path, *, ahead: bool = False) -> list[object]:
    seeded = seed_plan(session)
    plan = session.get_one(Plan, seeded.plan_id)
    plan.document_number = "某科协发〔2021〕3号"
    session.flush()
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["md"],
        email=False,
    )
    title, blocks = build_outline(result.review, generated_at=GENERATED)
    return [title, *blocks]


def _texts(blocks: list[object]) -> list[str]:
    return [b.text for b in blocks if isinstance(b, Paragraph | Heading)]


def test_opening_cites_the_plan_and_counts_follow_the_pace(
    session: Session, tmp_path: Path
) -> None:
    texts = _texts(_outline(session, tmp_path))
    assert texts[0].startswith("根据《2021年工作要点》（某科协发〔2021〕3号）的督办安排，")
    overview = texts[texts.index("一、总体情况") + 1]
    assert overview == (
        "对照序时进度，纳入督办的5项任务中，已完成1项，达进度1项，欠进度2项，其他1项，欠进度任务占40.0%。"
    )
    assert (
        texts[texts.index("一、总体情况") + 2]
        == "从督查情况看，第3项“第3项任务<i>标题</i>”已完成，推进较好。"
    )


def test_lagging_items_one_by_one_with_their_units(session: Session, tmp_path: Path) -> None:
    blocks = _outline(session, tmp_path)
    texts = _texts(blocks)
    start = texts.index("（一）欠序时进度的任务")
    assert texts[start - 1] == "四、需要关注的问题"
    second, fourth = texts[start + 1], texts[start + 2]
    assert second.startswith(
        "关于“第2项任务<i>标题</i>”事项（第2项）：牵头部室报告推进受阻，进度滞后"
    )
    assert "配合部室：学会部" in second
    assert fourth.startswith(
        "关于“第4项任务<i>标题</i>”事项（第4项）：自2021年6月15日起有到期报送未报，进度滞后"
    )
    assert texts[start + 3] == "（二）逾期未报送和督办事项"


def test_scores_ranked_and_requirements_as_ordinals(session: Session, tmp_path: Path) -> None:
    blocks = _outline(session, tmp_path)
    ranking = next(b for b in blocks if isinstance(b, Table) and b.columns[0] == "考核排名")
    assert [(row[0], row[1][:3], row[2]) for row in ranking.rows] == [
        ("1", "组织部", "95"),
        ("2", "普及部", "94.05"),
        ("3", "办公室", "92.15"),
        ("4", "学会部", "91.33"),
    ]
    assert ranking.rows[3][6] == "逾期报送1.8分；未报送3分；被督办1分"
    texts = _texts(blocks)
    closing = texts[texts.index("五、下步工作要求") + 1]
    assert closing.startswith("一是对欠序时进度的2项任务，牵头部室要分析原因")
    assert "；二是逾期未报送的，于收到本通报后3个工作日内补报并说明原因" in closing
    assert "；三是推进受阻的" in closing and "；四是尚未明确牵头部室的" in closing
    assert closing.endswith("督查室将据此做好下一阶段督办和考核工作。")
