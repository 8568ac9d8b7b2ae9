"""Email templates: every kind renders, HTML is escaped, undefined is an error, no CR/LF."""

from __future__ import annotations

from datetime import date

import pytest
from jinja2 import Template, UndefinedError
from jinja2.runtime import new_context
from markupsafe import Markup, escape

from notifications.outbox import HeaderInjectionError
from notifications.rendering import (
    KINDS,
    UnknownKindError,
    _FlatContext,
    _FlatTemplate,
    _render,
    environment,
    flattened,
    format_date,
    remembered_escape,
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
            expected = _outcome(env.get_template(name), values)
            assert _outcome(template, values) == expected
            if _renders(env.get_template(name), values):  # as `render_message` renders
                assert _render(template, dict(values)) == expected


def _renders(template: Template, values: dict[str, object]) -> bool:
    try:
        template.render(values)
    except Exception:  # an error's outcome is compared by `_outcome`
        return False
    return True


def _outcome(template: Template, values: dict[str, object]) -> str:
    """What rendering gives: the text, or the kind and message of the error it raises (a
    context a kind does not accept fails the same way flattened or not)."""
    try:
        return template.render(values)
    except Exception as exc:  # compared, not handled
        return f"{type(exc).__name__}: {exc}"


def test_a_flattened_render_has_the_context_jinja_builds() -> None:
    """`_FlatContext` sets what `new_context` sets, to equal values (a Jinja2 release that
    adds an attribute to `Context` fails here)."""
    env = environment()
    values = sample_context("request") | {"kind_label": KINDS["request"]}
    for part in ("subject", "txt", "html"):
        template = flattened(env, f"request.{part}.j2")
        assert isinstance(template, _FlatTemplate)
        ours = vars(_FlatContext(template, values))
        theirs = vars(new_context(env, template.name, template.blocks, values, shared=True))
        assert ours.keys() == theirs.keys()
        assert vars(ours.pop("eval_ctx")) == vars(theirs.pop("eval_ctx"))
        assert ours == theirs


@pytest.mark.parametrize(
    "value", ["<b>学会部</b> & “三长”", "", 2021, -3, True, 1.0, None, Markup("<br>"), ["x"]]
)
def test_remembered_escape_is_markupsafes(value: object) -> None:
    for _ in range(2):  # escaped, then looked up
        assert remembered_escape(value) == escape(value)
        assert type(remembered_escape(value)) is Markup
    assert remembered_escape(1) == "1" and remembered_escape(True) == "True"
