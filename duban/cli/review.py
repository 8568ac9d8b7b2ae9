"""`duban review list|accept|return`: the office's review of reports (审核/退回).

A decision names check-ins by id, or selects them in bulk with filters (`--plan`, `--item`,
`--department`, `--on-track`, or `--all`); a bulk decision lists what it will decide and
asks for confirmation unless `--yes`. Every decision is one transaction: review rows,
check-in states, events and return emails commit together or not at all.
"""

from __future__ import annotations

from datetime import date, datetime

import typer
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from duban.cli.output import console, err_console, line, plain
from duban.runtime import open_store
from models import clock
from models.db import transaction
from models.directory import Department, DepartmentAlias
from models.errors import InputError, NotFoundError
from models.report_review import ReviewSelection
from models.vocabulary import ReviewDecision, SelfStatusValue
from portal.app import publish_if_configured
from tasks.report_review import (
    PendingReview,
    ReviewOutcome,
    accept_report,
    decide_selection,
    pending_reviews,
    return_report,
    review_counts,
)

app = typer.Typer(help="报送审核：列出待审核报送，通过或退回（可批量）。", no_args_is_help=True)

_PLAN = typer.Option(None, "--plan", help="只看此计划（编号）。")
_ITEM = typer.Option(None, "--item", help="只看此任务（编号，见 duban review list 的“任务”列）。")
_DEPARTMENT = typer.Option(None, "--department", help="只看此部门（名称或编号）。")
_ON_TRACK = typer.Option(False, "--on-track", help="只选部门自报“正常推进”或“已完成”的报送。")
_AS_OF = typer.Option(None, "--as-of", help="审核时点（模拟时钟），YYYY-MM-DD。")
_BY = typer.Option("督查室", "--by", help="审核人。")
_ALL = typer.Option(False, "--all", help="批量：选中全部待审核报送（不加筛选条件时必须指定）。")
_YES = typer.Option(False, "--yes", "-y", help="批量决定时不再确认。")


def _moment(text: str | None) -> datetime:
    if text is None:
        return clock.now()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of 的日期格式应为 YYYY-MM-DD，收到：{text}") from None
    return clock.resolve(day)


def _department_id(session: Session, text: str | None) -> int | None:
    if text is None:
        return None
    name = text.strip()
    if name.isdigit() and session.get(Department, int(name)) is not None:
        return int(name)
    found = session.scalars(
        select(Department.id)
        .outerjoin(DepartmentAlias, DepartmentAlias.department_id == Department.id)
        .where(or_(Department.name == name, DepartmentAlias.alias == name))
    ).first()
    if found is None:
        raise NotFoundError(f"没有名为“{name}”的部门，可用 duban departments list 查看。")
    return int(found)


def _selection(
    session: Session,
    *,
    plan: int | None,
    item: int | None,
    department: str | None,
    on_track: bool,
) -> ReviewSelection:
    return ReviewSelection(
        plan_id=plan,
        item_id=item,
        department_id=_department_id(session, department),
        on_track_only=on_track,
    )


def _table(rows: list[PendingReview], title: str) -> Table:
    table = Table(
        "报送", "任务", "部门", "版本", "报送时间", "自报状态", "退回", "审核期限", title=title
    )
    for row in rows:
        arrived = row.candidate.submitted_at.astimezone(clock.LOCAL_TZ)
        due = row.review_due.isoformat() if row.review_due else "—"
        table.add_row(
            str(row.candidate.checkin_id),
            plain(f"{row.item_label}（编号 {row.candidate.item_id}）"),
            plain(row.department_name),
            f"第{row.version}版",
            arrived.strftime("%Y-%m-%d %H:%M"),
            SelfStatusValue.label_of(row.candidate.self_status),
            f"{row.returns}次" if row.returns else "",
            line((f"{due} 已超时", "red")) if row.overdue else due,
        )
    return table


@app.command("list")
def list_command(
    plan: int | None = _PLAN,
    item: int | None = _ITEM,
    department: str | None = _DEPARTMENT,
    on_track: bool = _ON_TRACK,
    as_of: str | None = _AS_OF,
) -> None:
    """列出待审核的报送（最早报送的在前），标出已超过审核期限的。"""
    moment = _moment(as_of)
    store = open_store()
    with store.sessions() as session:
        selection = _selection(
            session, plan=plan, item=item, department=department, on_track=on_track
        )
        rows = pending_reviews(session, selection=selection, as_of=moment)
    if not rows:
        console.print("没有待审核的报送。")
        return
    console.print(_table(rows, f"待审核报送（截至 {clock.local_date(moment)}）"))
    late = sum(1 for row in rows if row.overdue)
    console.print(f"共 {len(rows)} 份待审核。")
    if late:
        console.print(
            line((f"其中 {late} 份已超过审核期限，已（或将）报督查室主要负责人。", "red"))
        )


