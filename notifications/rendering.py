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
from typing import Any, cast

from jinja2 import (
    BaseLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    nodes,
    select_autoescape,
)
from jinja2.runtime import Context, new_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

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
    """The subject, text and HTML templates of `kind`, compiled once and flattened
    (`flattened`)."""
    env = environment()
    try:
        return (
            flattened(env, f"{kind}.subject.j2"),
            flattened(env, f"{kind}.txt.j2"),
            flattened(env, f"{kind}.html.j2"),
        )
    except TemplateNotFound as exc:
        raise UnknownKindError(f"邮件模板缺失：{exc.name}") from exc


class _NotFlat(Exception):
    """A template uses something `flattened` does not inline."""


# What a partial must not hold to be inlined: blocks and a parent of its own, or names it
# would define in the including template (an include's own names stay its own).
_DEFINES = (nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.Import, nodes.FromImport)
_NOT_INLINED = (nodes.Block, nodes.Extends, *_DEFINES)


class _Inliner(NodeTransformer):
    """Replaces each `{% include "name" %}` (a constant name, with context) by the body of
    that template, itself inlined; a partial that holds `_NOT_INLINED` is not inlined."""

    def __init__(self, env: Environment, autoescape: bool) -> None:
        self.env = env
        self.autoescape = autoescape

    def visit_Include(self, node: nodes.Include) -> list[nodes.Node]:
        if not isinstance(node.template, nodes.Const) or not node.with_context:
            raise _NotFlat
        body = _inlined(self.env, str(node.template.value), self.autoescape).body
        if any(True for _ in nodes.Template(body).find_all(_NOT_INLINED)):
            raise _NotFlat
        return body


def _escapes(env: Environment, name: str) -> bool:
    return bool(env.autoescape(name) if callable(env.autoescape) else env.autoescape)


def _inlined(env: Environment, name: str, autoescape: bool) -> nodes.Template:
    """The parsed template `name` with its includes inlined and its `extends` resolved."""
    if _escapes(env, name) != autoescape:
        raise _NotFlat
    source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
    tree: nodes.Template = _Inliner(env, autoescape).visit(env.parse(source, name, filename))
    names = {node.name for node in tree.find_all(nodes.Name)}
    if {"self", "super"} & names:
        raise _NotFlat
    if not tree.body or not isinstance(tree.body[0], nodes.Extends):
        if tree.find(nodes.Extends) is not None:
            raise _NotFlat
        return tree
    extends, *rest = tree.body
    overrides = {node.name: node for node in rest if isinstance(node, nodes.Block)}
    if (
        not isinstance(extends, nodes.Extends)
        or not isinstance(extends.template, nodes.Const)
        or len(overrides) != len(rest)
        or any(block.find(nodes.Block) is not None for block in overrides.values())
    ):
        raise _NotFlat
    parent = _inlined(env, str(extends.template.value), autoescape)
    blocks = {block.name: block for block in parent.find_all(nodes.Block)}
    if any(block.find(nodes.Block) is not None for block in blocks.values()) or (
        set(overrides) - set(blocks)
    ):
        raise _NotFlat
    for block_name, block in overrides.items():
        blocks[block_name].body = block.body
    return parent


def flattened(env: Environment, name: str) -> Template:
    """Template `name` compiled as one template: each `{% include %}` of a constant name
    inlined, and an `{% extends %}` resolved into the parent's source with the child's
    blocks in place, the blocks' bodies inline, so a render runs one context and one
    generator, with no include, parent or block lookups.

    Renders the same text as `env.get_template(name)` (each file is lexed as it is,
    whitespace rules included; partials define no variables the including template
    reads): `tests/unit/test_rendering.py` compares every kind. A template using what is
    not inlined here (a partial with blocks, a dynamic name, `self`, `super`, a parent
    with nested blocks) is `env.get_template(name)` itself.
    """
    template = env.get_template(name)
    try:
        tree = _inlined(env, name, _escapes(env, name))
    except _NotFlat:
        return template
    blocks = list(tree.find_all(nodes.Block))
    if all(block in tree.body for block in blocks) and not any(tree.find_all(_DEFINES)):
        # Top-level blocks of a template nothing extends, without names set around them:
        # their bodies render in place (a block is a generator of its own per render).
        tree.body = [
            child
            for node in tree.body
            for child in (node.body if isinstance(node, nodes.Block) else [node])
        ]
    code = env.compile(tree, name, template.filename)
    # `from_code` builds an instance of the class it is called on (typed as `Template`)
    flat = cast(_FlatTemplate, _FlatTemplate.from_code(env, code, env.make_globals(None)))
    flat.root_render_func.__globals__["escape"] = remembered_escape
    if tree.find(nodes.EvalContextModifier) is None:  # no `{% autoescape %}` changes it
        flat.eval_ctx = nodes.EvalContext(env, name)
    return flat


class _FlatTemplate(Template):
    """A template `flattened` compiled: it writes through `remembered_escape`, and its
    renders share `eval_ctx` when it has one (nothing in the template changes it)."""

    eval_ctx: nodes.EvalContext | None = None


class _FlatContext(Context):
    """The context `new_context(env, name, blocks, values, shared=True)` makes for one
    render of a `_FlatTemplate` (the same attributes, `test_rendering.py` checks), with its
    shared evaluation context instead of one built per render."""

    def __init__(self, template: _FlatTemplate, values: dict[str, Any]) -> None:
        self.parent = values
        self.vars = {}
        self.environment = template.environment
        self.eval_ctx = template.eval_ctx or nodes.EvalContext(self.environment, template.name)
        self.exported_vars = set()
        self.name = template.name
        self.globals_keys = set()
        self.blocks = {name: [block] for name, block in template.blocks.items()}


# The escaped text of the plain strings and ints the flattened templates wrote, bounded: a
# batch of emails escapes the same plan title, department names and dates thousands of
# times, and `markupsafe.escape` is pure.
_ESCAPED: dict[str | int, Markup] = {}
_ESCAPED_MAX = 8192


def remembered_escape(value: Any) -> Markup:
    """`markupsafe.escape(value)`, the same `Markup`; a `str` or `int` (exactly, not a
    subclass) is escaped once and then looked up (`_ESCAPED`, emptied when full). The
    flattened templates' `escape`."""
    if value.__class__ is str or value.__class__ is int:
        try:
            return _ESCAPED[value]
        except KeyError:
            if len(_ESCAPED) >= _ESCAPED_MAX:
                _ESCAPED.clear()
            escaped = _ESCAPED[value] = escape(value)
            return escaped
    return escape(value)


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
    parent as it is (Jinja2 writes template assignments to the context, not to it), and
    the context is not told the globals' names either (it would copy them into a set per
    render). An error renders again through the ordinary `Template.render` (of the
    template of that name, not `flattened`) for Jinja2's own error and traceback, with the
    lines of the file the error is in."""
    env = template.environment
    try:
        if isinstance(template, _FlatTemplate):
            context: Context = _FlatContext(template, values)
        else:
            context = new_context(env, template.name, template.blocks, values, shared=True)
        return env.concat(template.root_render_func(context))
    except Exception:  # rendered again below, for Jinja2's own error
        original = env.get_template(template.name) if template.name else template
        return original.render(values)
