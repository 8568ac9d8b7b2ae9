"""Rendering a daily digest (每日汇总) from rows already loaded: no queries.

`digest_message` turns one `models.digest.DigestPlan` into one outbox message with the
templates `digest.{subject,txt,html}.j2`: each item once, each of its check-ins once with
what is due (due date, days overdue, the escalation level reached) and the form link of the
check-in, as the single emails carry it (a check-in the office returned, 退回重报, with the
office's reason; its due date is the new one); a leader's digest also carries the leader's
instruct link per item (批示). Like every email about a department's work, a department's
digest ends with the link to that department's own page (本部门督办事项); a leader's digest,
which covers the departments the leader is escalated about, ends with one page link per
department it names (the page each of those departments' single emails to the leader carry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from models.clock import local_date
from models.digest import DigestPlan
from models.directory import Department
from models.plan import Item
from models.policy import SupervisionPolicy, parse_policy
from models.settings import Settings
from models.supervision import Checkin, Notice
from models.vocabulary import CheckinStatus, NoticeKind
from notifications.compose import escalation_label
from notifications.context import item_number
from notifications.links import department_url, form_url, instruct_links
from notifications.outbox import NewMessage, check_header
from notifications.rendering import environment

KIND = "digest"


def _what(kinds: Sequence[str]) -> str:
    """`报送提醒`, `到期提醒` … of a line's notices, in the order they fell; a returned
    check-in is `退回重报` first, the request its restarted ladder records being the return's
    own ask."""
    if NoticeKind.RETURNED in kinds:
        kinds = [NoticeKind.RETURNED] + [
            kind for kind in kinds if kind not in (NoticeKind.RETURNED, NoticeKind.REQUEST)
        ]
    return "、".join(NoticeKind.label_of(kind) for kind in kinds if kind != NoticeKind.ESCALATION)


def live_lines(plan: DigestPlan, checkins: Mapping[int, Checkin]) -> DigestPlan:
    """`plan` without the lines of check-ins no longer pending (reported, accepted or
    cancelled since the notice): a digest lists only what is still due."""
    items = []
    for item_id, lines in plan.items:
        kept = [
            line
            for line in lines
            if line.checkin_id is None
            or (
                (checkin := checkins.get(line.checkin_id)) is not None
                and checkin.status == CheckinStatus.PENDING
            )
        ]
        if kept:
            items.append((item_id, kept))
    return DigestPlan(
        key=plan.key,
        recipient=plan.recipient,
        day=plan.day,
        entry_ids=plan.entry_ids,
        notice_ids=plan.notice_ids,
        items=items,
    )


def digest_context(
    *,
    plan: DigestPlan,
    settings: Settings,
    items: Mapping[int, Item],
    checkins: Mapping[int, Checkin],
    departments: Mapping[int, Department],
    notices: Mapping[int, Notice],
    names: Sequence[str],
    now: datetime,
) -> dict[str, Any]:
    """The template context of one digest (`items` with plan and targets loaded)."""
    today = local_date(now)
    policies: dict[int, SupervisionPolicy] = {}
    leader = plan.recipient.startswith("leader:")
    address = plan.recipient.removeprefix("leader:")
    leader_recipients = [
        recipient
        for notice_id in plan.notice_ids
        for recipient in notices[notice_id].recipients
        if isinstance(recipient, dict) and str(recipient.get("email") or "").lower() == address
    ][:1]
    rendered_items: list[dict[str, Any]] = []
    department_names: list[str] = []
    department_ids: list[int] = []
    for item_id, lines in plan.items:
        item = items[item_id]
        if item.plan_id not in policies:
            policies[item.plan_id] = parse_policy(item.plan.policy or None)
        rows = []
        for line in lines:
            department = departments[line.department_id]
            if department.name not in department_names:
                department_names.append(department.name)
            if department.id not in department_ids:
                department_ids.append(department.id)
            checkin = checkins.get(line.checkin_id) if line.checkin_id else None
            due = checkin.due_date if checkin is not None else line.due_date
            rows.append(
                {
                    "department": department.name,
                    "what": _what(line.kinds),
                    "level": line.level,
                    "level_label": (
                        escalation_label(policies[item.plan_id], line.level) if line.level else ""
                    ),
                    "due_date": due,
                    "overdue_days": (today - due).days if due is not None else None,
                    "asks": checkin.asks if checkin is not None else "",
                    "returned": NoticeKind.RETURNED in line.kinds,
                    "reason": line.reason,
                    "form_url": (
                        form_url(
                            settings=settings,
                            checkin_id=checkin.id,
                            department_id=line.department_id,
                            due_date=checkin.due_date,
                            issued_on=today,
                        )
                        if checkin is not None
                        else None
                    ),
                }
            )
        instruct = (
            instruct_links(
                settings=settings,
                item_id=item_id,
                department_id=lines[0].department_id,
                recipients=leader_recipients,
                now=now,
            )
            if leader
            else []
        )
        rendered_items.append(
            {
                "label": item_number(item),
                "title": item.title,
                "plan": {"title": item.plan.title, "year": item.plan.year},
                "lines": rows,
                "instruct_url": str(instruct[0]["url"]) if instruct else None,
            }
        )
    first_plan = items[plan.items[0][0]].plan if plan.items else None
    if not leader:
        # a department's digest carries that department's own page, as its single emails do
        department_ids = [int(plan.recipient.removeprefix("department:"))]
    pages = [
        {
            "name": departments[department_id].name,
            "url": department_url(settings=settings, department_id=department_id, issued_on=today),
        }
        for department_id in department_ids
        if department_id in departments
    ]
    return {
        "organisation": settings.organisation
        or (first_plan.organisation if first_plan else "")
        or settings.mail_from_name,
        "recipient_name": "、".join(names)
        or ("、".join(department_names) if not leader else address),
        "for_leader": leader,
        "department": department_names[0] if department_names and not leader else "",
        "sent_on": today,
        "items": rendered_items,
        "checkin_count": sum(len(item["lines"]) for item in rendered_items),
        "returned_count": sum(
            1 for item in rendered_items for line in item["lines"] if line["returned"]
        ),
        "department_pages": pages,
    }


def digest_message(
    *,
    plan: DigestPlan,
    context: Mapping[str, Any],
    to: Sequence[str],
    attachments: Sequence[dict[str, str]] = (),
) -> NewMessage:
    """The outbox message of one digest (key: the digest's business key).

    Raises `notifications.outbox.HeaderInjectionError` for a line break in the subject or an
    address.
    """
    env = environment()
    values = dict(context)
    values["attached"] = [attachment["filename"] for attachment in attachments]
    subject = check_header(env.get_template(f"{KIND}.subject.j2").render(values).strip())
    for address in to:
        check_header(address)
    return NewMessage(
        key=plan.key,
        kind=KIND,
        to=list(to),
        subject=subject,
        text_body=env.get_template(f"{KIND}.txt.j2").render(values).strip() + "\n",
        html_body=env.get_template(f"{KIND}.html.j2").render(values),
        attachments=list(attachments),
    )
