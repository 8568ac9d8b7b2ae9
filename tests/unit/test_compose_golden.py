"""Golden emails: a fixed scenario composed and built to MIME bytes, compared byte for byte.

The expected files under `golden_mail/` were written by the composition code before it was
optimised (issue 12); any change to one byte of an email fails here. Regenerate only for an
intended change of the emails: `DUBAN_WRITE_GOLDEN=1 pytest tests/unit/test_compose_golden.py`.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import SecretStr

from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Item, Phase, Plan, Target
from models.settings import Settings
from models.supervision import Checkin, Notice, Submission
from notifications.compose import messages_from_rows
from notifications.context import ContextRows, Fields
from notifications.links import department_url, form_url, instruct_links
from notifications.mime import build_email
from notifications.outbox import NewMessage
from notifications.rendering import KINDS, environment, render_message
from notifications.samples import sample_context

GOLDEN = Path(__file__).parent / "golden_mail"
NOW = datetime(2021, 7, 5, 1, 30, tzinfo=UTC)
SETTINGS = Settings(
    secret_key=SecretStr("golden-secret-key-0123456789abcdef"),
    public_url="https://duban.example.org",
    mail_from_address="duban@example.org",
    mail_from_name="督办系统",
)


def _scenario() -> tuple[list[Notice], ContextRows, dict[int, Checkin], dict[int, Department]]:
    plan = Plan(
        id=7, title="长治市科协2021年工作要点", organisation="长治市科学技术协会", year=2021
    )
    plan.policy = {}
    phases = [
        Phase(
            id=1,
            plan_id=7,
            key="p1",
            name="制定方案",
            start_text="3月",
            end_text="4月上旬",
            start_date=date(2021, 3, 1),
            end_date=date(2021, 4, 10),
        ),
        Phase(
            id=2,
            plan_id=7,
            key="p2",
            name="落实达标",
            start_text="5月中旬",
            end_text="12月中旬",
            start_date=date(2021, 5, 11),
            end_date=date(2021, 12, 20),
        ),
    ]
    items: dict[int, Item] = {}
    for item_id, number, title in (
        (11, "4", "搭建高水平科技开放交流平台"),
        (12, "（一）", "深化<科协>改革 & “三长”联动"),
    ):
        item = Item(id=item_id, plan_id=7, number=number, title=title)
        item.plan = plan
        item.targets = [
            Target(
                id=item_id * 10 + 1,
                item_id=item_id,
                text="举办学术交流活动不少于200场次",
                unit="场次",
            ),
            Target(
                id=item_id * 10 + 2, item_id=item_id, text="新建院士专家工作站5家以上", unit="家"
            ),
        ]
        items[item_id] = item
    departments = {
        dep_id: Department(
            id=dep_id,
            name=name,
            contact_name=f"联系人{dep_id}",
            contact_emails=[f"d{dep_id}@example.org"],
            leader_name=f"分管{dep_id}",
            leader_email=f"l{dep_id}@example.org",
            head_name="主要负责人",
            head_email="head@example.org",
        )
        for dep_id, name in ((21, "学会部"), (22, "科普部"), (23, "组织人事部"))
    }
    checkins: dict[int, Checkin] = {}
    for n, (item_id, dep_id) in enumerate([(i, d) for i in items for d in departments], start=101):
        checkins[n] = Checkin(
            id=n,
            item_id=item_id,
            department_id=dep_id,
            phase_key="p2",
            role="lead" if dep_id == 21 else "support",
            due_date=date(2021, 6, 30),
            status="pending",
            asks="请报送上半年进展" if n % 2 else "",
        )
    latest = {
        (11, 21): Submission(
            id=501,
            checkin_id=101,
            version=2,
            submitted_at=datetime(2021, 3, 31, 9, tzinfo=UTC),
            status="on_track",
            narrative="已与省学会签订<合作>协议 & 印发计划。",
            problems="部分县区承办能力不足。",
            next_steps="6月召开推进会。",
            values={"111": 86, "112": "3"},
        ),
        (12, 22): Submission(
            id=502,
            checkin_id=105,
            version=1,
            submitted_at=datetime(2021, 4, 2, 9, tzinfo=UTC),
            status="at_risk",
            narrative="",
            problems="",
            next_steps="",
            values={"121": "n/a"},
        ),
    }

    def contact(dep: int) -> dict[str, str]:
        return {"role": "contact", "name": f"联系人{dep}", "email": f"d{dep}@example.org"}

    def leader(dep: int) -> dict[str, str]:
        return {"role": "leader", "name": f"分管{dep}", "email": f"l{dep}@example.org"}

    head = {"role": "head", "name": "主要负责人", "email": "head@example.org"}
    office = {"role": "office", "name": "督查室", "email": "office@example.org"}
    notices: list[Notice] = []
    for n, checkin in checkins.items():
        dep = checkin.department_id
        notices.append(
            Notice(
                id=n,
                key=f"request:{n}",
                kind="request",
                item_id=checkin.item_id,
                department_id=dep,
                checkin_id=n,
                recipients=[contact(dep)],
            )
        )
        notices.append(
            Notice(
                id=1000 + n,
                key=f"reminder:{n}",
                kind="reminder",
                item_id=checkin.item_id,
                department_id=dep,
                checkin_id=n,
                recipients=[contact(dep), f"extra{dep}@example.org"],
            )
        )
    notices += [
        Notice(
            id=2001,
            key="assignment:11:21",
            kind="assignment",
            item_id=11,
            department_id=21,
            recipients=[contact(21)],
        ),
        Notice(
            id=2002,
            key="assignment:12:23",
            kind="assignment",
            item_id=12,
            department_id=23,
            recipients=[contact(23), {"role": "contact", "name": "", "email": "x@example.org"}],
        ),
        Notice(
            id=3001,
            key="escalation:101:1",
            kind="escalation",
            level=1,
            item_id=11,
            department_id=21,
            checkin_id=101,
            reason="逾期1个工作日未报送",
            recipients=[contact(21)],
        ),
        Notice(
            id=3002,
            key="escalation:101:2",
            kind="escalation",
            level=2,
            item_id=11,
            department_id=21,
            checkin_id=101,
            reason="逾期3个工作日未报送",
            recipients=[leader(21)],
        ),
        Notice(
            id=3003,
            key="escalation:101:3",
            kind="escalation",
            level=3,
            item_id=11,
            department_id=21,
            checkin_id=101,
            reason="逾期5个工作日未报送",
            recipients=[head, office, contact(21)],
        ),
        Notice(
            id=3004,
            key="escalation:105:2",
            kind="escalation",
            level=2,
            item_id=12,
            department_id=22,
            checkin_id=105,
            reason="逾期3个工作日未报送",
            recipients=[leader(22), contact(22)],
        ),
        Notice(
            id=3005,
            key="escalation:106:3",
            kind="escalation",
            level=3,
            item_id=12,
            department_id=23,
            checkin_id=106,
            reason="逾期5个工作日未报送",
            recipients=[head, leader(23), office, contact(23)],
        ),
        Notice(
            id=3006,
            key="escalation:104:4",
            kind="escalation",
            level=4,
            item_id=12,
            department_id=21,
            checkin_id=104,
            reason="",
            recipients=[head, {**leader(21), "held": True}],
        ),
    ]
    rows = ContextRows(items=items, phases={7: phases}, latest=latest, next_pending={})
    return notices, rows, checkins, departments


def _mime(n: int, message: NewMessage) -> bytes:
    row = OutboxMessage(
        id=f"golden{n:03d}",
        key=message.key,
        kind=message.kind,
        to_addrs=message.to,
        cc_addrs=message.cc,
        subject=message.subject,
        text_body=message.text_body,
        html_body=message.html_body,
        attachments=message.attachments,
        created_at=NOW,
    )
    return build_email(row, SETTINGS).data


def _composed(tmp_path: Path) -> dict[str, bytes]:
    order = tmp_path / "督办单.docx"
    order.write_bytes(b"PK\x03\x04 golden order " * 20)
    notices, rows, checkins, departments = _scenario()
    messages = messages_from_rows(
        notices=notices,
        rows=rows,
        checkins=checkins,
        departments=departments,
        now=NOW,
        settings=SETTINGS,
        attachments={
            3003: [{"path": str(order), "filename": order.name, "mime": "application/octet-stream"}]
        },
    )
    found = {
        f"{n:03d}-{message.key.replace(':', '_')}.eml": _mime(n, message)
        for n, message in enumerate(messages)
    }
    for kind in KINDS:
        rendered = render_message(kind, sample_context(kind))
        found[f"sample-{kind}.eml"] = _mime(
            0,
            NewMessage(
                key=kind,
                kind=kind,
                to=["a@example.org"],
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
            ),
        )
    links = [
        form_url(
            settings=SETTINGS,
            checkin_id=101,
            department_id=21,
            due_date=date(2021, 6, 30),
            issued_on=date(2021, 7, 5),
        ),
        department_url(settings=SETTINGS, department_id=21, issued_on=date(2021, 7, 5)),
        *(
            str(link["url"])
            for link in instruct_links(
                settings=SETTINGS,
                item_id=11,
                department_id=21,
                now=NOW,
                recipients=[{"role": "leader", "name": "甲"}, {"role": "head", "name": "乙"}],
            )
        ),
    ]
    found["links.txt"] = "\n".join(links).encode() + b"\n"
    return found


def test_composed_emails_are_byte_identical_to_the_goldens(tmp_path: Path) -> None:
    found = _composed(tmp_path)
    if os.environ.get("DUBAN_WRITE_GOLDEN") == "1":
        for old in GOLDEN.glob("*"):
            old.unlink()
        for name, data in found.items():
            (GOLDEN / name).write_bytes(data)
    expected = {path.name: path.read_bytes() for path in GOLDEN.iterdir()}
    assert sorted(found) == sorted(expected)
    assert len([name for name in found if name[:3].isdigit()]) >= 20
    for name, data in found.items():
        assert data == expected[name], name


def test_fields_are_the_dict_they_were_and_read_by_attribute() -> None:
    fields = Fields(title="要点", year=2021, items="as key only")
    assert fields == {"title": "要点", "year": 2021, "items": "as key only"}
    assert (fields.title, fields.year) == ("要点", 2021)
    assert callable(fields.items)  # a key named like a dict method stays a key, as on a dict
    fields["title"] = "改"
    assert fields.title == "改"
    assert environment().from_string("{{ f.title }}{{ f.items is callable }}").render(f=fields) == (
        "改True"
    )
