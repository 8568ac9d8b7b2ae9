"""Rendering email from zh-CN Jinja2 templates: one `Environment`, autoescaped HTML, strict.

Each kind has `<kind>.subject.j2`, `<kind>.txt.j2` and `<kind>.html.j2` under
`notifications/templates/`. HTML templates are autoescaped (department narratives are shown
as text); undefined variables raise; a subject that would contain CR or LF is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from models.errors import DubanError
from notifications.outbox import check_header

KINDS: dict[str, str] = {
    "assignment": "交办通知",
    "request": "报送提醒",
    "reminder": "催办",
    "escalation": "督办",
    "report": "通报",
    "receipt": "回执",
    "returned": "退回",
    "review_overdue": "审核超时督办",
    "extension_decision": "延期审批结果",
    "instruction": "领导批示",
    "closure": "办结",
}

WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


class UnknownKindError(DubanError):
    """No template exists for the requested message kind."""


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered email: a one-line subject, a plain-text body and an HTML body."""

    subject: str
    text: str
    html: str


def format_date(value: date) -> str:
    """`2021年6月30日（星期三）`: a date as a Chinese reader expects it, with its weekday."""
    return f"{value.year}年{value.month}月{value.day}日（{WEEKDAYS[value.weekday()]}）"


def format_number(value: float | int) -> str:
    """A reported or target number without a useless `.0` (`200`, `12.5`)."""
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else f"{as_float:g}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment of duban's email (autoescape for `.html.j2`, strict)."""
    env = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=True, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["cn_date"] = format_date
    env.filters["num"] = format_number
    return env


def render_message(kind: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Render the subject, text and HTML of `kind` with `context`.

    Raises `UnknownKindError` for a kind without templates, `jinja2.UndefinedError` when the
    context lacks a variable, and `HeaderInjectionError` when the subject contains CR/LF.
    """
    if kind not in KINDS:
        raise UnknownKindError(f"未知的邮件类型：{kind}（可用：{'、'.join(KINDS)}）")
    env = environment()
    try:
        subject_template = env.get_template(f"{kind}.subject.j2")
        text_template = env.get_template(f"{kind}.txt.j2")
        html_template = env.get_template(f"{kind}.html.j2")
    except TemplateNotFound as exc:
        raise UnknownKindError(f"邮件模板缺失：{exc.name}") from exc
    values = dict(context)
    values.setdefault("kind_label", KINDS[kind])
    subject = check_header(subject_template.render(values).strip())
    return RenderedMessage(
        subject=subject,
        text=text_template.render(values).strip() + "\n",
        html=html_template.render(values),
    )
