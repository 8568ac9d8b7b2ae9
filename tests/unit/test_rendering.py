"""Email templates: every kind renders, HTML is escaped, undefined is an error, no CR/LF."""

from __future__ import annotations

from datetime import date

import pytest
from jinja2 import Template, UndefinedError

from notifications.outbox import HeaderInjectionError
from notifications.rendering import (
    KINDS,
    UnknownKindError,
    environment,
    flattened,
    format_date,
    render_message,
)
from notifications.samples import sample_context


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_subject_text_and_html(kind: str) -> None:
    context = sample_context(kind)
    message = render_message(kind, context)
    assert message.subject.startswith(f"【{KINDS[kind]}")
    assert "\n" not in message.subject
    assert context["plan"]["title"] in message.text
    assert message.html.startswith("<!DOCTYPE html>")
    assert 'lang="zh-CN"' in message.html
    if kind != "report":
        for expected in ("第4项", "学会部", "落实达标", "2021年6月30日（星期三）", "200场次"):
            assert expected in message.text
            assert expected in message.html
        assert context["form_url"] in message.text
        assert f'href="{context["form_url"]}"' in message.html


def test_weekday_is_named() -> None:
    assert format_date(date(2021, 6, 30)) == "2021年6月30日（星期三）"
    assert format_date(date(2021, 7, 4)) == "2021年7月4日（星期日）"


def test_escalation_says_level_and_how_overdue() -> None:
    message = render_message("escalation", sample_context("escalation"))
    assert "第1级督办" in message.text and "逾期7天" in message.text
    assert "逾期7天" in message.subject


def test_reminder_before_and_after_due() -> None:
    context = sample_context("reminder")
    assert "已逾期3天" in render_message("reminder", context).subject
    context["overdue_days"] = -2
    assert "还有2天" in render_message("reminder", context).text


def test_html_escapes_department_text_and_text_keeps_it() -> None:
    context = sample_context("request")
    context["last"]["narrative"] = '<img src=x onerror="alert(1)"> & 进展'
    context["department"]["name"] = "<b>学会部</b>"
    message = render_message("request", context)
    assert "<img" not in message.html and "<b>学会部" not in message.html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; 进展" in message.html
    assert '<img src=x onerror="alert(1)"> & 进展' in message.text


def test_missing_variable_is_an_error() -> None:
    context = sample_context("assignment")
    del context["form_url"]
    with pytest.raises(UndefinedError):
        render_message("assignment", context)


@pytest.mark.parametrize("bad", ["搭建平台\r\nBcc: evil@example.org", "搭建\n平台"])
def test_subject_with_line_break_is_refused(bad: str) -> None:
    context = sample_context("request")
    context["item"]["title"] = bad
    with pytest.raises(HeaderInjectionError):
        render_message("request", context)


def test_unknown_kind() -> None:
    with pytest.raises(UnknownKindError, match="未知的邮件类型"):
        render_message("spam", {})


# Contexts that take the templates' other branches: no phase, due date, targets, last
# submission, link or department page; asks and instruct links present; overdue or not.
_VARIANTS: list[dict[str, object]] = [
    {},
    {"phase": None, "due_date": None, "overdue_days": None, "targets": [], "last": None},
    {"form_url": None, "overdue_days": -2},
    {"asks": "完成第一阶段", "overdue_days": 0, "department_page_url": ""},
    {"overdue_days": None, "reason": "", "attached": ["督办单.docx"]},
    {"instruct_links": [], "level": 3, "level_label": "主要负责人、督查室督办"},
]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_flattened_templates_render_what_jinja_renders(kind: str) -> None:
    env = environment()
    for variant in _VARIANTS:
        values = sample_context(kind) | {"kind_label": KINDS[kind]}
        values |= {
            key: value for key, value in variant.items() if key in values or kind != "report"
        }
        for part in ("subject", "txt", "html"):
            name = f"{kind}.{part}.j2"
            template = flattened(env, name)
            assert template is not env.get_template(name), f"{name} is not flattened"
            assert _outcome(template, values) == _outcome(env.get_template(name), values)


def _outcome(template: Template, values: dict[str, object]) -> str:
    """What rendering gives: the text, or the kind and message of the error it raises (a
    context a kind does not accept fails the same way flattened or not)."""
    try:
        return template.render(values)
    except Exception as exc:  # compared, not handled
        return f"{type(exc).__name__}: {exc}"
