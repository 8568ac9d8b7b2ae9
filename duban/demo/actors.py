"""The demo's simulated departments: they read their mail and answer through the real form.

Links are found in the messages the embedded SMTP server stored; every answer is an HTTP GET
of the form followed by a POST with its CSRF fields, exactly as a person's browser would.
"""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx

from duban.demo.script import Action
from models.errors import DubanError
from models.settings import Settings
from notifications.links import InvalidLink, verify_instruct_token, verify_token

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_ANSWER_FIELDS = re.compile(r'<textarea[^>]* name="(instruction_\d+)"')
INSTRUCTION_ANSWER = "已按领导批示要求加快推进：本期已逐项对照年度目标补齐短板，相关工作按期完成。"
EVIDENCE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


class DemoError(DubanError):
    """A step of the simulated year did not behave as a person would expect."""


@dataclass
class Inbox:
    """Every form link found in the mail store so far, by check-in id."""

    links: dict[int, str] = field(default_factory=dict)
    expiry: dict[int, date] = field(default_factory=dict)
    departments: dict[int, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    messages: int = 0
    instruct: dict[int, str] = field(default_factory=dict)  # item id -> a leader's latest link
    instruct_since: dict[int, datetime] = field(default_factory=dict)


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def collect_links(*, inbox: Inbox, mail_store: Path, settings: Settings, now: datetime) -> int:
    """Read messages not seen before and record the form links they carry; returns how many.

    A link whose token does not verify is a defect of the mail and raises `DemoError`.
    """
    pattern = re.compile(re.escape(settings.public_url) + r"/c/([A-Za-z0-9._~-]+)")
    instruct = re.compile(re.escape(settings.public_url) + r"/i/([A-Za-z0-9._~-]+)")
    box = mailbox.Maildir(mail_store, factory=None, create=True)
    fresh = [key for key in box.iterkeys() if key not in inbox.seen]
    for key in fresh:
        inbox.seen.add(key)
        message = message_from_bytes(box.get_bytes(key), policy=default)
        for token in set(pattern.findall(_text_of(message))):
            try:
                claims = verify_token(token, settings=settings, now=now)
            except InvalidLink as exc:
                raise DemoError(f"邮件 {key} 中的表单链接无效") from exc
            # The link valid longest wins: a return's email carries a link for the new due date.
            if claims.expires_on >= inbox.expiry.get(claims.checkin_id, claims.expires_on):
                inbox.links[claims.checkin_id] = f"{settings.public_url}/c/{token}"
                inbox.expiry[claims.checkin_id] = claims.expires_on
            inbox.departments[claims.checkin_id] = claims.department_id
        for token in set(instruct.findall(_text_of(message))):
            try:
                leader = verify_instruct_token(token, settings=settings, now=now)
            except InvalidLink as exc:
                raise DemoError(f"邮件 {key} 中的批示链接无效") from exc
            inbox.instruct[leader.item_id] = f"{settings.public_url}/i/{token}"
            inbox.instruct_since[leader.item_id] = now  # the latest escalation's link
    inbox.messages += len(fresh)
    return len(fresh)


def _form_fields(page: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(page))


def answer(
    *,
    client: httpx.Client,
    url: str,
    action: Action,
    values: dict[str, float],
    item_title: str,
    problems: str = "",
    second_version: bool = False,
    evidence: bool = False,
) -> int:
    """GET the form at `url`, then POST the department's answer; returns the HTTP status.

    A returned report is answered with a fuller `second_version`; every leader instruction
    the form asks about gets its 落实批示情况; `evidence` attaches a PDF (a multipart POST).
    Raises `DemoError` when the form page does not open or the POST is refused.
    """
    page = client.get(url)
    if page.status_code != 200:
        raise DemoError(f"表单页面打不开（HTTP {page.status_code}）")
    fields = _form_fields(page.text)
    for name in _ANSWER_FIELDS.findall(page.text):
        fields[name] = INSTRUCTION_ANSWER
    fields["status"] = action.status
    if action.kind == "extend" and action.new_date is not None:
        fields["narrative"] = f"{item_title}：前期工作已启动，因节假日集中活动申请延期报送。"
        fields["extension_date"] = action.new_date.isoformat()
        fields["extension_reason"] = "国庆假期前后活动集中，材料汇总需要更多时间。"
    else:
        fields["narrative"] = f"{item_title}：按计划推进，本期工作已完成。"
        if second_version:
            fields["narrative"] += (
                "按退回意见补充：本期开展活动12场次、参与2000余人次，经费与场地均已落实。"
            )
        fields["next_steps"] = "继续按年度计划推进，做好下一阶段工作。"
        if problems:
            fields["problems"] = problems
        fields.update({f"value_{key}": f"{value:g}" for key, value in values.items()})
    if evidence:
        upload = {"attachments": ("年度工作总结佐证.pdf", EVIDENCE_PDF, "application/pdf")}
        response = client.post(url, data=fields, files=upload)
    else:
        response = client.post(url, data=fields)
    if response.status_code != 200:
        raise DemoError(f"表单提交被拒绝（HTTP {response.status_code}）")
    return response.status_code


def write_instruction(*, client: httpx.Client, url: str, text: str) -> None:
    """A leader opens the instruct link of an escalation email and writes an instruction."""
    page = client.get(url)
    if page.status_code != 200:
        raise DemoError(f"批示页面打不开（HTTP {page.status_code}）")
    fields = _form_fields(page.text) | {"text": text}
    response = client.post(url, data=fields)
    if response.status_code != 200:
        raise DemoError(f"批示提交被拒绝（HTTP {response.status_code}）")


def request_completion(*, client: httpx.Client, form_url: str, summary: str) -> bool:
    """The lead department asks to close the item (申请办结) from its form; False when the
    form offers no completion link (not the lead, or the item is already closed)."""
    page = client.get(form_url)
    if page.status_code != 200 or 'id="completion-link"' not in page.text:
        return False
    url = f"{form_url}/close"
    form = client.get(url)
    if form.status_code != 200 or 'name="summary"' not in form.text:
        return False
    response = client.post(url, data=_form_fields(form.text) | {"summary": summary})
    if response.status_code != 200:
        raise DemoError(f"办结申请被拒绝（HTTP {response.status_code}）")
    return True
