"""The report as an ordered outline of headings, paragraphs, tables and charts (pure).

Every renderer (HTML, DOCX, Markdown) walks the same outline, so the three formats say the
same thing in the same order. The wording is the register of an official 通报: numbered
headings 一、二、…, complete sentences that state the figures, no placeholder left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from models.clock import LOCAL_TZ
from models.review import COLOUR_NAMES, COLOURS, Review, SectionBlock, TargetLine

NUMERALS = "一二三四五六七八九十"
LEVEL_NAMES = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}


@dataclass(frozen=True)
class Heading:
    """A heading; level 1 is `一、…`, level 2 is `（一）…`."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of running text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table; `colour_column` marks the column holding 绿灯/黄灯/红灯 (or -1)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    colour_column: int = -1
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """A bar chart: `bars` are (label, value) for `kind` `bar`, value in percent or None;
    for `stacked`, `series` are (label, counts per colour in `COLOURS` order)."""

    key: str
    title: str
    kind: str
    bars: tuple[tuple[str, float | None], ...] = ()
    series: tuple[tuple[str, tuple[int, ...]], ...] = ()


Block = Heading | Paragraph | Table | Chart


def fmt_pct(value: float | None) -> str:
    """`85.7%`, or `—` for None."""
    return "—" if value is None else f"{value:.1f}%"


def fmt_num(value: float) -> str:
    """A number without a needless `.0`."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def fmt_day(day: date) -> str:
    """`2021年9月30日`."""
    return f"{day.year}年{day.month}月{day.day}日"


def fmt_moment(moment: datetime) -> str:
    """`2021年9月30日 17:00` in Asia/Shanghai."""
    local = moment.astimezone(LOCAL_TZ)
    return f"{fmt_day(local.date())} {local:%H:%M}"


def report_title(review: Review) -> str:
    """The document title."""
    org = review.plan.organisation
    name = f"《{review.plan.title}》" if review.plan.title else "工作计划"
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
            status += f"（{item.status_date.month}月{item.status_date.day}日）"
        notes = []
        for name, text in (
            ("进展", item.narrative),
            ("问题", item.problems),
            ("下步", item.next_steps),
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


def department_blocks(review: Review) -> list[Block]:
    """Section 三: departments' on-time rates, ranking table and chart."""
    blocks: list[Block] = [Heading(1, "三、各部室报送情况")]
    ranked = [d for d in review.departments if d.rank is not None]
    idle = [d.name for d in review.departments if d.rank is None]
    if not review.departments:
        blocks.append(Paragraph("该计划尚未向任何部室交办任务，暂无部室报送情况。"))
        return blocks
    if ranked:
        best = ranked[0]
        text = (
            f"本期有应报送事项的部室共{len(ranked)}个。按时报送率最高的是{best.name}"
            f"（{fmt_pct(best.counts.on_time_rate)}）"
        )
        if len(ranked) > 1:
            worst = ranked[-1]
            text += f"，最低的是{worst.name}（{fmt_pct(worst.counts.on_time_rate)}）"
        laggards = [d.name for d in ranked if d.counts.missing]
        if laggards:
            text += f"；{len(laggards)}个部室存在逾期未报送，分别是{'、'.join(laggards[:10])}"
            text += "等" if len(laggards) > 10 else ""
        blocks.append(Paragraph(text + "。"))
    if idle:
        names = "、".join(idle[:10]) + ("等" if len(idle) > 10 else "")
        blocks.append(Paragraph(f"{names}共{len(idle)}个部室本期没有到期的报送事项，未列入排名。"))
    rows = tuple(
        (
            str(d.rank) if d.rank is not None else "—",
            d.name,
            str(d.counts.due),
            str(d.counts.on_time),
            str(d.counts.late),
            str(d.counts.missing),
            fmt_pct(d.counts.on_time_rate) if d.rank is not None else "本期无到期报送",
            str(d.escalations),
        )
        for d in review.departments
    )
    blocks.append(
        Table(
            ("排名", "部室", "应报送", "按时", "逾期报送", "未报送", "按时报送率", "收到督办"),
            rows,
        )
    )
    if ranked:
        bars = tuple((d.name, d.counts.on_time_rate) for d in ranked[:30])
        title = "图3 各部室按时报送率" + ("（前30名）" if len(ranked) > 30 else "")
        blocks.append(Chart("departments", title, "bar", bars=bars))
    return blocks


