"""Reports name each item's evidence (the files of its latest submission), SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.attachments import AttachmentLimits, judge_file
from models.review import year_period
from models.settings import Settings
from models.supervision import Checkin, Submission
from tasks.attachments import NewAttachment, store_attachments
from tasks.reporting.data import load_plan_row, load_review_inputs
from tasks.reporting.store import generate_report
from tests import attachment_files as files
from tests.report_builders import AS_OF, seed_plan

GENERATED = datetime(2021, 9, 30, 10, 0, tzinfo=UTC)
SETTINGS = Settings(secret_key="r" * 40, _env_file=None)


def upload(name: str, data: bytes) -> NewAttachment:
    judged = judge_file(name, io.BytesIO(data), size=len(data), limits=AttachmentLimits())
    return NewAttachment(
        judged=judged,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        spool=io.BytesIO(data),
    )


def names_at(session: Session, plan_id: int, as_of: datetime) -> object:
    plan = load_plan_row(session=session, plan_id=plan_id)
    inputs = load_review_inputs(
        session=session, plan=plan, period=year_period(plan.year), as_of=as_of
    )
    return dict(inputs.attachments)


def latest_submission(session: Session, plan_items: list[int]) -> Submission:
    return session.scalars(
        select(Submission)
        .join(Checkin, Submission.checkin_id == Checkin.id)
        .where(Checkin.item_id.in_(plan_items), Submission.submitted_at <= AS_OF)
        .order_by(Submission.submitted_at.desc(), Submission.id.desc())
        .limit(1)
    ).one()


def test_reports_list_the_latest_submissions_files_per_item(
    session: Session, tmp_path: Path
) -> None:
    seeded = seed_plan(session)
    submission = latest_submission(session, list(seeded.items.values()))
    checkin = session.get_one(Checkin, submission.checkin_id)
    store_attachments(
        session=session,
        files=[upload("活动台账.pdf", files.pdf()), upload("现场照片.png", files.image("PNG"))],
        department_id=checkin.department_id,
        submission_id=submission.id,
        now=submission.submitted_at,
        settings=SETTINGS,
    )
    assert names_at(session, seeded.plan_id, AS_OF) == {
        checkin.item_id: ("活动台账.pdf", "现场照片.png")
    }
    result = generate_report(
        session=session,
        plan_id=seeded.plan_id,
        as_of=AS_OF,
        generated_at=GENERATED,
        out_dir=tmp_path,
        quarter="2021Q3",
        formats=["md", "html"],
        email=False,
    )
    markdown = Path(result.files["md"]).read_text(encoding="utf-8")
    assert markdown.count("附件：2个：活动台账.pdf、现场照片.png") == 1
    assert "附件：2个：活动台账.pdf、现场照片.png" in Path(result.files["html"]).read_text("utf-8")

    newer = Submission(
        checkin_id=submission.checkin_id,
        version=submission.version + 1,
        submitted_at=submission.submitted_at + timedelta(minutes=5),
        status=submission.status,
        narrative="补充说明，无新附件。",
        values={},
    )
    session.add(newer)
    session.flush()
    assert names_at(session, seeded.plan_id, AS_OF) == {}
    before = names_at(session, seeded.plan_id, submission.submitted_at)
    assert before == {checkin.item_id: ("活动台账.pdf", "现场照片.png")}