def _decide(
    *,
    decision: ReviewDecision,
    checkin_ids: list[int],
    reason: str,
    by: str,
    plan: int | None,
    item: int | None,
    department: str | None,
    on_track: bool,
    all_: bool,
    yes: bool,
    as_of: str | None,
) -> None:
    moment = _moment(as_of)
    filtered = plan is not None or item is not None or department is not None or on_track
    if checkin_ids and (filtered or all_):
        raise InputError(
            "请二选一：指定报送编号，或用筛选条件（--plan/--item/--department/--on-track/--all）批量选择。"
        )
    if not checkin_ids and not filtered and not all_:
        raise InputError(
            "请指定报送编号，或用 --plan/--item/--department/--on-track 筛选、--all 选中全部。"
        )
    if decision == ReviewDecision.RETURNED and not reason.strip():
        raise InputError("退回必须填写理由：--reason “……”。")
    verb = decision.label
    store = open_store()
    outcomes: list[ReviewOutcome] = []
    with transaction(store.sessions) as session:
        if not checkin_ids:
            selection = _selection(
                session, plan=plan, item=item, department=department, on_track=on_track
            )
            rows = pending_reviews(session, selection=selection, as_of=moment)
            if not rows:
                console.print("没有符合条件的待审核报送，未作任何改动。")
                return
            console.print(_table(rows, f"将{verb}以下 {len(rows)} 份报送"))
            if not yes and not typer.confirm(f"确认{verb}以上 {len(rows)} 份报送？", default=False):
                console.print("已取消，未作任何改动。")
                return
            outcomes = decide_selection(session, selection, decision, by, moment, reason=reason)
        for checkin_id in checkin_ids:
            if decision == ReviewDecision.ACCEPTED:
                outcomes.append(accept_report(session, checkin_id, by, moment))
            else:
                outcomes.append(return_report(session, checkin_id, by, reason, moment))
    for outcome in outcomes:
        if outcome.decision == ReviewDecision.ACCEPTED:
            console.print(f"报送 {outcome.checkin_id}：审核通过，该报送已办结。")
        else:
            mailed = (
                "已发邮件通知部门"
                if outcome.email_key
                else "将列入部门的下一期督办汇总"
                if outcome.digest_notice
                else "部门没有联系邮箱，未发邮件"
            )
            console.print(
                f"报送 {outcome.checkin_id}：已退回，"
                f"请部门于 {outcome.due_date} 前重新报送（{mailed}）。"
            )
    console.print(line((f"共{verb} {len(outcomes)} 份报送。", "green")))
    try:
        publish_if_configured(store.sessions, moment)
    except Exception as exc:  # the events stay pending; the next flow run publishes them
        err_console.print(f"提示：事件暂未发送到 Prefect（{type(exc).__name__}），稍后会补发。")


@app.command("accept")
def accept_command(
    checkin_ids: list[int] = typer.Argument(
        None, help="报送编号（见 duban review list），可多个。"
    ),
    by: str = _BY,
    plan: int | None = _PLAN,
    item: int | None = _ITEM,
    department: str | None = _DEPARTMENT,
    on_track: bool = _ON_TRACK,
    all_: bool = _ALL,
    yes: bool = _YES,
    as_of: str | None = _AS_OF,
) -> None:
    """审核通过：报送办结，部门不能再修改。可按编号或按筛选条件批量通过。"""
    _decide(
        decision=ReviewDecision.ACCEPTED,
        checkin_ids=list(checkin_ids or []),
        reason="",
        by=by,
        plan=plan,
        item=item,
        department=department,
        on_track=on_track,
        all_=all_,
        yes=yes,
        as_of=as_of,
    )


@app.command("return")
def return_command(
    checkin_ids: list[int] = typer.Argument(
        None, help="报送编号（见 duban review list），可多个。"
    ),
    reason: str = typer.Option("", "--reason", help="退回理由（必填），会写入邮件和填报页面。"),
    by: str = _BY,
    plan: int | None = _PLAN,
    item: int | None = _ITEM,
    department: str | None = _DEPARTMENT,
    on_track: bool = _ON_TRACK,
    all_: bool = _ALL,
    yes: bool = _YES,
    as_of: str | None = _AS_OF,
) -> None:
    """退回报送：部门按理由修改后重新报送，截止日期按策略顺延，催办从新截止日重新开始。"""
    _decide(
        decision=ReviewDecision.RETURNED,
        checkin_ids=list(checkin_ids or []),
        reason=reason,
        by=by,
        plan=plan,
        item=item,
        department=department,
        on_track=on_track,
        all_=all_,
        yes=yes,
        as_of=as_of,
    )


def review_status_lines(*, session: Session, plan_id: int, today: date) -> None:
    """The review lines of `duban status`: reports waiting, past the office's time, returned
    and not answered yet, returns per department (nothing when there is nothing to say)."""
    counts = review_counts(session, plan_id=plan_id, as_of=clock.resolve(today))
    if counts.awaiting:
        text = f"待审核报送 {counts.awaiting} 份"
        if counts.overdue:
            text += f"（其中 {counts.overdue} 份已超过审核期限）"
        colour = "red" if counts.overdue else "yellow"
        console.print(line((text + "：duban review list", colour)))
    if counts.awaiting_resubmission:
        console.print(line((f"已退回待重新报送 {counts.awaiting_resubmission} 份", "yellow")))
    if counts.returned or counts.accepted:
        by_department = "、".join(
            f"{name} {number}次" for name, number in (counts.returns_by_department or {}).items()
        )
        console.print(
            f"审核：通过 {counts.accepted} 份，退回 {counts.returned} 次"
            + (f"（{by_department}）" if by_department else "")
        )


def register(root: typer.Typer) -> None:
    """Add the `duban review` group to `root`."""
    root.add_typer(app, name="review")
