"""The report as Markdown, for the Prefect markdown artifact and the `md` format.

Cells and paragraphs are escaped (`|`, `<`, `>`, `*`, `_`, backticks and brackets), so a
narrative containing HTML or Markdown shows as text in the Prefect UI.
"""

from __future__ import annotations

from datetime import datetime

from models.review import Review
from tasks.reporting.outline import Chart, Heading, Paragraph, Table, build_outline, fmt_pct

_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
    }
)
MAX_TABLE_ROWS = 200


def md_escape(text: str) -> str:
    """`text` with Markdown and HTML metacharacters escaped, on one line."""
    return " ".join(text.split()).translate(_SPECIAL)


def render_markdown(
    review: Review, *, generated_at: datetime, row_budget: int | None = None
) -> str:
    """The report as Markdown; each table is cut at `MAX_TABLE_ROWS` rows, and all tables
    together at `row_budget` rows when given (the Prefect artifact), each cut with a note."""
    title, blocks = build_outline(review, generated_at=generated_at)
    lines = [f"# {md_escape(title)}", ""]
    left = row_budget
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * (block.level + 1)} {md_escape(block.text)}", ""]
        elif isinstance(block, Paragraph):
            lines += [md_escape(block.text), ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(md_escape(c) for c in block.columns) + " |")
            lines.append("|" + "---|" * len(block.columns))
            shown = min(len(block.rows), MAX_TABLE_ROWS, len(block.rows) if left is None else left)
            for row in block.rows[:shown]:
                lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
            if left is not None:
                left -= shown
            if shown < len(block.rows):
                lines.append(
                    f"\n（表格共{len(block.rows)}行，此处列出前{shown}行，"
                    "完整内容见 HTML 或 Word 版。）"
                )
            lines.append("")
        else:
            lines += [f"**{md_escape(block.title)}**", "", *_chart_lines(block), ""]
    return "\n".join(lines)


def _chart_lines(chart: Chart) -> list[str]:
    """A chart as a text bar list (the Prefect UI does not render inline SVG)."""
    if chart.kind == "bar":
        return [
            f"- {md_escape(label)}：{fmt_pct(value)} "
            + ("" if value is None else "█" * max(0, min(20, round(value / 5))))
            for label, value in chart.bars
        ]
    names = ("绿", "黄", "红", "未评定")
    return [
        f"- {md_escape(label)}："
        + "，".join(f"{name}{count}" for name, count in zip(names, counts, strict=True))
        for label, counts in chart.series
    ]
