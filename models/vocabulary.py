"""The one vocabulary: every status, colour, role, kind and event type, with its Chinese label.

Each is a `StrEnum` whose values are the strings stored in the database and sent in events,
so `Checkin.status == CheckinStatus.PENDING` and `"pending"` compare equal and no schema
changes. `label` is the Chinese word a supervisor or department reads; `of(text)` returns
the member for a stored string, or None for an unknown one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = [
    "AssignmentRole",
    "Channel",
    "CheckinKind",
    "CheckinStatus",
    "Colour",
    "CompletionDecision",
    "DeductionKind",
    "EventType",
    "ExtensionDecision",
    "InboxChoice",
    "InboxKind",
    "InstructionSource",
    "InstructionState",
    "ItemProgress",
    "ItemState",
    "NoticeKind",
    "OutboxStatus",
    "RecipientRole",
    "ReviewDecision",
    "SelfStatusValue",
]


class _Labelled(StrEnum):
    """A StrEnum with a Chinese `label` per member (registered in `_LABELS`)."""

    @property
    def label(self) -> str:
        """The Chinese label of this value."""
        return _LABELS.get(type(self), {}).get(self.value, self.value)

    @classmethod
    def of(cls, text: str | None) -> Self | None:
        """The member whose value is `text`, or None."""
        if text is None:
            return None
        try:
            return cls(text)
        except ValueError:
            return None

    @classmethod
    def label_of(cls, text: str) -> str:
        """The Chinese label of a stored string; the string itself when it is unknown.

        One dict lookup (every key of `_LABELS[cls]` is a member's value), not a member
        built from `text` first: composition asks for a label per email."""
        return _LABELS.get(cls, {}).get(text, text)

    @classmethod
    def labels(cls) -> dict[str, str]:
        """`{value: label}` of every member, in definition order."""
        return {member.value: member.label for member in cls}


_LABELS: dict[type[_Labelled], dict[str, str]] = {}


class CheckinStatus(_Labelled):
    """A check-in (报送) is awaited, answered, or cancelled (its department was relieved)."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    CANCELLED = "cancelled"


_LABELS[CheckinStatus] = {"pending": "待报送", "submitted": "已报送", "cancelled": "已取消"}


class CheckinKind(_Labelled):
    """What a check-in asks for, by phase."""

    WORK_PLAN = "work_plan"
    PROGRESS = "progress"
    SELF_ASSESSMENT = "self_assessment"


_LABELS[CheckinKind] = {
    "work_plan": "实施方案",
    "progress": "进展报告",
    "self_assessment": "自查报告",
}


class ItemState(_Labelled):
    """An item's supervision state after a pass (also the name of its flow run's state)."""

    ON_TRACK = "OnTrack"
    AWAITING = "AwaitingCheckin"
    OVERDUE = "Overdue"
    ESCALATED = "Escalated"
    CLOSED = "Closed"


_LABELS[ItemState] = {
    "OnTrack": "正常推进",
    "AwaitingCheckin": "等待报送",
    "Overdue": "已逾期",
    "Escalated": "已督办升级",
    "Closed": "已办结",
}


class Colour(_Labelled):
    """An item's colour (红黄绿灯); `none` until its first pass."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"

    @property
    def badge(self) -> str:
        """The label with its coloured dot, for tables and status cards."""
        return f"{_BADGES[self.value]} {self.label}"


_LABELS[Colour] = {"green": "绿灯", "amber": "黄灯", "red": "红灯", "none": "未评定"}
_BADGES = {"green": "🟢", "amber": "🟡", "red": "🔴", "none": "⚪"}


class SelfStatusValue(_Labelled):
    """The status a department reports of its own work in a submission."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BLOCKED = "blocked"
    DONE = "done"


_LABELS[SelfStatusValue] = {
    "on_track": "按计划推进",
    "at_risk": "存在风险",
    "blocked": "受阻",
    "done": "已完成",
}


class AssignmentRole(_Labelled):
    """A department's part in an item: it leads (牵头) or supports (配合)."""

    LEAD = "lead"
    SUPPORT = "support"


_LABELS[AssignmentRole] = {"lead": "牵头", "support": "配合"}


class RecipientRole(_Labelled):
    """Who a notice goes to."""

    CONTACT = "contact"
    LEADER = "leader"
    HEAD = "head"
    OFFICE = "office"


_LABELS[RecipientRole] = {
    "contact": "部室联系人",
    "leader": "分管领导",
    "head": "主要负责人",
    "office": "督查室",
}


class NoticeKind(_Labelled):
    """What a recorded notice is."""

    ASSIGNMENT = "assignment"
    REQUEST = "request"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    RECEIPT = "receipt"
    REPORT = "report"
    REVIEW_OVERDUE = "review_overdue"
    CATCH_UP = "catch_up"
    RETURNED = "returned"


_LABELS[NoticeKind] = {
    "assignment": "交办通知",
    "request": "报送提醒",
    "reminder": "到期提醒",
    "escalation": "督办",
    "receipt": "回执",
    "report": "通报",
    "review_overdue": "审核超时督办",
    "catch_up": "补发督办汇总",
    "returned": "退回重报",
}


class ExtensionDecision(_Labelled):
    """Where an extension request (延期申请) stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


_LABELS[ExtensionDecision] = {
    "pending": "待审批",
    "approved": "已批准",
    "rejected": "未批准",
    "withdrawn": "已撤回",
}


class OutboxStatus(_Labelled):
    """Where an email in the outbox stands."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


_LABELS[OutboxStatus] = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "dead": "失败",
}


