"""Record a check-in on behalf of a department from the Prefect UI (代为报送).

The run pauses with a form (`CheckinEntry`, a Prefect `RunInput`) showing the item, the
department and the targets; a supervisor fills it in and resumes the run, which writes the
same submission the department's form would (`tasks.submissions.record_submission`, source
`prefect_ui`) and emits the pending domain events. The pause is short-lived UI interaction
(default one hour): the check-in's deadline lives in the database, never in this run, so a
run that times out (Failed) loses nothing but the unsent form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from models import clock
from models.db import transaction
from models.errors import InputError
from models.forms import SubmissionForm
from models.settings import get_settings
from models.vocabulary import SelfStatusValue
from tasks.events import publish_pending_events
from tasks.store import store_for
from tasks.submissions import load_checkin, record_submission

SOURCE = "prefect_ui"


class CheckinEntry(RunInput):
    """The form a supervisor fills in the Prefect UI to answer a check-in for a department."""

    status: SelfStatusValue = Field(title="进展状态", description="按计划推进/存在风险/受阻/已完成")
    narrative: str = Field(title="工作进展", description="本期主要工作和成效。")
    values: dict[str, float] = Field(
        default_factory=dict,
        title="指标完成数",
        description='指标编号 → 累计完成数，例如 {"12": 150}；编号见上方说明。',
    )
    problems: str = Field(default="", title="存在问题")
    next_steps: str = Field(default="", title="下一步计划")


def describe_checkin(sessions: sessionmaker[Session], checkin_id: int) -> dict[str, Any]:
    """The check-in's item, department, due date and targets, for the form's description.

    Raises `NotFoundError` for an unknown check-in.
    """
    with sessions() as session:
        checkin = load_checkin(session=session, checkin_id=checkin_id)
        item = checkin.item
        return {
            "department_id": checkin.department_id,
            "department": checkin.department.name,
            "item": f"第{item.number}项 {item.title}",
            "due_date": checkin.due_date.isoformat(),
            "kind": checkin.kind,
            "targets": [(target.id, target.text) for target in item.targets],
        }


def form_description(info: dict[str, Any]) -> str:
    """Markdown shown above the form: what is being answered, for whom, and the target ids."""
    lines = [
        f"### 代{info['department']}报送：{info['item']}",
        f"应报日期：{info['due_date']}。提交后等同于部门通过表单报送（来源记为 Prefect 界面）。",
    ]
    if info["targets"]:
        lines.append("")
        lines.append("指标编号：")
        lines.extend(f"- `{target_id}`：{text}" for target_id, text in info["targets"])
    lines.append("")
    lines.append("进展状态可选：" + "、".join(SelfStatusValue.labels().values()))
    return "\n".join(lines)


def to_submission_form(entry: CheckinEntry) -> SubmissionForm:
    """Validate the UI entry as the department form would; `InputError` in Chinese if bad."""
    try:
        return SubmissionForm(
            status=entry.status,
            narrative=entry.narrative,
            values=entry.values,
            problems=entry.problems,
            next_steps=entry.next_steps,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InputError(f"代报内容不合格：{field}：{error['msg']}") from exc


@task(name="save_submission", cache_policy=NO_CACHE)
async def save_submission(
    sessions: sessionmaker[Session],
    checkin_id: int,
    department_id: int,
    form: SubmissionForm,
    now: datetime,
    key: str,
) -> dict[str, Any]:
    """Write the submission (idempotent on `key`) and its event in one transaction, then emit.

    Returns the submission's id and version.
    """
    with transaction(sessions) as session:
        submission = record_submission(
            session=session,
            checkin_id=checkin_id,
            department_id=department_id,
            form=form,
            source=SOURCE,
            now=now,
            idempotency_key=key,
        )
        result = {"submission_id": submission.id, "version": submission.version}
    publish_pending_events(sessions=sessions, now=now)
    return result


@flow(name="record_checkin", flow_run_name="代为报送-报送{checkin_id}")
async def record_checkin(
    checkin_id: int,
    department_id: int | None = None,
    as_of: datetime | None = None,
    timeout_seconds: int = 3600,
) -> dict[str, Any]:
    """Pause for a supervisor's entry in the Prefect UI, then record it as the department's.

    `department_id` defaults to the check-in's department. The submission's idempotency key
    is the flow run id, so a retried run never stores the entry twice. A pause that times out
    fails the run without writing anything.
    """
    sessions = store_for(get_settings().effective_database_url).sessions
    info = describe_checkin(sessions, checkin_id)
    department = department_id if department_id is not None else int(info["department_id"])
    entry = await apause_flow_run(
        wait_for_input=CheckinEntry.with_initial_data(description=form_description(info)),
        timeout=timeout_seconds,
        poll_interval=2,
    )
    form = to_submission_form(entry)
    run_id = flow_run.get_id() or f"local-{clock.now().timestamp()}"
    return await save_submission(
        sessions, checkin_id, department, form, clock.resolve(as_of), f"{SOURCE}:{run_id}"[:64]
    )
