"""Rendering email from zh-CN Jinja2 templates: one `Environment`, autoescaped HTML, strict.

`make_environment` is the one Jinja2 factory of duban (email here, the form in
`portal/app.py`, the HTML report in `tasks/reporting/html.py`): strict undefined variables,
no reloading, the shared filters of `models.formats`; each caller keeps its own loader and
autoescape rule (email: `.html.j2` only; the form: always; reports: HTML).

Each kind has `<kind>.subject.j2`, `<kind>.txt.j2` and `<kind>.html.j2` under
`notifications/templates/`. HTML templates are autoescaped (department narratives are shown
as text); undefined variables raise; a subject that would contain CR or LF is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    select_autoescape,
)

from models.errors import DubanError
from models.formats import cn_date, cn_day, cn_moment, cn_number, cn_percent
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


# The emails' names for the shared formats (`models.formats`).
format_date = cn_date
format_number = cn_number


class UnknownKindError(DubanError):
    """No template exists for the requested message kind."""


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered email: a one-line subject, a plain-text body and an HTML body."""

    subject: str
    text: str
    html: str


# The filters every template may use, whichever environment loads it. `cn_date` remembers
# the dates it wrote: a batch of emails writes the same few dates (the day, the due dates)
# thousands of times, and the formatter is pure.
SHARED_FILTERS: dict[str, Callable[..., str]] = {
    "cn_date": lru_cache(maxsize=4096)(cn_date),
    "cn_day": cn_day,
    "cn_moment": cn_moment,
    "num": cn_number,
    "pct": cn_percent,
}


def make_environment(
    loader: BaseLoader,
    *,
    autoescape: bool | Callable[[str | None], bool],
    trim_blocks: bool = True,
    keep_trailing_newline: bool = False,
) -> Environment:
    """A Jinja2 environment over `loader` with duban's settings and the shared filters.

    Undefined variables raise, templates are compiled once (no reloading); `trim_blocks`
    also strips a block tag's leading whitespace.
    """
    env = Environment(
        loader=loader,
        autoescape=autoescape,  # noqa: S701 (each caller passes its own rule)
        undefined=StrictUndefined,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        keep_trailing_newline=keep_trailing_newline,
        auto_reload=False,
    )
    env.filters.update(SHARED_FILTERS)
    return env


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The email's environment (autoescape for `.html.j2` only).

    Its templates are kept in a plain dict.
    """
    env = make_environment(
        PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=True, default=False
        ),
    )
    # A plain dict for the compiled templates (what Jinja2 uses for `cache_size=-1`): every
    # `{% extends %}` and `{% include %}` looks its template up per render, and the default
    # LRU cache takes a lock and reorders a deque on each lookup; the set is small and fixed.
    env.cache = {}
    return env


@lru_cache(maxsize=len(KINDS))
def _templates(kind: str) -> tuple[Template, Template, Template]:
    """The compiled subject, text and HTML templates of `kind`, looked up once."""
    env = environment()
    try:
        return (
            env.get_template(f"{kind}.subject.j2"),
            env.get_template(f"{kind}.txt.j2"),
            env.get_template(f"{kind}.html.j2"),
        )
    except TemplateNotFound as exc:
        raise UnknownKindError(f"邮件模板缺失：{exc.name}") from exc


def render_message(kind: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Render the subject, text and HTML of `kind` with `context`.

    Raises `UnknownKindError` for a kind without templates, `jinja2.UndefinedError` when the
    context lacks a variable, and `HeaderInjectionError` when the subject contains CR/LF.
    """
    if kind not in KINDS:
        raise UnknownKindError(f"未知的邮件类型：{kind}（可用：{'、'.join(KINDS)}）")
    subject_template, text_template, html_template = _templates(kind)
    values = dict(context)
    values.setdefault("kind_label", KINDS[kind])
    subject = check_header(_render(subject_template, values).strip())
    return RenderedMessage(
        subject=subject,
        text=_render(text_template, values).strip() + "\n",
        html=_render(html_template, values),
    )


def _render(template: Template, values: dict[str, Any]) -> str:
    """`template.render(values)`, the same text, without copying the globals into a fresh
    dict per render: the email templates use no globals, so `values` is the context's
    parent as it is (Jinja2 writes template assignments to the context, not to it). An
    error renders again through `Template.render` for Jinja2's own error and traceback."""
    try:
        return template.environment.concat(
            template.root_render_func(template.new_context(values, shared=True))
        )
    except Exception:  # rendered again below, for Jinja2's own error
        return template.render(values)