class Channel(_Labelled):
    """How an outbox row is delivered: email, or a group chat robot (群机器人)."""

    EMAIL = "email"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"

    @classmethod
    def robot_kinds(cls) -> tuple[Channel, ...]:
        """The chat apps a robot can belong to."""
        return (cls.WECOM, cls.DINGTALK, cls.FEISHU)


_LABELS[Channel] = {
    "email": "邮件",
    "wecom": "企业微信",
    "dingtalk": "钉钉",
    "feishu": "飞书",
}


class EventType(StrEnum):
    """Domain event types (`duban.<object>.<verb>`) the daily pass and check-ins write."""

    ITEM_ASSIGNED = "duban.item.assigned"
    ITEM_ESCALATED = "duban.item.escalated"
    ITEM_STATUS_CHANGED = "duban.item.status_changed"
    CHECKIN_REQUESTED = "duban.checkin.requested"
    CHECKIN_REMINDED = "duban.checkin.reminded"
    CHECKIN_OVERDUE = "duban.checkin.overdue"
    CHECKIN_EXTENDED = "duban.checkin.extended"
    PLAN_STARTED = "duban.plan.started"
    CHECKIN_ACCEPTED = "duban.checkin.accepted"
    CHECKIN_RETURNED = "duban.checkin.returned"
    CHECKIN_REVIEW_OVERDUE = "duban.checkin.review_overdue"
    ITEM_INSTRUCTED = "duban.item.instructed"
    ITEM_COMPLETION_REQUESTED = "duban.item.completion_requested"
    ITEM_COMPLETION_REJECTED = "duban.item.completion_rejected"
    ITEM_CLOSED = "duban.item.closed"
    ITEM_REOPENED = "duban.item.reopened"


class InstructionSource(_Labelled):
    """How a leader's instruction (领导批示) reached duban: through its signed link, or
    recorded by the supervision office from paper on the leader's behalf."""

    LINK = "link"
    PAPER = "paper"


_LABELS[InstructionSource] = {"link": "邮件链接批示", "paper": "督查室代录（书面批示）"}


class InstructionState(_Labelled):
    """Whether a leader's instruction has been answered (落实批示情况) by a report."""

    OPEN = "open"
    ANSWERED = "answered"


_LABELS[InstructionState] = {"open": "待落实", "answered": "已反馈落实情况"}


class ItemProgress(_Labelled):
    """An item against 序时进度 in a 通报's 总体情况 (see `models.progress`)."""

    DONE = "done"
    AHEAD = "ahead"
    ON_PACE = "on_pace"
    BEHIND = "behind"
    OTHER = "other"


_LABELS[ItemProgress] = {
    "done": "已完成",
    "ahead": "超进度",
    "on_pace": "达进度",
    "behind": "欠进度",
    "other": "其他",
}


class DeductionKind(_Labelled):
    """Why a department lost points in its 考核 score (see `models.scoring`)."""

    LATE = "late"
    MISSING = "missing"
    ESCALATION = "escalation"
    RETURNED = "returned"
    INSTRUCTION = "instruction"
    BEHIND = "behind"


_LABELS[DeductionKind] = {
    "late": "逾期报送",
    "missing": "未报送",
    "escalation": "被督办",
    "returned": "报告被退回",
    "instruction": "批示未落实",
    "behind": "欠序时进度",
}


class ReviewDecision(_Labelled):
    """Where a check-in's report stands with the supervision office (审核).

    `pending` is derived (a submitted report the policy wants reviewed and not yet decided);
    `accepted` and `returned` are stored on the check-in and on each decision row.
    """

    PENDING = "pending"
    ACCEPTED = "accepted"
    RETURNED = "returned"


_LABELS[ReviewDecision] = {"pending": "待审核", "accepted": "通过", "returned": "退回"}


class CompletionDecision(_Labelled):
    """Where a completion request (申请办结) stands: awaiting the office, approved (销号)
    or rejected (驳回)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


_LABELS[CompletionDecision] = {
    "pending": "待审核",
    "approved": "已销号",
    "rejected": "已驳回",
}


class AttachmentType(_Labelled):
    """The type of an evidence file (附件), as sniffed from its content (never its name)."""

    PDF = "pdf"
    PNG = "png"
    JPEG = "jpeg"
    GIF = "gif"
    WEBP = "webp"
    DOCX = "docx"
    DOC = "doc"
    XLSX = "xlsx"
    XLS = "xls"


_LABELS[AttachmentType] = {
    "pdf": "PDF文档",
    "png": "PNG图片",
    "jpeg": "JPEG图片",
    "gif": "GIF图片",
    "webp": "WebP图片",
    "docx": "Word文档",
    "doc": "Word 97-2003文档",
    "xlsx": "Excel表格",
    "xls": "Excel 97-2003表格",
}


class AttachmentStorage(_Labelled):
    """Where an attachment's bytes are kept: in its database row or in the shared directory."""

    DATABASE = "database"
    DIRECTORY = "directory"


_LABELS[AttachmentStorage] = {"database": "数据库", "directory": "共享目录"}


class InboxKind(_Labelled):
    """A kind of decision that waits for a supervisor in the inbox (a run waiting for input)."""

    EXTENSION = "extension"
    REPORT_REVIEW = "report_review"
    COMPLETION = "completion"


_LABELS[InboxKind] = {
    "extension": "延期申请",
    "report_review": "报送审核",
    "completion": "办结申请",
}


class InboxChoice(StrEnum):
    """The answers an inbox form offers; the value is the Chinese word the Prefect UI shows
    in the form's drop-down (the UI displays enum values, not labels)."""

    APPROVE = "批准"
    REJECT = "驳回"
    ACCEPT = "通过"
    RETURN = "退回"
