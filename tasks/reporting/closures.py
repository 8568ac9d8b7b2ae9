"""The report's lines on items closed (销号) in the period, closing section 一 (pure)."""

from __future__ import annotations

from models.review import Review
from tasks.reporting.blocks import Block, Paragraph, Table, fmt_day


def closed_blocks(review: Review) -> list[Block]:
    """A sentence on the items closed in the period and, when there are any, their table
    (number, item, lead departments, closing day, reason); nothing for an empty plan."""
    if review.item_count == 0:
        return []
    if not review.closed:
        return [Paragraph("本期没有办结销号的任务。")]
    numbers = "、".join(f"第{line.number}项" for line in review.closed[:20])
    more = "等" if len(review.closed) > 20 else ""
    return [
        Paragraph(f"本期办结销号任务{len(review.closed)}项（{numbers}{more}），此后不再督办。"),
        Table(
            ("序号", "任务", "牵头部室", "办结日期", "销号理由"),
            tuple(
                (
                    line.number,
                    line.title,
                    "、".join(line.departments) or "未明确",
                    fmt_day(line.closed_on),
                    line.reason or "—",
                )
                for line in review.closed
            ),
        ),
    ]
