"""One Jinja2 factory (`notifications.rendering.make_environment`) for mail, form and reports.

The form's pages must come out byte for byte as they did from the portal's own environment
before the factory (`REFERENCE`, its exact former settings), for a real check-in's page; the
report's HTML likewise against the report module's former environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jinja2
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from models.formats import cn_date, cn_number
from models.settings import Settings
from notifications.links import LinkClaims
from notifications.rendering import SHARED_FILTERS, environment, make_environment
from portal.app import TEMPLATES_DIR, template_environment
from portal.pages import load_page, page_context, previous_answer
from tasks.attachments import attachment_limits
from tasks.reporting import html as report_html
from tests.portal_rows import DUE, CheckinRows, make_checkin, rolled_back_sessions

SETTINGS = Settings(secret_key="s" * 40, public_url="http://portal.test", _env_file=None)


def reference_portal_environment() -> jinja2.Environment:
    """The portal's environment exactly as `portal/app.py` built it before the factory."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


@pytest.fixture
def sessions(migrated_engine: Engine) -> Iterator[sessionmaker[Session]]:
    with rolled_back_sessions(migrated_engine) as factory:
        yield factory


@pytest.fixture
def rows(sessions: sessionmaker[Session]) -> CheckinRows:
    with transaction(sessions) as session:
        return make_checkin(session)


def form_context(sessions: sessionmaker[Session], rows: CheckinRows) -> dict[str, Any]:
    claims = LinkClaims(
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        purpose="checkin",
        expires_on=DUE,
    )
    with sessions() as session:
        page = load_page(session=session, claims=claims)
    return page_context(page) | {
        "csrf_field": "csrf_token",
        "csrf": "fixed-csrf",
        "submit_id": "fixed-submit",
        "values": previous_answer(page),
        "errors": ["请填写工作进展。"],
        "completion_path": "/c/token/completion",
        "upload": attachment_limits(SETTINGS),
        "history_files": {},
        "version": 2,
        "extension": None,
        "attachment_names": ["附件.pdf"],
    }


@pytest.mark.parametrize("name", ["form.html", "done.html", "invalid.html", "limited.html"])
def test_the_form_renders_byte_identical_through_the_factory(
    sessions: sessionmaker[Session], rows: CheckinRows, name: str
) -> None:
    context = form_context(sessions, rows)
    ours = template_environment().get_template(name).render(context)
    before = reference_portal_environment().get_template(name).render(context)
    assert ours == before
    assert ours.strip()
    if name == "form.html":
        assert "搭建高水平科技开放交流平台" in ours
        # the body's markup is escaped, as before
        assert "&lt;b&gt;重点&lt;/b&gt;" in ours


def test_every_environment_has_the_shared_filters_and_its_own_escaping() -> None:
    for env in (environment(), template_environment(), report_html.environment):
        assert {name: env.filters[name] for name in SHARED_FILTERS} == SHARED_FILTERS
        assert env.undefined is jinja2.StrictUndefined
    source = "{{ value }}|{{ day|cn_date }}|{{ n|num }}"
    values = {"value": "<b>", "day": DUE, "n": 12.0}
    # form: always escaped; email: only .html.j2 (strings default on); report: HTML
    assert template_environment().from_string(source).render(values).startswith("&lt;b&gt;|")
    mail = make_environment(
        jinja2.DictLoader({"a.txt.j2": source, "a.html.j2": source}),
        autoescape=environment().autoescape,
    )
    assert mail.get_template("a.txt.j2").render(values) == f"<b>|{cn_date(DUE)}|{cn_number(12)}"
    assert mail.get_template("a.html.j2").render(values).startswith("&lt;b&gt;|")


def test_the_report_html_is_unchanged_by_the_factory() -> None:
    reference = jinja2.Environment(
        loader=jinja2.FileSystemLoader(report_html.TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    context = {
        "title": "长治市科协2021年工作要点<落实情况>",
        "organisation": "长治市科协",
        "period": "2021年第三季度",
        "blocks": [
            {"kind": "heading", "level": 1, "text": "一、总体情况"},
            {"kind": "paragraph", "text": "共<12>项任务。"},
            {
                "kind": "table",
                "columns": ["部室", "颜色"],
                "rows": [[("学会部", ""), ("红灯", "red")]],
            },
        ],
    }
    name = "report.html.j2"
    ours = report_html.environment.get_template(name).render(context)
    assert ours == reference.get_template(name).render(context)
    assert "&lt;落实情况&gt;" in ours
