"""Report chapter 四's part on leader instructions (领导批示及落实情况): pure blocks."""

from __future__ import annotations

from models.clock import local_date
from models.review import Review
from models.review_figures import excerpt
from models.vocabulary import InstructionState
from tasks.reporting.blocks import Block, Heading, Paragraph, Table, fmt_day

NUMBERS = "一二三四五六七八九十"


def instruction_blocks(review: Review, *, after: int) -> list[Block]:
    """The instructions given in the period, who gave them and how each was answered; no
    blocks when there were none. Numbered after chapter 四's `after` other parts."""
    if not review.instructions:
        return []
    position = after
    total, answered = len(review.instructions), review.instructions_answered
    text = f"本期领导共作出批示{total}条，牵头部室已反馈落实情况{answered}条"
    if total > answered:
        text += f"，尚有{total - answered}条待落实，请相关部室在下次报送中反馈。"
    else:
        text += "，均已反馈。"
    rows = tuple(
        (
            fact.item_label,
            fact.leader,
            fmt_day(local_date(fact.given_at)),
            excerpt(fact.text),
            (
                f"{fact.answered_by}于{fmt_day(local_date(fact.answered_at))}反馈：{excerpt(fact.answer)}"
                if fact.answered_at is not None
                else InstructionState.OPEN.label
            ),
        )
        for fact in review.instructions
    )
    return [
        Heading(2, f"（{NUMBERS[position]}）领导批示及落实情况"),
        Paragraph(text),
        Table(("任务", "批示领导", "批示日期", "批示内容", "落实情况"), rows),
    ]
