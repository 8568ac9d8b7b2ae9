"""The report as an ordered outline of headings, paragraphs, tables and charts (pure).

Every renderer (HTML, DOCX, Markdown) walks the same outline, so the three formats say the
same thing in the same order. Block types live in `tasks.reporting.blocks` and are
re-exported here; chapters 三–五 live in `tasks.reporting.chapters`. The wording is the
register of an official 通报: numbered headings 一、二、…, complete sentences that state the
figures, no placeholder left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from models.attachments import attachment_summary
from models.formats import cn_month_day
from models.orders import COLOURS as COLOUR_WORDS
from models.review import COLOUR_NAMES, COLOURS, Review, SectionBlock, TargetLine
from tasks.reporting.blocks import (
    Block,
    Chart,
    Heading,
    Paragraph,
    Table,
    fmt_day,
    fmt_moment,
    fmt_num,
    fmt_pct,
)
from tasks.reporting.chapters import LEVEL_NAMES, attention_blocks, closing, department_blocks
from tasks.reporting.closures import closed_blocks
from tasks.reporting.instructions import instruction_blocks
from tasks.reporting.tongbao import progress_paragraphs

NUMERALS = "一二三四五六七八九十"
__all__ = [
    "Block",
    "Chart",
    "Heading",
    "Paragraph",
    "Table",
    "build_outline",
    "fmt_day",
    "fmt_moment",
    "fmt_num",
    "fmt_pct",
    "overview",
]


def report_title(review: Review) -> str:
    """The document title; the organisation is left out when the plan's title names it."""
    title = review.plan.title
    org = "" if review.plan.organisation in title else review.plan.organisation
    name = f"《{title}》" if title else "工作计划"
    if review.period.kind == "year":
        return f"{org}{name}{review.period.title}落实情况总结评估报告"
    return f"{org}{name}{review.period.title}督办落实情况通报"


def _colour_phrase(counts: Mapping[str, int]) -> str:
    parts = [f"{COLOUR_NAMES[c]}{counts.get(c, 0)}项" for c in COLOURS[:3]]
    text = "、".join(parts)
    if counts.get("none", 0):
        text += f"，尚未评定{counts['none']}项"
    return text


def overview(review: Review) -> list[Block]:
    """Section 一: items by colour, check-ins, escalations, extensions and the weekly chart."""
    c = review.checkins
    blocks: list[Block] = [Heading(1, "一、总体情况")]
    if review.item_count == 0:
        blocks.append(Paragraph("该计划尚未录入任何任务，本期无可通报的督办事项。"))
    else:
        blocks += progress_paragraphs(review)
        blocks.append(
            Paragraph(
                f"计划共列任务{review.item_count}项，截至数据截止日，"
                f"{_colour_phrase(review.colours)}。"
            )
        )
    if c.due == 0:
        blocks.append(Paragraph("本期尚无到期的报送事项，暂无法计算按时报送率。"))
    else:
        text = (
            f"本期应报送{c.due}次，其中按时报送{c.on_time}次、逾期报送{c.late}次、"
            f"逾期未报送{c.missing}次"
        )
        if c.open:
            text += f"，另有{c.open}次当日到期尚待报送"
        if c.on_time_rate is None:
            text += "；已到期事项尚无结果，暂无法计算按时报送率。"
        else:
            text += f"，按时报送率为{fmt_pct(c.on_time_rate)}。"
        blocks.append(Paragraph(text))
    total = sum(review.escalations_by_level.values())
    if total:
        levels = "、".join(
            f"{LEVEL_NAMES.get(level, f'{level}级')}督办{count}次"
            for level, count in review.escalations_by_level.items()
        )
        escalation = f"本期共发出督办{total}次，其中{levels}"
    else:
        escalation = "本期未发生督办"
    granted = review.extensions_granted
    extension = f"批准延期申请{granted}件" if granted else "未批准延期申请"
    if review.orders:
        colours = "、".join(
            f"{COLOUR_WORDS[c]}{n}份"
            for c in ("blue", "yellow", "red")
            if (n := review.orders.get(c))
        )
        escalation += f"，印发督办单{sum(review.orders.values())}份（{colours}）"
    blocks.append(Paragraph(f"{escalation}；{extension}。"))
    if review.weeks and any(sum(w.colours.values()) for w in review.weeks):
        blocks.append(
            Chart(
                "weeks",
                "图1 各周任务状态灯分布",
                "stacked",
                series=tuple(
                    (f"{w.day.month}/{w.day.day}", tuple(w.colours[c] for c in COLOURS))
                    for w in review.weeks
                ),
            )
        )
    return blocks


