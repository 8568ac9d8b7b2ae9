"""Group chat messages (企业微信, 钉钉, 飞书 robots): composed into the outbox, sent by apprise.

A notice the policy posts to chat (`SupervisionPolicy.chat_notices`) gets one outbox row per
robot beside its email, in the same transaction and under its own business key
(`chat:{kind}:{robot}:{notice key}`), so a re-run writes nothing twice. A chat message is a
short plain text (item, department, what is overdue, level, where to look) and never a
signed form link: a group is not one department contact.

Sending goes through apprise's own plugins for the three apps (`NotifyWeComBot`,
`NotifyDingTalk`, `NotifyFeishu`: token validation, DingTalk's signature, timeouts, TLS
verification, throttling). `_Reply` adds what apprise 1.13.1 leaves out: the configured
webhook's own host (private deployments, Lark, a loopback receiver in tests), 飞书's signed
webhooks (`timestamp`/`sign` in the body), and reading the reply body, where all three apps
report errors with HTTP 200 (`errcode`/`code` not 0) that apprise would count as sent.
Every message is `text` (`msgtype`/`msg_type`), so nothing from outside is read as markup.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import requests
from apprise.plugins.dingtalk import NotifyDingTalk
from apprise.plugins.feishu import NotifyFeishu
from apprise.plugins.wecombot import NotifyWeComBot
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Department
from models.outbox import OutboxMessage
from models.plan import Item, Plan
from models.policy import SupervisionPolicy, parse_policy
from models.report import Report
from models.robots import robot_token, robots_for
from models.supervision import Checkin, Notice
from models.vocabulary import Channel, CheckinKind, NoticeKind, RecipientRole
from notifications.context import period_label
from notifications.outbox import ClaimedMessage, NewMessage, enqueue_messages

__all__ = [
    "TEXT_LIMIT",
    "ChatSendOutcome",
    "chat_key",
    "enqueue_report_chat",
    "escalation_chat_messages",
    "escalation_text",
    "mask_url",
    "plain",
    "report_chat_messages",
    "robot_secrets",
    "send_chat",
]

TEXT_LIMIT = 1500
"""Characters of a chat message at most (企业微信 takes 2,048 bytes of text)."""
WHERE_TO_LOOK = "详情请查收督办邮件，或登录督办系统查看；如已报送请忽略。"
RATE_LIMITED = {45009, 130101, 9499, 11232, 11233}
"""Reply codes that mean "too many messages, try later" (WeCom, DingTalk, Feishu)."""

Outcome = Literal["sent", "dead", "retry"]


def plain(text: object, limit: int = 200) -> str:
    """Outside text as one plain line: line breaks and control characters become spaces,
    runs of spaces one, cut to `limit` characters with an ellipsis."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in str(text)
    )
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def mask_url(url: str) -> str:
    """A robot's webhook for display: app host and the token's first four characters."""
    parts = urlsplit(url)
    for kind in Channel.robot_kinds():
        try:
            token = robot_token(kind, url)
        except ValueError:
            continue
        return f"{parts.scheme}://{parts.hostname}/…{token[:4]}…"
    return f"{parts.scheme}://{parts.hostname}/…"


def chat_key(kind: str, url: str, key: str) -> str:
    """The outbox key of `key`'s message to the robot at `url` (at most 200 characters)."""
    robot = hashlib.sha256(url.encode()).hexdigest()[:12]
    full = f"chat:{kind}:{robot}:{key}"
    if len(full) <= 200:
        return full
    return f"chat:{kind}:{robot}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def escalation_text(
    *,
    item_label: str,
    department: str,
    level: int,
    level_label: str,
    due_date: str,
    what: str,
    catch_up: bool,
) -> str:
    """The chat text of a level-`level` escalation (督办) of one check-in (no link)."""
    lines = [
        f"【督办提醒】第{level}级督办（{plain(level_label, 60)}）",
        f"事项：{plain(item_label)}",
        f"责任部门：{plain(department, 100)}",
        f"逾期：{plain(what, 40)}截止日为{due_date}，至今未报送",
    ]
    if catch_up:
        lines.append("（系统补发）")
    lines.append(WHERE_TO_LOOK)
    return "\n".join(lines)[:TEXT_LIMIT]


