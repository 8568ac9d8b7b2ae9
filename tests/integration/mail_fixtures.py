"""Rows a mail test needs: a plan with an item, targets, phase, department and check-in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from models.directory import Department
from models.plan import Item, Phase, Plan, Target
from models.supervision import Checkin, Notice, Submission

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)


@dataclass
class World:
    """The rows created by `make_world`."""

    plan: Plan
    item: Item
    target: Target
    department: Department
    checkin: Checkin


def make_world(session: Session, *, title: str = "搭建高水平科技开放交流平台") -> World:
    """Insert one plan, item (with a target), implement phase, department and check-in."""
    tag = uuid.uuid4().hex[:8]
    plan = Plan(
        title=f"长治市科协2021年工作要点 {tag}",
        organisation="长治市科学技术协会",
        year=2021,
        source_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        created_at=NOW,
    )
    session.add(plan)
    session.flush()
    session.add(
        Phase(
            plan_id=plan.id,
            key="implement",
            name="落实达标",
            start_text="5月中旬",
            end_text="12月中旬",
            start_date=date(2021, 5, 11),
            end_date=date(2021, 12, 20),
        )
    )
    item = Item(plan_id=plan.id, position=4, number="4", title=title)
    department = Department(
        name=f"学会部{tag}",
        contact_name="王芳",
        contact_emails=["xuehui@example.org"],
        leader_name="张伟",
        leader_email="zhangwei@example.org",
        created_at=NOW,
    )
    session.add_all([item, department])
    session.flush()
    target = Target(
        item_id=item.id,
        position=1,
        text="举办学术交流活动不少于200场次",
        comparator="ge",
        value=200,
        unit="场次",
    )
    checkin = Checkin(
        item_id=item.id,
        department_id=department.id,
        phase_key="implement",
        seq=1,
        kind="progress",
        due_date=date(2021, 6, 30),
        original_due_date=date(2021, 6, 30),
        created_at=NOW,
    )
    session.add_all([target, checkin])
    session.flush()
    return World(plan=plan, item=item, target=target, department=department, checkin=checkin)


def add_submission(
    session: Session, world: World, *, version: int = 1, **fields: str
) -> Submission:
    """Add a submission version reporting 86 against the world's target."""
    submission = Submission(
        checkin_id=world.checkin.id,
        version=version,
        submitted_at=datetime(2021, 6, 29, 8, 5, tzinfo=UTC),
        status="on_track",
        narrative=fields.get("narrative", "上半年活动计划已印发。"),
        problems=fields.get("problems", ""),
        next_steps=fields.get("next_steps", "6月召开推进会。"),
        values={str(world.target.id): 86},
    )
    session.add(submission)
    session.flush()
    return submission


def add_notice(
    session: Session, world: World, *, kind: str, level: int = 0, email: str = ""
) -> Notice:
    """Add a notice of `kind` for the world's check-in, addressed to the contact or `email`."""
    notice = Notice(
        key=f"checkin:{world.checkin.id}:{kind}:{level}:{uuid.uuid4().hex[:6]}",
        kind=kind,
        level=level,
        item_id=world.item.id,
        department_id=world.department.id,
        checkin_id=world.checkin.id,
        recipients=[{"role": "contact", "name": "王芳", "email": email or "xuehui@example.org"}],
        reason="逾期未报送" if kind == "escalation" else "",
        decided_at=NOW,
    )
    session.add(notice)
    session.flush()
    return notice
