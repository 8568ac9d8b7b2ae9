"""Generate a review report: compute, write the files, upsert the Report row, event, email.

`generate_report` does the file I/O and adds rows to the caller's session without
committing; the caller's transaction commits the Report row, its `duban.report.generated`
domain event and the outbox email together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import LOCAL_TZ
from models.errors import InputError
from models.plan import Plan
from models.report import Report
from models.review import Review
from models.review_figures import build_review, with_pace
from tasks.events import record_event, related
from tasks.files import write_documents
from tasks.orders import orders_in_period
from tasks.reporting.data import choose_period, load_plan_row, load_review_inputs
from tasks.reporting.docx import build_docx
from tasks.reporting.html import render_html
from tasks.reporting.markdown import render_markdown
from tasks.reporting.outline import Paragraph, overview
from tasks.scoring import accountability

FORMATS = ("html", "docx", "md")


@dataclass(frozen=True)
class GeneratedReport:
    """What `generate_report` produced: the review, the Report row id, files and Markdown."""

    review: Review
    report_id: int
    files: dict[str, str]
    markdown: str
    emailed: bool


def render(review: Review, fmt: str, *, generated_at: datetime) -> bytes:
    """One format of the report as bytes (`html`, `docx` or `md`)."""
    if fmt == "html":
        return render_html(review, generated_at=generated_at).encode()
    if fmt == "docx":
        return build_docx(review, generated_at=generated_at)
    if fmt == "md":
        return render_markdown(review, generated_at=generated_at).encode()
    raise InputError(f"不支持的报告格式“{fmt}”，可选：html、docx、md。")


def summary_lines(review: Review) -> list[str]:
    """The overview sentences (section 一), used in the email and on the Report row."""
    return [block.text for block in overview(review) if isinstance(block, Paragraph)]


def generate_report(
    *,
    session: Session,
    plan_id: int,
    as_of: datetime,
    generated_at: datetime,
    out_dir: Path,
    quarter: str | None = None,
    year: bool = False,
    formats: Sequence[str] = FORMATS,
    email: bool = True,
) -> GeneratedReport:
    """Compute and write the report of `plan_id` for the chosen period; does not commit.

    Upserts the Report row keyed by (plan, period), records `duban.report.generated`, and
    (when `email` and the plan names recipients) enqueues the report email once per report.
    Raises `InputError`/`NotFoundError` for an unknown plan, format or a period outside the
    plan's year.
    """
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown or not formats:
        raise InputError(f"不支持的报告格式“{'、'.join(unknown)}”，可选：html、docx、md。")
    plan = load_plan_row(session=session, plan_id=plan_id)
    period = choose_period(plan=plan, as_of=as_of, quarter=quarter, year=year)
    inputs = load_review_inputs(session=session, plan=plan, period=period, as_of=as_of)
    found = accountability(session=session, inputs=inputs)
    start = datetime.combine(period.start, time.min, tzinfo=LOCAL_TZ)
    orders = orders_in_period(session, plan_id=plan.id, start=start, until=as_of)
    review = with_pace(build_review(inputs), inputs, found.progress, found.scores, orders)
    files: dict[str, str] = {}
    markdown = render_markdown(review, generated_at=generated_at)
    for fmt in dict.fromkeys(formats):
        path = (out_dir / f"duban-plan{plan.id}-{period.label}.{fmt}").resolve()
        data = markdown.encode() if fmt == "md" else render(review, fmt, generated_at=generated_at)
        write_documents(path.parent, [(path, data)])
        files[fmt] = str(path)

    report = session.scalars(
        select(Report).where(Report.plan_id == plan.id, Report.period == period.label)
    ).first()
    if report is None:
        report = Report(plan_id=plan.id, period=period.label, kind=period.kind)
        session.add(report)
    report.as_of = as_of
    report.generated_at = generated_at
    report.files = files
    report.summary = {**review.summary, "lines": summary_lines(review)}
    session.flush()
    record_event(
        session=session,
        event_type="duban.report.generated",
        resource_id=f"duban.report.{report.id}",
        occurred_at=generated_at,
        now=generated_at,
        related_resources=[related("plan", plan.id, plan.title)],
        payload={"period": period.label, "kind": period.kind, "formats": sorted(files)},
    )
    emailed = False
    if email:
        emailed = _email(session=session, report=report, review=review, now=generated_at)
    return GeneratedReport(review, report.id, files, markdown, emailed)


def _email(*, session: Session, report: Report, review: Review, now: datetime) -> bool:
    """Enqueue the report email to the plan's `report_recipients`, if it names any; each
    leader among them gets an own copy with instruct links (`tasks.report_instruct`)."""
    from notifications.chat import enqueue_report_chat
    from tasks.report_instruct import enqueue_report_emails

    plan = session.get(Plan, report.plan_id)
    recipients = list(plan.report_recipients) if plan is not None else []
    if not recipients:
        return False
    sent = enqueue_report_emails(
        session=session, report=report, review=review, recipients=recipients, now=now
    )
    if sent:
        enqueue_report_chat(session=session, report=report, recipients=recipients, now=now)
    return sent
