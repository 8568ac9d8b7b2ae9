"""`duban instruct ITEM --leader 名字 --text …`: the office records a leader's instruction
(领导批示) given on paper, on the leader's behalf."""

from __future__ import annotations

from datetime import date, datetime, time

import typer
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from duban.cli.output import console, line
from duban.runtime import open_store
from models import clock
from models.clock import LOCAL_TZ, local_date
from models.daily_pass import item_label
from models.db import transaction
from models.directory import Department
from models.errors import InputError, NotFoundError
from models.instruction import check_leader_name, leader_title
from models.plan import Item
from models.vocabulary import InstructionSource, InstructionState, RecipientRole
from tasks.instructions import instruction_facts, lead_departments, record_instruction
from tasks.plan_import import get_plan

ROLES = {"leader": RecipientRole.LEADER, "head": RecipientRole.HEAD}


def _given_at(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--given-on 的日期格式应为 YYYY-MM-DD，收到：{text}") from None
    given = datetime.combine(day, time(9, 0), tzinfo=LOCAL_TZ)
    if given > now:
        raise InputError(f"--given-on {text} 晚于今天：请填写领导作出批示的日期。")
    return given


def _leader(
    session: Session, *, item_id: int, name: str, role: str | None
) -> tuple[RecipientRole, Department | None]:
    """The leader's role and department from the directory: the department whose 分管领导
    or 主要负责人 bears `name` (the item's lead department first), else `role` alone."""
    wanted = ROLES.get(role) if role is not None else None
    if role is not None and wanted is None:
        raise InputError(f"--role 应为 leader（分管领导）或 head（主要负责人），收到：{role}")
    matches = list(
        session.scalars(
            select(Department)
            .where(or_(Department.leader_name == name, Department.head_name == name))
            .order_by(Department.id)
        )
    )
    leads = {dept.id for dept in lead_departments(session=session, item_id=item_id)}
    matches.sort(key=lambda dept: (dept.id not in leads, dept.id))
    for dept in matches:
        for candidate, person in (
            (RecipientRole.LEADER, dept.leader_name),
            (RecipientRole.HEAD, dept.head_name),
        ):
            if person == name and wanted in (None, candidate):
                return candidate, dept
    return wanted or RecipientRole.LEADER, None


def instruct_command(
    item: int = typer.Argument(..., help="任务编号（数据库编号，见 duban status）。"),
    leader: str = typer.Option(..., "--leader", help="作出批示的领导姓名。"),
    text: str = typer.Option(..., "--text", help="批示内容（不超过2000字）。"),
    role: str | None = typer.Option(
        None, "--role", help="leader（分管领导）或 head（主要负责人）；默认按部门名录判断。"
    ),
    given_on: str | None = typer.Option(
        None, "--given-on", help="批示日期，YYYY-MM-DD（默认今天）。"
    ),
    by: str = typer.Option("督查室", "--by", help="代录人。"),
) -> None:
    """代录领导批示（书面批示）：记录、通知牵头部门和督查室，下次报送须反馈落实情况。"""
    now = clock.now()
    given = _given_at(given_on, now)
    name = check_leader_name(leader)
    store = open_store()
    with transaction(store.sessions) as session:
        found = session.get(Item, item)
        if found is None:
            raise NotFoundError(f"没有编号为 {item} 的任务（可用 duban status 查看任务编号）。")
        leader_role, department = _leader(session, item_id=item, name=name, role=role)
        recorded = record_instruction(
            session=session,
            item_id=item,
            leader_role=leader_role,
            leader_name=name,
            leader_department_id=department.id if department else None,
            text=text,
            source=InstructionSource.PAPER,
            recorded_by=by,
            given_at=given,
            now=now,
        )
        label = item_label(found)
        leads = "、".join(dept.name for dept in lead_departments(session=session, item_id=item))
        instruction_id = recorded.instruction.id
    who = leader_title(leader_role, name)
    if not recorded.created:
        again = f"（第{instruction_id}号），未重复记录：{label} ← {who}"
        console.print(line(("该批示已记录", "yellow"), again))
        return
    console.print(line(("已记录批示", "green"), f"（第{instruction_id}号）：{label} ← {who}"))
    notified = f"已通知：{leads or '（无牵头部门）'}、督查室"
    console.print(line(notified, "；牵头部门下次报送须反馈落实批示情况。"))


def instructions_command(
    plan: str | None = typer.Option(None, "--plan", help="计划编号或标题（仅一个计划时可省略）。"),
    open_only: bool = typer.Option(False, "--open", help="只列待落实的批示。"),
) -> None:
    """列出领导批示及落实情况（按批示时间）。"""
    store = open_store()
    with store.sessions() as session:
        stored = get_plan(session=session, plan_ref=plan)
        item_ids = list(session.scalars(select(Item.id).where(Item.plan_id == stored.id)))
        facts = instruction_facts(session=session, item_ids=item_ids)
    if open_only:
        facts = [fact for fact in facts if fact.state is InstructionState.OPEN]
    table = Table("编号", "任务", "批示领导", "批示日期", "来源", "批示内容", "状态", "落实情况")
    for fact in facts:
        answer = ""
        if fact.answered_at is not None:
            answer = f"{fact.answered_by} {local_date(fact.answered_at).isoformat()}：{fact.answer}"
        table.add_row(
            str(fact.id),
            fact.item_label,
            fact.leader,
            local_date(fact.given_at).isoformat(),
            fact.source.label,
            fact.text,
            fact.state.label,
            answer,
        )
    console.print(table)
    console.print(f"共 {len(facts)} 条。")


def register(app: typer.Typer) -> None:
    """Add `duban instruct` and `duban instructions` to `app`."""
    app.command("instruct")(instruct_command)
    app.command("instructions")(instructions_command)
