"""A machine-converted traditional plan is stored in Simplified Chinese with its original kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models.directory_file import load_directory_file
from models.plan_reader.document import read_plan_file
from tasks.directory import upsert_directory
from tasks.plan_import import digest_bytes, get_plan, import_plan

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "changzhi_2021_work_points.txt"
NOW = datetime(2021, 6, 1, 2, 0, tzinfo=UTC)


def _import(session: Session, *, keep_script: bool) -> int:
    upsert_directory(
        session=session,
        directory=load_directory_file(ROOT / "examples" / "departments.yaml"),
        now=NOW,
    )
    parsed = read_plan_file(SEED, default_year=2021)
    outcome = import_plan(
        session=session,
        parsed=parsed,
        source_name=SEED.name,
        source_sha256=digest_bytes(SEED.read_bytes()),
        now=NOW,
        keep_script=keep_script,
    )
    session.flush()
    return outcome.plan_id


def test_seed_is_shown_simplified_and_the_original_is_kept(session: Session) -> None:
    plan = get_plan(session=session, plan_ref=_import(session, keep_script=False))
    assert plan.title == "长治市科学技术协会2021年工作要点"
    assert plan.original_title == "長治市科學技術協會2021年工作要點"
    assert plan.organisation == "长治市科学技术协会"
    item = next(i for i in plan.items if i.number == "4")
    assert item.title == "搭建高水平科技开放交流平台"
    assert item.original_title is not None and "開放" in item.original_title
    assert item.original_body is not None and "開放" not in item.body
    assert all(section.original_title for section in plan.sections)
    assert not plan.items[0].needs_assignment


def test_keep_script_stores_the_document_as_written(session: Session) -> None:
    plan = get_plan(session=session, plan_ref=_import(session, keep_script=True))
    assert plan.title == "長治市科學技術協會2021年工作要點"
    assert plan.original_title is None
    assert all(item.original_title is None for item in plan.items)
