"""Quarter-end 通报 and year-end 总结评估 flows: generate, store, show in the UI, publish.

Each run writes HTML, DOCX and Markdown under `out_dir` (default `<data_dir>/reports`),
upserts the Report row, enqueues the report email to the plan's recipients (once per
report), leaves a markdown artifact and a table artifact on the run, and emits the
pending domain events (`duban.report.generated`) to Prefect.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.db import transaction
from models.settings import get_settings
from tasks.events import publish_pending_events
from tasks.reporting.markdown import render_markdown
from tasks.reporting.outline import fmt_pct
from tasks.reporting.store import FORMATS, GeneratedReport, generate_report
from tasks.store import store_for

ARTIFACT_ROW_BUDGET = 400


@task(name="generate_review_report", cache_policy=NO_CACHE)
def generate_review_report(
    sessions: sessionmaker[Session],
    plan_id: int,
    *,
    as_of: datetime,
    generated_at: datetime,
    out_dir: str,
    quarter: str | None,
    year: bool,
) -> GeneratedReport:
    """Compute and write the report and commit its row, event and email in one transaction."""
    with transaction(sessions) as session:
        return generate_report(
            session=session,
            plan_id=plan_id,
            as_of=as_of,
            generated_at=generated_at,
            out_dir=Path(out_dir),
            quarter=quarter,
            year=year,
            formats=FORMATS,
        )


def department_table(result: GeneratedReport) -> list[dict[str, Any]]:
    """The department ranking as rows for the Prefect table artifact."""
    return [
        {
            "排名": line.rank if line.rank is not None else "—",
            "部室": line.name,
            "应报送": line.counts.due,
            "按时": line.counts.on_time,
            "逾期报送": line.counts.late,
            "未报送": line.counts.missing,
            "按时报送率": fmt_pct(line.counts.on_time_rate),
            "收到督办": line.escalations,
        }
        for line in result.review.departments
    ]


async def _run_review(
    plan_id: int, *, quarter: str | None, year: bool, as_of: datetime | None, out_dir: str | None
) -> dict[str, Any]:
    settings = get_settings()
    moment = clock.resolve(as_of)
    generated_at = clock.now()
    target = out_dir or str((settings.data_dir / "reports").resolve())
    sessions = store_for(settings.effective_database_url).sessions
    result = generate_review_report(
        sessions,
        plan_id,
        as_of=moment,
        generated_at=generated_at,
        out_dir=target,
        quarter=quarter,
        year=year,
    )
    label = result.review.period.label.lower()
    await acreate_markdown_artifact(
        markdown=render_markdown(
            result.review, generated_at=generated_at, row_budget=ARTIFACT_ROW_BUDGET
        ),
        key=f"review-plan{plan_id}-{label}",
        description=f"{result.review.period.title}督办报告",
    )
    await acreate_table_artifact(
        table=department_table(result),
        key=f"review-plan{plan_id}-{label}-departments",
        description=f"{result.review.period.title}各部室报送情况",
    )
    publish_pending_events(sessions=sessions, now=generated_at)
    return {
        "report_id": result.report_id,
        "period": result.review.period.label,
        "files": result.files,
        "summary": result.review.summary,
        "emailed": result.emailed,
    }


@flow(name="quarter_review", flow_run_name="季度督办通报-计划{plan_id}")
async def quarter_review(
    plan_id: int,
    quarter: str | None = None,
    as_of: datetime | None = None,
    out_dir: str | None = None,
) -> dict[str, Any]:
    """The quarter's 通报; `quarter` None means the quarter containing `as_of` (or just ended)."""
    return await _run_review(plan_id, quarter=quarter, year=False, as_of=as_of, out_dir=out_dir)


@flow(name="year_review", flow_run_name="年度总结评估-计划{plan_id}")
async def year_review(
    plan_id: int, as_of: datetime | None = None, out_dir: str | None = None
) -> dict[str, Any]:
    """The year's 总结评估 report, run at the end of the review phase."""
    return await _run_review(plan_id, quarter=None, year=True, as_of=as_of, out_dir=out_dir)
