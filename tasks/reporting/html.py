"""The report as one self-contained HTML file (inline CSS and SVG, prints on A4)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import FileSystemLoader, select_autoescape
from markupsafe import Markup

from models.review import Review
from notifications.rendering import make_environment
from tasks.reporting import charts
from tasks.reporting.outline import Block, Chart, Heading, Paragraph, Table, build_outline

TEMPLATES = Path(__file__).with_name("templates")
COLOUR_CLASSES = {"绿灯": "green", "黄灯": "amber", "红灯": "red"}

environment = make_environment(
    FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=False,
    keep_trailing_newline=True,
)


def _view(block: Block) -> dict[str, object]:
    if isinstance(block, Heading):
        return {"kind": "heading", "level": block.level, "text": block.text}
    if isinstance(block, Paragraph):
        return {"kind": "paragraph", "text": block.text}
    if isinstance(block, Table):
        rows = [
            [
                (cell, COLOUR_CLASSES.get(cell, "") if index == block.colour_column else "")
                for index, cell in enumerate(row)
            ]
            for row in block.rows
        ]
        return {"kind": "table", "columns": block.columns, "rows": rows}
    assert isinstance(block, Chart)  # noqa: S101
    return {"kind": "chart", "title": block.title, "svg": Markup(charts.svg(block))}  # noqa: S704


def render_html(review: Review, *, generated_at: datetime) -> str:
    """The report as HTML text; user text is escaped, charts are inline SVG."""
    title, blocks = build_outline(review, generated_at=generated_at)
    template = environment.get_template("report.html.j2")
    return template.render(
        title=title,
        organisation=review.plan.organisation,
        period=review.period.title,
        blocks=[_view(block) for block in blocks],
    )