def _message(
    robot: Mapping[str, str], *, key: str, subject: str, text: str, notice_id: int | None
) -> NewMessage:
    return NewMessage(
        key=chat_key(robot["kind"], robot["url"], key),
        kind="chat",
        to=[robot["url"]],
        subject=plain(subject, 150),
        text_body=text,
        notice_id=notice_id,
        channel=Channel(robot["kind"]),
    )


def _chat_roles(notice: Notice, policy: SupervisionPolicy) -> list[str]:
    """The ladder's roles of `notice`'s level, without those whose every recipient the
    catch-up cap held back (`models.catch_up`)."""
    roles: list[str] = []
    for rung in policy.escalation:
        if rung.level == notice.level:
            roles = list(rung.recipients)
    entries = [entry for entry in notice.recipients if isinstance(entry, dict)]
    held = {entry.get("role") for entry in entries if entry.get("held")}
    held -= {entry.get("role") for entry in entries if not entry.get("held")}
    return [role for role in roles if role not in held]


def escalation_chat_messages(
    *,
    notices: Sequence[Notice],
    items: Mapping[int, Item],
    checkins: Mapping[int, Checkin],
    departments: Mapping[int, Department],
    offices: Sequence[Department],
    policy: SupervisionPolicy,
    level_label: Mapping[int, str],
) -> list[NewMessage]:
    """The chat messages of the escalations among `notices`, one per robot of the roles
    the ladder names for its level (`models.robots.robots_for`). Reads nothing."""
    if "escalation" not in policy.chat_notices:
        return []
    office_robots = [office.robots for office in offices]
    messages: list[NewMessage] = []
    for notice in notices:
        if notice.kind != NoticeKind.ESCALATION or notice.checkin_id is None:
            continue
        item = items.get(notice.item_id) if notice.item_id is not None else None
        checkin = checkins.get(notice.checkin_id)
        department = departments.get(checkin.department_id) if checkin else None
        if item is None or checkin is None or department is None:
            continue
        robots = robots_for(department.robots, _chat_roles(notice, policy), office_robots)
        if not robots:
            continue
        text = escalation_text(
            item_label=f"第{item.number}项 {item.title}",
            department=department.name,
            level=notice.level,
            level_label=level_label.get(notice.level, f"第{notice.level}级督办"),
            due_date=checkin.due_date.isoformat(),
            what=CheckinKind.label_of(checkin.kind),
            catch_up="补发" in notice.reason,
        )
        subject = f"第{notice.level}级督办：第{item.number}项（{department.name}）"
        messages.extend(
            _message(robot, key=notice.key, subject=subject, text=text, notice_id=notice.id)
            for robot in robots
        )
    return messages


def report_chat_messages(
    *,
    report_key: str,
    departments: Sequence[Department],
    emails: Sequence[str],
    title: str,
    summary: Sequence[str],
    policy: SupervisionPolicy,
) -> list[NewMessage]:
    """The chat notices of a report (通报) emailed to `emails`: one per robot of a group
    whose person or department contact is among them. Reads nothing."""
    if "report" not in policy.chat_notices:
        return []
    wanted = set(emails)
    robots: list[dict[str, str]] = []
    for department in departments:
        roles = []
        if wanted & {str(email) for email in department.contact_emails}:
            roles.append(RecipientRole.CONTACT)
        if department.leader_email in wanted:
            roles.append(RecipientRole.LEADER)
        if department.head_email in wanted:
            roles.append(RecipientRole.HEAD)
        for robot in robots_for(department.robots, roles):
            if robot["url"] not in {known["url"] for known in robots}:
                robots.append(robot)
    lines = [f"【督办通报】{plain(title)}已印发", *(plain(line) for line in summary[:5])]
    lines.append("全文已通过邮件发送，请查收附件。")
    text = "\n".join(lines)[:TEXT_LIMIT]
    return [
        _message(robot, key=report_key, subject=plain(title, 150), text=text, notice_id=None)
        for robot in robots
    ]


