"""Reports on a seeded database (SQLite and PostgreSQL): golden figures, DOCX tables, bytes."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import docx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import local_date
from models.errors import InputError, NotFoundError
from models.outbox import DomainEvent, OutboxMessage
from models.plan import Item, Plan
from models.report import Report
from models.supervision import Checkin, Extension, Notice
from tasks.reporting.store import generate_report
from tests.report_builders import AS_OF, seed_plan

GENERATED = datetime(2021, 9, 30, 10, 0, tzinfo=UTC)


def expected_counts(session: Session, plan_id: int) -> dict[str, object]:
    """The summary figures recomputed straight from the ORM rows, independently."""
    as_of_day = local_date(AS_OF)
    start, end = datetime(2021, 7, 1).date(), datetime(2021, 9, 30).date()
    rows = session.scalars(
        select(Checkin).join(Item).where(Item.plan_id == plan_id, Checkin.status != "cancelled")
    ).all()
    outcomes: Counter[str] = Counter()
    for row in rows:
        if not start <= row.due_date <= min(end, as_of_day):
            continue
        submitted = row.submitted_at if row.submitted_at and row.submitted_at <= AS_OF else None
        if submitted is not None:
            on_time = local_date(submitted) <= row.due_date
            outcomes["on_time" if on_time else "late"] += 1
        else:
            outcomes["missing" if row.due_date < as_of_day else "open"] += 1
    notices = session.scalars(
        select(Notice).join(Item).where(Item.plan_id == plan_id, Notice.kind == "escalation")
    ).all()
    levels = Counter(str(n.level) for n in notices if n.decided_at <= AS_OF)
    granted = session.scalars(
        select(Extension)
        .join(Checkin)
        .join(Item)
        .where(Item.plan_id == plan_id, Extension.decision == "approved")
    ).all()
    settled = outcomes["on_time"] + outcomes["late"] + outcomes["missing"]
    return {
        "checkins_due": sum(outcomes.values()),
        "on_time": outcomes["on_time"],
        "late": outcomes["late"],
        "missing": outcomes["missing"],
        "open": outcomes["open"],
        "on_time_rate": round(100 * outcomes["on_time"] / settled, 1),
        "escalations": dict(sorted(levels.items())),
        "extensions_granted": len(granted),
    }


def test_golden_summary_matches_rows(session: Session, tmp_path: Path) -> None:
    seeded = seed_plan(session, recipients=["leader@example.org"])
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        quarter="2021Q3",
    )
    summary = result.review.summary
    expected = expected_counts(session, seeded.plan_id)
    assert {key: summary[key] for key in expected} == expected
    assert expected["checkins_due"] == 8 and expected["missing"] == 2
    assert summary["colours"] == {"green": 1, "amber": 1, "red": 2, "none": 1}
    assert (summary["overdue_items"], summary["unassigned_items"], summary["blocked_items"]) == (
        3,
        1,
        1,
    )
    report = session.scalars(select(Report).where(Report.plan_id == seeded.plan_id)).one()
    assert report.period == "2021Q3" and report.kind == "quarter"
    assert set(report.files) == {"html", "docx", "md"}
    assert all(Path(path).is_file() for path in report.files.values())
    lines = report.summary["lines"]
    # 序时进度 (models/progress.py): item 3 done, 1 on pace (150 of the 149.6 expected on
    # 30 Sep), 2 blocked and 4 missed a check-in are behind, 5 has nothing to measure.
    assert lines[0] == (
        "对照序时进度，纳入督办的5项任务中，已完成1项，达进度1项，欠进度2项，其他1项，"
        "欠进度任务占40.0%。"
    )
    assert lines[1].startswith("从督查情况看，第3项")
    assert lines[3].startswith("本期应报送8次")
    assert report.summary["progress"] == {
        "done": 1,
        "ahead": 0,
        "on_pace": 1,
        "behind": 2,
        "other": 1,
    }
    event = session.scalars(
        select(DomainEvent).where(DomainEvent.resource_id == f"duban.report.{report.id}")
    ).one()
    assert event.type == "duban.report.generated" and event.payload["period"] == "2021Q3"
    message = session.scalars(
        select(OutboxMessage).where(OutboxMessage.key == f"report:{report.id}")
    ).one()
    assert message.to_addrs == ["leader@example.org"]
    assert {a["filename"] for a in message.attachments} == {
        Path(p).name for p in report.files.values()
    }


def test_docx_tables_hold_the_figures(session: Session, tmp_path: Path) -> None:
    seeded = seed_plan(session)
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["docx"],
    )
    document = docx.Document(result.files["docx"])
    tables = document.tables
    items = [t for t in tables if t.rows[0].cells[0].text == "序号" and len(t.columns) == 7]
    assert [len(t.rows) - 1 for t in items] == [2, 2, 1]
    first = [cell.text for cell in items[0].rows[1].cells]
    assert first[0] == "1" and first[3] == "红灯"
    assert 'w:fill="F8D7DA"' in items[0].rows[1].cells[3]._tc.xml
    assert items[0].rows[0]._tr.trPr is not None  # header row repeats on each page
    assert "150/200场次（75.0%）" in first[5]
    assert "<script>alert('x')</script>" in first[6]
    ranking = next(t for t in tables if t.rows[0].cells[0].text == "排名")
    body = [[c.text for c in row.cells] for row in ranking.rows[1:]]
    assert [(row[0], row[1][:3]) for row in body] == [
        ("1", "普及部"),
        ("2", "办公室"),
        ("3", "学会部"),
        ("—", "组织部"),
    ]
    assert body[2][2:8] == ["3", "1", "1", "1", "33.3%", "2"]
    assert len(document.inline_shapes) >= 3
    headings = [
        p.text for p in document.paragraphs if p.style is not None and p.style.name == "Heading 1"
    ]
    assert headings[0] == "一、总体情况" and headings[-1] == "五、下步工作要求"
    assert document.core_properties.created == GENERATED


def test_same_data_gives_identical_bytes(session: Session, tmp_path: Path) -> None:
    seeded = seed_plan(session)
    outputs = []
    for run in ("a", "b"):
        result = generate_report(
            session=session,
            plan_id=seeded.plan_id,
            as_of=AS_OF,
            generated_at=GENERATED,
            out_dir=tmp_path / run,
            quarter="2021Q3",
        )
        outputs.append({fmt: Path(path).read_bytes() for fmt, path in result.files.items()})
    assert outputs[0] == outputs[1]
    later = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=datetime(2021, 10, 1, tzinfo=UTC),
        out_dir=tmp_path / "c",
        quarter="2021Q3",
    )
    assert Path(later.files["html"]).read_bytes() != outputs[0]["html"]
    reports = session.scalars(select(Report).where(Report.plan_id == seeded.plan_id)).all()
    assert len(reports) == 1


def test_html_escapes_and_truncates(session: Session, tmp_path: Path) -> None:
    seeded = seed_plan(session)
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["html"],
    )
    html = Path(result.files["html"]).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "<i>标题</i>" not in html
    assert "😀" in html
    assert "长" * 200 not in html and "长" * 100 in html
    assert "@page" in html and "size: A4" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_bad_inputs(session: Session, tmp_path: Path) -> None:
    seeded = seed_plan(session)
    kwargs = {"session": session, "as_of": AS_OF, "generated_at": GENERATED, "out_dir": tmp_path}
    with pytest.raises(InputError, match="不在计划年度 2021"):
        generate_report(plan_id=seeded.plan_id, quarter="2022Q1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="不支持的报告格式"):
        generate_report(plan_id=seeded.plan_id, formats=["pdf"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        generate_report(plan_id=10**9, **kwargs)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_plan_without_checkins_renders_in_words(session: Session, tmp_path: Path) -> None:
    seed_plan(session)
    empty = Plan(
        title="空计划",
        organisation="某市科协",
        year=2021,
        source_sha256=uuid.uuid4().hex * 2,
        created_at=AS_OF,
    )
    session.add(empty)
    session.flush()
    result = generate_report(
        session=session,
        plan_id=empty.id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        year=True,
    )
    text = result.markdown
    assert result.review.period.label == "2021"
    assert "尚未录入任何任务" in text and "本期尚无到期的报送事项" in text
    assert "总结评估" in text
    assert docx.Document(result.files["docx"]).tables == []