def attention_blocks(review: Review) -> list[Block]:
    """Section 四: overdue and escalated items, items with no department, blocked items."""
    blocks: list[Block] = [
        Heading(1, "四、需要关注的问题"),
        Heading(2, "（一）逾期未报送和督办事项"),
    ]
    if review.overdue:
        longest = review.overdue[0]
        blocks.append(
            Paragraph(
                f"截至数据截止日，共有{len(review.overdue)}项任务存在逾期未报送，"
                f"其中逾期最久的是第{longest.number}项（{longest.days_overdue}天）。"
            )
        )
        blocks.append(
            Table(
                ("序号", "任务", "责任部室", "最早应报日期", "逾期天数", "督办级别"),
                tuple(
                    (
                        o.number,
                        o.title,
                        "、".join(o.departments),
                        fmt_day(o.oldest_due),
                        str(o.days_overdue),
                        LEVEL_NAMES.get(o.level, f"{o.level}级") if o.level else "未督办",
                    )
                    for o in review.overdue
                ),
            )
        )
    else:
        blocks.append(Paragraph("截至数据截止日，没有逾期未报送的任务。"))
    blocks.append(Heading(2, "（二）尚未明确牵头部室的任务"))
    if review.unassigned:
        numbers = "、".join(f"第{n}项" for n, _ in review.unassigned[:20])
        more = "等" if len(review.unassigned) > 20 else ""
        blocks.append(
            Paragraph(
                f"共有{len(review.unassigned)}项任务尚未明确牵头部室（{numbers}{more}），"
                "请督查室尽快明确责任部室。"
            )
        )
        blocks.append(Table(("序号", "任务"), tuple(review.unassigned)))
    else:
        blocks.append(Paragraph("所有任务均已明确牵头部室。"))
    blocks.append(Heading(2, "（三）推进受阻的任务"))
    if review.blocked:
        blocks.append(
            Paragraph(f"共有{len(review.blocked)}项任务的牵头部室报告推进受阻，所述问题如下。")
        )
        blocks.append(
            Table(
                ("序号", "任务", "牵头部室", "存在问题"),
                tuple(
                    (b.number, b.title, "、".join(b.departments) or "未明确", b.problems)
                    for b in review.blocked
                ),
            )
        )
    else:
        blocks.append(Paragraph("本期没有部室报告推进受阻的任务。"))
    return blocks


def closing(review: Review) -> list[Block]:
    """Section 五: next steps, in the register of a 通报."""
    what = "年度任务总结评估" if review.period.kind == "year" else "下一阶段督办"
    return [
        Heading(1, "五、下步工作要求"),
        Paragraph(
            f"请各部室对照本{'报告' if review.period.kind == 'year' else '通报'}查漏补缺："
            "逾期未报送的，于收到后3个工作日内补报并说明原因；推进受阻的，提出解决措施和需协调事项；"
            f"尚未明确牵头部室的，由督查室提出交办意见。督查室将据此做好{what}工作。"
        ),
    ]


def build_outline(review: Review, *, generated_at: datetime) -> tuple[str, list[Block]]:
    """The title and the ordered blocks of the whole report."""
    org = review.plan.organisation or "本单位"
    lead = Paragraph(
        f"现将{org}{review.period.title}（{fmt_day(review.period.start)}至"
        f"{fmt_day(review.period.end)}）工作计划督办落实情况"
        f"{'总结评估如下' if review.period.kind == 'year' else '通报如下'}。"
        f"本{'报告' if review.period.kind == 'year' else '通报'}数据截至"
        f"{fmt_moment(review.as_of)}，生成于{fmt_moment(generated_at)}。"
    )
    blocks: list[Block] = [lead]
    blocks += overview(review)
    blocks += section_blocks(review)
    blocks += department_blocks(review)
    blocks += attention_blocks(review)
    blocks += closing(review)
    return report_title(review), blocks