def enqueue_report_chat(
    *, session: Session, report: Report, recipients: Sequence[Any], now: datetime
) -> int:
    """Enqueue the chat notices of `report` (通报) emailed to `recipients` (addresses or
    `{name, email}`), once per report and robot; returns rows added. Does not commit."""
    plan = session.get(Plan, report.plan_id)
    if plan is None:
        return 0
    emails = [
        str(entry.get("email") or "") if isinstance(entry, dict) else str(entry)
        for entry in recipients
    ]
    kind = "总结评估" if report.kind == "year" else "督办通报"
    summary = report.summary.get("lines", [])
    messages = report_chat_messages(
        report_key=f"report:{report.id}",
        departments=list(session.scalars(select(Department).order_by(Department.id))),
        emails=[email for email in emails if email],
        title=f"{plan.title}{period_label(report.period)}{kind}",
        summary=[str(line) for line in summary] if isinstance(summary, list) else [],
        policy=parse_policy(plan.policy or None),
    )
    return enqueue_messages(session=session, messages=messages, now=now).added


def robot_secrets(*, session: Session) -> dict[str, str]:
    """Every configured robot's signing secret by webhook address (one query)."""
    secrets: dict[str, str] = {}
    for robots in session.scalars(select(Department.robots)):
        for robot in robots or []:
            if isinstance(robot, dict) and robot.get("url"):
                secrets[str(robot["url"])] = str(robot.get("secret") or "")
    return secrets


