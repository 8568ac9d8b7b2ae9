"""Seed a small supervised plan with ORM rows for the report tests (Q3 2021, as of 30 Sep).

The scenario, by item (section 一: 1, 2; 二: 3, 4; 三: 5):
1. lead 学会部, target 不少于200场次: Jul 15 on time, Aug 16 late, Sep 15 missing and
   escalated level 1 then 2; latest submission at risk, 150 场次, narrative with HTML/emoji.
2. lead 普及部 (support 学会部): Jul 15 on time, Sep 30 open (due on the as-of day);
   latest submission blocked, problem 经费未到位.
3. lead 办公室 (support 组织部): Sep 10 on time after an approved extension, Sep 20
   submitted on Oct 8 (after as-of, so missing); target 不超过5次, reported 3.
4. lead 普及部: Jun 15 never submitted (overdue before the period), Aug 2 on time,
   Aug 1 cancelled; a very long narrative.
5. no department.
Status events: item 1 green Jul 1, amber Aug 20, red Sep 20, green Oct 5 (after as-of);
item 2 red Sep 1. Items 3, 4, 5 have no event (stored colours green, amber, none).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models.clock import LOCAL_TZ
from models.directory import Department
from models.outbox import DomainEvent
from models.plan import Item, Plan, Section, Target
from models.supervision import Assignment, Checkin, Extension, Notice, Submission
from tasks.reporting.store import GeneratedReport, generate_report

AS_OF = datetime(2021, 9, 30, 17, 0, tzinfo=LOCAL_TZ)
CREATED = datetime(2021, 5, 1, 9, 0, tzinfo=LOCAL_TZ)
HOSTILE = "<script>alert('x')</script>已举办<b>150</b>场😀"
LONG = "长" * 2000


def at(month: int, day: int, hour: int = 10) -> datetime:
    """An aware Asia/Shanghai moment in 2021."""
    return datetime(2021, month, day, hour, 0, tzinfo=LOCAL_TZ)


@dataclass
class Seeded:
    """Ids of what `seed_plan` created."""

    plan_id: int
    items: dict[int, int] = field(default_factory=dict)
    departments: dict[str, int] = field(default_factory=dict)
    targets: dict[int, int] = field(default_factory=dict)


def seed_plan(session: Session, *, recipients: list[str] | None = None) -> Seeded:
    """Add the scenario above to `session` (flushed, not committed) and return its ids."""
    tag = uuid.uuid4().hex[:8]
    plan = Plan(
        title="2021年工作要点",
        organisation="某市科协",
        year=2021,
        source_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        status="supervising",
        report_recipients=recipients or [],
        created_at=CREATED,
    )
    session.add(plan)
    session.flush()
    seeded = Seeded(plan.id)
    sections = [
        Section(plan_id=plan.id, position=i, number=n, title=t)
        for i, (n, t) in enumerate([("一", "学会工作"), ("二", "科普工作"), ("三", "机关建设")])
    ]
    session.add_all(sections)
    session.flush()
    section_of = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2}
    colours = {1: "red", 2: "red", 3: "green", 4: "amber", 5: "none"}
    for number in range(1, 6):
        item = Item(
            plan_id=plan.id,
            section_id=sections[section_of[number]].id,
            position=number,
            number=str(number),
            title=f"第{number}项任务<i>标题</i>",
            colour=colours[number],
            needs_assignment=number == 5,
        )
        session.add(item)
        session.flush()
        seeded.items[number] = item.id
    for position, (number, text, comparator, value, unit) in enumerate(
        [(1, "不少于200场次", "ge", 200.0, "场次"), (3, "不超过5次", "le", 5.0, "次")]
    ):
        target = Target(
            item_id=seeded.items[number],
            position=position,
            text=text,
            comparator=comparator,
            value=value,
            unit=unit,
        )
        session.add(target)
        session.flush()
        seeded.targets[number] = target.id
    for name in ("学会部", "普及部", "办公室", "组织部"):
        dept = Department(name=f"{name}{tag}", created_at=CREATED)
        session.add(dept)
        session.flush()
        seeded.departments[name] = dept.id
    for number, name, role in [
        (1, "学会部", "lead"),
        (2, "普及部", "lead"),
        (2, "学会部", "support"),
        (3, "办公室", "lead"),
        (3, "组织部", "support"),
        (4, "普及部", "lead"),
    ]:
        session.add(
            Assignment(
                item_id=seeded.items[number],
                department_id=seeded.departments[name],
                role=role,
                assigned_at=CREATED,
            )
        )
    _checkins(session, seeded)
    for item_no, moment, colour in [
        (1, at(7, 1), "green"),
        (1, at(8, 20), "amber"),
        (1, at(9, 20), "red"),
        (1, at(10, 5), "green"),
        (2, at(9, 1), "red"),
    ]:
        session.add(
            DomainEvent(
                type="duban.item.status_changed",
                resource_id=f"duban.item.{seeded.items[item_no]}",
                payload={"colour": colour, "previous": "none"},
                occurred_at=moment,
                created_at=moment,
            )
        )
    session.flush()
    return seeded


def _checkins(session: Session, seeded: Seeded) -> None:
    """Check-ins, submissions, an extension and escalation notices of the scenario."""
    rows = [
        # item, dept, seq, due, status, submitted, sub-status, narrative, problems, values
        (1, "学会部", 1, date(2021, 7, 15), "submitted", at(7, 14), "on_track", "进展顺利", "", 80),
        (1, "学会部", 2, date(2021, 8, 16), "submitted", at(8, 20), "at_risk", HOSTILE, "场地紧张", 150),  # noqa: E501
        (1, "学会部", 3, date(2021, 9, 15), "pending", None, "", "", "", None),
        (2, "普及部", 1, date(2021, 7, 15), "submitted", at(7, 15, 20), "blocked", "筹备中", "经费未到位", None),  # noqa: E501
        (2, "普及部", 2, date(2021, 9, 30), "pending", None, "", "", "", None),
        (3, "办公室", 1, date(2021, 9, 10), "submitted", at(9, 10), "done", "已完成", "", 3),
        (3, "办公室", 2, date(2021, 9, 20), "submitted", at(10, 8), "done", "补报", "", 4),
        (4, "普及部", 1, date(2021, 6, 15), "pending", None, "", "", "", None),
        (4, "普及部", 2, date(2021, 8, 2), "submitted", at(8, 2), "on_track", LONG, "", None),
        (4, "普及部", 3, date(2021, 8, 1), "cancelled", None, "", "", "", None),
    ]  # fmt: skip
    for item_no, dept, seq, due, status, submitted, sub_status, text, problems, value in rows:
        checkin = Checkin(
            item_id=seeded.items[item_no],
            department_id=seeded.departments[dept],
            phase_key="implement",
            seq=seq,
            kind="progress",
            due_date=due,
            original_due_date=due,
            status=status,
            submitted_at=submitted,
            created_at=CREATED,
        )
        session.add(checkin)
        session.flush()
        if submitted is not None:
            values = {}
            if value is not None and item_no in seeded.targets:
                values[str(seeded.targets[item_no])] = value
            session.add(
                Submission(
                    checkin_id=checkin.id,
                    version=1,
                    submitted_at=submitted,
                    status=sub_status,
                    narrative=text,
                    problems=problems,
                    next_steps="下月完成" if item_no == 1 else "",
                    values=values,
                )
            )
        if (item_no, seq) == (3, 1):
            session.add(
                Extension(
                    checkin_id=checkin.id,
                    requested_date=due,
                    requested_at=at(8, 25),
                    decision="approved",
                    decided_at=at(8, 30),
                    previous_due_date=date(2021, 9, 1),
                )
            )
        if (item_no, seq) == (1, 3):
            for level, moment in ((1, at(9, 17)), (2, at(9, 24))):
                session.add(
                    Notice(
                        key=f"checkin:{checkin.id}:escalation:{level}:r0",
                        kind="escalation",
                        level=level,
                        item_id=checkin.item_id,
                        department_id=checkin.department_id,
                        checkin_id=checkin.id,
                        decided_at=moment,
                    )
                )


def q3_report(
    session: Session, out_dir: Path, formats: list[str], *, plan_id: int | None = None
) -> GeneratedReport:
    """The scenario's 2021Q3 report as of 30 Sep, generated 30 Sep 10:00 UTC, no email
    (seeding the scenario first unless `plan_id` names a plan already seeded)."""
    return generate_report(
        session=session,
        plan_id=plan_id if plan_id is not None else seed_plan(session).plan_id,
        as_of=AS_OF,
        generated_at=datetime(2021, 9, 30, 10, 0, tzinfo=UTC),
        out_dir=out_dir,
        quarter="2021Q3",
        formats=formats,
        email=False,
    )
