"""Supervision commands: start, status, supervise, simulate, item assign/reassign, checkin."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from duban.cli.closure import closure_summary
from duban.cli.output import console, fail, line
from duban.cli.review import review_status_lines
from duban.runtime import open_store
from models import clock
from models.calendar import CalendarSource
from models.db import transaction
from models.directory import Department, DepartmentAlias
from models.errors import DubanError, InputError, NotFoundError
from models.plan import Item
from models.plan_year import plan_year_over
from models.policy import load_policy, parse_policy
from models.settings import Environment, get_settings
from tasks.assignment import assign_item, item_label, reassign_item, start_supervision
from tasks.calendar_store import work_calendar
from tasks.checkins import extend_checkin, overdue_checkins
from tasks.plan_import import get_plan
from tasks.reconcile import load_supervised_plan
from tasks.status_card import CHECKIN_STATUS_LABELS, COLOUR_LABELS, KIND_LABELS, plan_table

if TYPE_CHECKING:
    from prefect import State

item_app = typer.Typer(help="任务交办、转办、办结与销号。", no_args_is_help=True)
checkin_app = typer.Typer(help="报送：查看、延期。", no_args_is_help=True)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} 的日期格式应为 YYYY-MM-DD，收到：{text}") from None


def _required_day(text: str, option: str) -> date:
    day = _day(text, option)
    if day is None:
        raise InputError(f"缺少 {option}。")
    return day


def _department(session: Session, ref: str) -> Department:
    query = (
        select(Department)
        .outerjoin(DepartmentAlias)
        .where(or_(Department.name == ref, DepartmentAlias.alias == ref))
    )
    if ref.isdigit():
        query = select(Department).where(Department.id == int(ref))
    found = session.scalars(query).first()
    if found is None:
        raise NotFoundError(f"找不到部门：{ref}（可用 duban departments list 查看）")
    return found


_PLAN_OPTION = typer.Option(None, "--plan", help="计划编号或标题（只有一个计划时可省略）。")


def _year_over_message(plan_id: int, title: str, year: int) -> str:
    return (
        f"计划「{title}」是{year}年的计划，该年度已经结束：按现在的日期开始督办不会生成任何报送。"
        f"如需演练，请用模拟时钟：duban start {plan_id} --as-of {year}-03-01，"
        f"再运行 duban simulate --plan {plan_id} --until {year}-12-31"
    )


def _missing_calendar_message(title: str, year: int) -> str:
    return (
        f"计划「{title}」是{year}年的计划，但没有{year}年的节假日数据，截止日期会落在法定节假日、"
        f"漏掉调休上班日。请先按国务院办公厅通知填写日历文件并运行 duban calendar import 文件"
        f"（示例见 examples/calendar-2027.example.yaml）；确需仅按周末计算，请加 --weekends-only"
    )


def start_command(
    plan: str | None = typer.Argument(None, help="计划编号或标题（只有一个计划时可省略）。"),
    policy: Path | None = typer.Option(None, "--policy", help="督办策略 YAML 文件。"),
    as_of: str | None = typer.Option(None, "--as-of", help="开始日期（模拟时钟），YYYY-MM-DD。"),
    weekends_only: bool = typer.Option(
        False, "--weekends-only", help="该年没有节假日数据时，仍按仅周末休息开始督办。"
    ),
) -> None:
    """开始督办：交办各项任务、生成报送计划并发出交办通知（每项只发一次）。"""
    store = open_store()
    moment = clock.resolve(_day(as_of, "--as-of"))
    production = get_settings().env is Environment.production
    with transaction(store.sessions) as session:
        stored = get_plan(session=session, plan_ref=plan, option="duban start 编号")
        if stored.status == "imported" and plan_year_over(stored.year, clock.local_date(moment)):
            raise DubanError(_year_over_message(stored.id, stored.title, stored.year))
        calendar = work_calendar(session=session)
        uncovered = calendar.source(stored.year) is CalendarSource.weekends_only
        if uncovered and production and not weekends_only:
            raise DubanError(_missing_calendar_message(stored.title, stored.year))
        if policy:
            from tasks.digest import delivery_names  # the directory checks delivery lists

            chosen = load_policy(policy, names=delivery_names(session))
        else:
            chosen = parse_policy(stored.policy or None)
        summary = start_supervision(
            session=session,
            plan_id=stored.id,
            now=moment,
            policy=chosen,
            calendar=calendar,
        )
        title = stored.title
    console.print(
        f"已开始督办「{title}」：{summary.items} 项任务，交办 {summary.assignments} 个部门次，"
        f"生成报送 {summary.checkins} 条。"
    )
    if summary.checkins == 0:
        why = (
            "没有任何任务交办给部门。"
            if not summary.assignments
            else f"各阶段的报送日期都早于开始日期 {clock.local_date(moment).isoformat()}。"
        )
        console.print(line((f"没有生成报送：{why}", "yellow")))
    if summary.unassigned_items:
        console.print(
            line(
                (
                    f"有 {len(summary.unassigned_items)} 项任务尚无牵头部门，"
                    "请用 duban item assign 交办。",
                    "yellow",
                )
            )
        )
    if uncovered:
        how = "已按 --weekends-only 仅按周末计算" if weekends_only else "已暂按仅周末休息计算"
        note = (
            f"提示：没有{stored.year}年的节假日数据，{how}，截止日期可能落在法定节假日。"
            "请按国务院办公厅通知填写日历文件并运行 duban calendar import 文件"
            "（示例见 examples/calendar-2027.example.yaml），导入时会列出需要改期的报送。"
        )
        console.print(line((note, "yellow")))


def status_command(
    plan: str | None = _PLAN_OPTION,
    as_of: str | None = typer.Option(None, "--as-of", help="查看日期，YYYY-MM-DD。"),
) -> None:
    """督办概况：各任务红黄绿灯、待交办任务、逾期报送。"""
    store = open_store()
    today = _day(as_of, "--as-of") or clock.local_date(clock.now())
    with store.sessions() as session:
        stored = get_plan(session=session, plan_ref=plan)
        rows = plan_table(session=session, plan_id=stored.id, today=today)
        table = Table(title=f"{stored.title}（截至 {today.isoformat()}）")
        for column in rows[0] if rows else ["序号"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(value) for value in row.values()))
        console.print(table)
        counts = dict.fromkeys(COLOUR_LABELS.values(), 0)
        for row in rows:
            counts[row["红黄绿灯"]] = counts.get(row["红黄绿灯"], 0) + 1
        console.print("  ".join(f"{label} {n}" for label, n in counts.items() if n))
        if stored.started_at is None:
            console.print(
                line(
                    (
                        f"计划尚未开始督办，还没有报送和红黄绿灯：运行 duban start {stored.id}",
                        "yellow",
                    )
                )
            )
        flagged = session.scalars(
            select(Item).where(Item.plan_id == stored.id, Item.needs_assignment.is_(True))
        ).all()
        for item in flagged:
            console.print(line((f"待交办：{item_label(item)}（编号 {item.id}）", "yellow")))
        review_status_lines(session=session, plan_id=stored.id, today=today)
        closure_summary(session=session, plan_id=stored.id)
        late = overdue_checkins(session=session, today=today, plan_id=stored.id, limit=50)
        if late:
            console.print(line((f"逾期报送 {len(late)} 条：", "red")))
            names = {d.id: d.name for d in session.scalars(select(Department))}
            for checkin in late:
                console.print(
                    f"  报送 {checkin.id}：任务 {checkin.item_id} "
                    f"{names.get(checkin.department_id)} "
                    f"{KIND_LABELS.get(checkin.kind, checkin.kind)} 截止 {checkin.due_date} "
                    f"督办级别 {checkin.escalation_level}"
                )


def supervise_command(
    plan: str | None = _PLAN_OPTION,
    as_of: str | None = typer.Option(None, "--as-of", help="督办时点，YYYY-MM-DD。"),
    batch: bool | None = typer.Option(None, "--batch/--per-item", help="批量或逐项运行。"),
) -> None:
    """立即执行一次督办巡检（提醒、催办、督办、红黄绿灯）。"""
    from flows.supervise import supervise_plan

    store = open_store()
    day = _day(as_of, "--as-of")
    with store.sessions() as session:
        plan_id = get_plan(session=session, plan_ref=plan).id
        load_supervised_plan(
            session=session, plan_id=plan_id, today=clock.local_date(clock.resolve(day))
        )
    state: State[Any] = asyncio.run(
        supervise_plan(  # type: ignore[arg-type]
            plan_id=plan_id,
            as_of=clock.resolve(day) if day else None,
            batch=batch,
            return_state=True,
        )
    )
    if not state.is_completed():
        fail(f"督办巡检未完成（{state.name}）：{state.message}")
    console.print(f"{state.name}：{state.message}")


def simulate_command(
    plan: str | None = _PLAN_OPTION,
    until: str = typer.Option(..., "--until", help="模拟到哪一天，YYYY-MM-DD。"),
    start: str | None = typer.Option(None, "--from", help="从哪一天开始（默认开始督办日）。"),
    batch: bool | None = typer.Option(None, "--batch/--per-item", help="批量或逐项运行。"),
) -> None:
    """用模拟时钟逐个工作日运行督办流程。"""
    from flows.simulate import simulate

    store = open_store()
    with store.sessions() as session:
        stored = get_plan(session=session, plan_ref=plan)
        if stored.started_at is None:
            raise InputError(
                f"计划「{stored.title}」尚未开始督办，请先运行：duban start {stored.id}"
            )
        first = _day(start, "--from") or clock.local_date(stored.started_at)
        plan_id = stored.id
    last = _required_day(until, "--until")
    days = asyncio.run(simulate(plan_id, first, last, batch=batch))
    for entry in days:
        console.print(f"{entry.day.isoformat()} {entry.message}", markup=False)
    if not days:
        console.print(f"{first.isoformat()} 至 {last.isoformat()} 没有工作日，未运行督办巡检。")
        return
    console.print(f"模拟完成：{len(days)} 个工作日。")


@item_app.command("assign")
def assign_command(
    item: int = typer.Argument(..., help="任务编号（数据库编号）。"),
    department: str = typer.Argument(..., help="部门名称、别名或编号。"),
    lead: bool = typer.Option(True, "--lead/--support", help="牵头或配合。"),
    reason: str = typer.Option("", "--reason", help="交办说明。"),
) -> None:
    """交办：把任务交给部门（牵头或配合）；下次巡检发出交办通知。"""
    store = open_store()
    with transaction(store.sessions) as session:
        dept = _department(session, department)
        assign_item(
            session=session,
            item_id=item,
            department_id=dept.id,
            role="lead" if lead else "support",
            now=clock.now(),
            reason=reason,
        )
        label = item_label(session.get_one(Item, item))
    console.print(f"已交办：{label} → {dept.name}（{'牵头' if lead else '配合'}）")


@item_app.command("reassign")
def reassign_command(
    item: int = typer.Argument(..., help="任务编号。"),
    from_department: str = typer.Argument(..., help="原部门。"),
    to_department: str = typer.Argument(..., help="新部门。"),
    reason: str = typer.Option(..., "--reason", help="转办理由。"),
) -> None:
    """转办：结束原部门的交办（保留历史），交给新部门。"""
    store = open_store()
    with transaction(store.sessions) as session:
        old = _department(session, from_department)
        new = _department(session, to_department)
        reassign_item(
            session=session,
            item_id=item,
            from_department_id=old.id,
            to_department_id=new.id,
            now=clock.now(),
            reason=reason,
        )
    console.print(f"已转办：任务 {item} 由{old.name}转至{new.name}。")


@checkin_app.command("list")
def checkin_list_command(
    plan: str | None = _PLAN_OPTION,
    overdue: bool = typer.Option(False, "--overdue", help="只看逾期。"),
    as_of: str | None = typer.Option(None, "--as-of", help="查看日期，YYYY-MM-DD。"),
) -> None:
    """列出报送（默认全部；--overdue 只列逾期）。"""
    from models.supervision import Checkin

    store = open_store()
    today = _day(as_of, "--as-of") or clock.local_date(clock.now())
    with store.sessions() as session:
        stored = get_plan(session=session, plan_ref=plan)
        names = {d.id: d.name for d in session.scalars(select(Department))}
        if overdue:
            rows = overdue_checkins(session=session, today=today, plan_id=stored.id)
        else:
            rows = list(
                session.scalars(
                    select(Checkin)
                    .join(Item, Item.id == Checkin.item_id)
                    .where(Item.plan_id == stored.id)
                    .order_by(Checkin.due_date, Checkin.id)
                )
            )
    if not rows:
        if overdue:
            console.print(f"截至 {today.isoformat()} 没有逾期报送。")
        elif stored.started_at is None:
            console.print(f"计划尚未开始督办，还没有报送：运行 duban start {stored.id}")
        else:
            console.print("该计划没有报送：各任务尚无交办部门，或报送日期都在开始督办之前。")
        return
    table = Table("编号", "任务", "部门", "报送", "截止", "状态", "督办级别")
    for checkin in rows:
        table.add_row(
            str(checkin.id),
            str(checkin.item_id),
            names.get(checkin.department_id, ""),
            KIND_LABELS.get(checkin.kind, checkin.kind),
            checkin.due_date.isoformat(),
            CHECKIN_STATUS_LABELS.get(checkin.status, checkin.status),
            str(checkin.escalation_level),
        )
    console.print(table)


@checkin_app.command("extend")
def checkin_extend_command(
    checkin: int = typer.Argument(..., help="报送编号。"),
    to: str = typer.Option(..., "--to", help="新的截止日期，YYYY-MM-DD。"),
    reason: str = typer.Option(..., "--reason", help="延期理由。"),
    by: str = typer.Option("督查室", "--by", help="批准人。"),
) -> None:
    """批准延期：移动截止日期，督办阶梯重新计时。"""
    new_due = _required_day(to, "--to")
    store = open_store()
    with transaction(store.sessions) as session:
        result = extend_checkin(
            session=session,
            checkin_id=checkin,
            new_due=new_due,
            reason=reason,
            decided_by=by,
            now=clock.now(),
            calendar=work_calendar(session=session),
        )
    console.print(
        f"报送 {checkin} 已延期：{result.previous_due_date} → {result.due_date}"
        f"（第{result.epoch}次延期）"
    )


def register(app: typer.Typer) -> None:
    """Add the supervision commands and the `item` / `checkin` groups to `app`."""
    app.command("start")(start_command)
    app.command("status")(status_command)
    app.command("supervise")(supervise_command)
    app.command("simulate")(simulate_command)
    app.add_typer(item_app, name="item")
    app.add_typer(checkin_app, name="checkin")