class _Reply:
    """What the three plugins share here: post to the configured webhook, read the reply.

    `webhook` is the directory's address (its host is used as given); `status` and
    `error` describe the last send for the relay.
    """

    webhook: str = ""
    error: str = ""
    transient: bool = False
    code_field: ClassVar[str] = "errcode"

    def _post(
        self, plugin: Any, payload: dict[str, Any], params: dict[str, str] | None = None
    ) -> bool:
        plugin.throttle()
        try:
            response = requests.post(
                self.webhook,
                data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                headers={"User-Agent": plugin.app_id, "Content-Type": "application/json"},
                params=params,
                verify=plugin.verify_certificate,
                timeout=plugin.request_timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self.error, self.transient = f"无法连接群机器人：{type(exc).__name__}", True
            return False
        if response.status_code != requests.codes.ok:
            self.transient = response.status_code == 429 or response.status_code >= 500
            self.error = f"HTTP {response.status_code}"
            return False
        try:
            body = response.json()
            code = int(body.get(self.code_field, body.get("StatusCode", 0)) or 0)
            message = str(body.get("errmsg", body.get("msg", "")))
        except (ValueError, AttributeError, TypeError):
            self.error, self.transient = "群机器人的答复不是 JSON", True
            return False
        if code != 0:
            self.transient = code in RATE_LIMITED
            self.error = f"群机器人拒收：{code} {plain(message, 200)}"
            return False
        return True


class WeComRobot(_Reply, NotifyWeComBot):  # type: ignore[no-untyped-call]
    """apprise's WeCom bot, posting `{"msgtype": "text", "text": {"content"}}` to `webhook`."""

    def send(self, body: str, title: str = "", notify_type: Any = None, **kwargs: Any) -> bool:  # noqa: ARG002
        """Post `body` as text; False with `error` set on any failure."""
        return self._post(self, {"msgtype": "text", "text": {"content": body}})


class DingTalkRobot(_Reply, NotifyDingTalk):  # type: ignore[no-untyped-call]
    """apprise's DingTalk robot, posting `{"msgtype": "text", "text": {"content"}}` with
    apprise's `timestamp`/`sign` query when it has a secret."""

    def send(self, body: str, title: str = "", notify_type: Any = None, **kwargs: Any) -> bool:  # noqa: ARG002
        """Post `body` as text (signed with the secret if any); False with `error` set."""
        params = None
        if self.secret:
            timestamp, signature = self.get_signature()  # type: ignore[no-untyped-call]
            params = {"timestamp": timestamp, "sign": unquote(signature)}
        payload = {"msgtype": "text", "text": {"content": body}}
        return self._post(self, payload, params)


class FeishuRobot(_Reply, NotifyFeishu):  # type: ignore[no-untyped-call]
    """apprise's Feishu bot, posting `{"msg_type": "text", "content": {"text"}}`, with
    `timestamp` and `sign` in the body when the robot has a secret (飞书 signed webhooks)."""

    code_field = "code"
    secret: str = ""

    def send(self, body: str, title: str = "", notify_type: Any = None, **kwargs: Any) -> bool:  # noqa: ARG002
        """Post `body` as text (signed with the secret if any); False with `error` set."""
        payload: dict[str, Any] = {"msg_type": "text", "content": {"text": body}}
        if self.secret:
            timestamp = str(int(time.time()))
            payload = {"timestamp": timestamp, "sign": feishu_sign(timestamp, self.secret)}
            payload |= {"msg_type": "text", "content": {"text": body}}
        return self._post(self, payload)


def feishu_sign(timestamp: str, secret: str) -> str:
    """飞书's webhook signature: base64 of HMAC-SHA256 keyed by `"{timestamp}\\n{secret}"`
    over an empty message."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def robot_plugin(kind: Channel, url: str, secret: str, *, interval: float) -> _Reply:
    """The apprise plugin for one robot, posting to `url`; `interval` seconds between two
    sends through it (the apps allow about 20 messages a minute per robot)."""
    token = robot_token(kind, url)
    plugin: _Reply
    if kind is Channel.WECOM:
        plugin = WeComRobot(key=token)  # type: ignore[no-untyped-call]
    elif kind is Channel.DINGTALK:
        plugin = DingTalkRobot(token=token, secret=secret or None)  # type: ignore[no-untyped-call]
    else:
        plugin = FeishuRobot(token=token)  # type: ignore[no-untyped-call]
        plugin.secret = secret
    plugin.webhook = url
    plugin.request_rate_per_sec = interval  # type: ignore[attr-defined,unused-ignore]
    return plugin


@dataclass(frozen=True)
class ChatSendOutcome:
    """How one chat row's send ended: `sent`, `retry` (try later) or `dead`, and why."""

    outcome: Outcome
    error: str
    results: dict[str, str]


async def send_chat(
    row: OutboxMessage | ClaimedMessage,
    plugins: dict[str, _Reply],
    secrets: Mapping[str, str],
    interval: float,
) -> ChatSendOutcome:
    """Post one chat row through its robot's plugin (made once per webhook in `plugins`).

    A robot no longer in the directory, a token apprise refuses and a refusal the app
    says is final are dead letters; connection failures, 5xx, 429 and rate limits retry.
    """
    url = str(row.to_addrs[0]) if row.to_addrs else ""
    shown = mask_url(url)
    if url not in secrets:
        return ChatSendOutcome("dead", "该群机器人已不在部门名录中，请重新导入名录后重发", {})
    plugin = plugins.get(url)
    if plugin is None:
        try:
            plugin = robot_plugin(Channel(row.channel), url, secrets[url], interval=interval)
        except (TypeError, ValueError) as exc:
            return ChatSendOutcome("dead", f"群机器人配置无效：{plain(exc, 200)}", {})
        plugins[url] = plugin
    sent = await asyncio.to_thread(plugin.send, row.text_body)  # type: ignore[attr-defined]
    if sent:
        return ChatSendOutcome("sent", "", {shown: "ok"})
    outcome: Outcome = "retry" if plugin.transient else "dead"
    return ChatSendOutcome(outcome, plugin.error, {shown: plugin.error})