def _target_cell(targets: tuple[TargetLine, ...]) -> str:
    parts = []
    for t in targets:
        if t.reported is None:
            parts.append(f"{t.text}：未报数")
        else:
            parts.append(
                f"{t.text}：{fmt_num(t.reported)}/{fmt_num(t.target)}{t.unit}"
                f"（{fmt_pct(t.percent)}）"
            )
    return "；".join(parts) if parts else "无量化指标"


def section_blocks(review: Review) -> list[Block]:
    """Section 二: per plan section, a sentence and the table of its items."""
    blocks: list[Block] = [Heading(1, "二、各项任务推进情况")]
    if not review.sections:
        blocks.append(Paragraph("该计划尚无任务，无推进情况可列。"))
        return blocks
    for index, block in enumerate(review.sections):
        blocks += _one_section(index, block)
    bars = tuple((block.number or block.title[:6], block.attainment) for block in review.sections)
    if any(value is not None for _, value in bars):
        blocks.append(Chart("sections", "图2 各部分指标平均完成率", "bar", bars=bars))
    return blocks


def _one_section(index: int, block: SectionBlock) -> list[Block]:
    label = NUMERALS[index] if index < len(NUMERALS) else str(index + 1)
    heading = f"（{label}）{block.title}"
    if not block.items:
        return [Heading(2, heading), Paragraph("本部分未列具体任务。")]
    attainment = (
        f"已报量化指标平均完成率为{fmt_pct(block.attainment)}"
        if block.attainment is not None
        else "量化指标尚未报送完成数"
    )
    sentence = f"本部分共{len(block.items)}项任务，{_colour_phrase(block.colours)}；{attainment}。"
    rows = []
    for item in block.items:
        status = item.status
        if item.status_date is not None:
            status += f"（{cn_month_day(item.status_date)}）"
        if item.closed_on is not None:
            status = f"已办结（{cn_month_day(item.closed_on)}）；{status}"
        notes = []
        for name, text in (
            ("进展", item.narrative),
            ("问题", item.problems),
            ("下步", item.next_steps),
            ("附件", attachment_summary(item.attachments)),
        ):
            if text:
                notes.append(f"{name}：{text}")
        rows.append(
            (
                item.number,
                item.title,
                "、".join(item.leads) or "未明确",
                COLOUR_NAMES.get(item.colour, "未评定"),
                status,
                _target_cell(item.targets),
                "；".join(notes) or "暂无报送内容",
            )
        )
    return [
        Heading(2, heading),
        Paragraph(sentence),
        Table(
            (
                "序号",
                "任务",
                "牵头部室",
                "状态",
                "最新报送",
                "指标完成情况",
                "进展、问题与下步打算",
            ),
            tuple(rows),
            colour_column=3,
        ),
    ]


def build_outline(review: Review, *, generated_at: datetime) -> tuple[str, list[Block]]:
    """The title and the ordered blocks of the whole report."""
    org = review.plan.organisation or "本单位"
    document = f"（{review.plan.document_number}）" if review.plan.document_number else ""
    basis = f"根据《{review.plan.title}》{document}的督办安排，" if review.plan.title else ""
    lead = Paragraph(
        f"{basis}现将{org}{review.period.title}（{fmt_day(review.period.start)}至"
        f"{fmt_day(review.period.end)}）工作计划督办落实情况"
        f"{'总结评估如下' if review.period.kind == 'year' else '通报如下'}。"
        f"本{'报告' if review.period.kind == 'year' else '通报'}数据截至"
        f"{fmt_moment(review.as_of)}，生成于{fmt_moment(generated_at)}。"
    )
    blocks: list[Block] = [lead]
    blocks += overview(review)
    blocks += closed_blocks(review)
    blocks += section_blocks(review)
    blocks += department_blocks(review)
    attention = attention_blocks(review)
    parts = sum(1 for block in attention if isinstance(block, Heading) and block.level == 2)
    blocks += attention
    blocks += instruction_blocks(review, after=parts)
    blocks += closing(review)
    return report_title(review), blocks
