"""Report chapters 三 to 五: departments, matters needing attention, next steps (pure)."""

from __future__ import annotations

from models.review import Review
from tasks.reporting.blocks import Block, Chart, Heading, Paragraph, Table, fmt_day, fmt_pct
from tasks.reporting.tongbao import lagging_blocks, requirement_text, score_blocks

NUMERALS = "一二三四五六七八九十"

LEVEL_NAMES = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}


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
    silent = [d.name for d in ranked if d.counts.on_time + d.counts.late == 0]
    if silent:
        names = "、".join(silent[:10]) + ("等" if len(silent) > 10 else "")
        blocks.append(
            Paragraph(f"{names}共{len(silent)}个部室本期有到期事项但未报送任何材料，请予督促。")
        )
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
    blocks += score_blocks(review)
    if ranked:
        bars = tuple((d.name, d.counts.on_time_rate) for d in ranked[:30])
        title = "图3 各部室按时报送率" + ("（前30名）" if len(ranked) > 30 else "")
        blocks.append(Chart("departments", title, "bar", bars=bars))
    blocks.extend(review_blocks(review))
    return blocks


def review_blocks(review: Review) -> list[Block]:
    """The office's review (审核) in section 三: reports accepted and returned (退回) per
    department in the period, and the reports still waiting for review; nothing when the
    period saw no decision and nothing waits."""
    if not review.review_returns and not review.awaiting_review:
        return []
    returned = sum(line.returned for line in review.review_returns)
    accepted = sum(line.accepted for line in review.review_returns)
    late = sum(1 for line in review.awaiting_review if line.overdue)
    text = f"本期督查室审核通过报送{accepted}份，退回{returned}次"
    if returned:
        worst = review.review_returns[0]
        text += f"，退回最多的是{worst.name}（{worst.returned}次）"
    text += f"；截至数据截止日尚有{len(review.awaiting_review)}份报送待审核"
    text += f"，其中{late}份已超过审核期限。" if late else "。"
    blocks: list[Block] = [Paragraph(text)]
    if review.review_returns:
        blocks.append(
            Table(
                ("部室", "审核通过", "退回"),
                tuple(
                    (line.name, str(line.accepted), str(line.returned))
                    for line in review.review_returns
                ),
            )
        )
    if review.awaiting_review:
        blocks.append(
            Table(
                ("序号", "任务", "责任部室", "报送日期", "审核情况"),
                tuple(
                    (
                        line.number,
                        line.title,
                        line.department,
                        fmt_day(line.submitted_on),
                        "已超过审核期限" if line.overdue else "待审核",
                    )
                    for line in review.awaiting_review
                ),
                caption="待审核的报送",
            )
        )
    return blocks


def attention_blocks(review: Review) -> list[Block]:
    """Section 四: overdue and escalated items, items with no department, blocked items, and
    milestones (时序进度) reported late or not at all."""
    ordinals = iter(NUMERALS)

    def sub(title: str) -> str:
        return f"（{next(ordinals)}）{title}"

    blocks: list[Block] = [Heading(1, "四、需要关注的问题")]
    blocks += lagging_blocks(review, sub("欠序时进度的任务")) if review.pace else []
    blocks.append(Heading(2, sub("逾期未报送和督办事项")))
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
    blocks.append(Heading(2, sub("尚未明确牵头部室的任务")))
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
    blocks.append(Heading(2, sub("推进受阻的任务")))
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
    if review.missed_milestones:
        blocks.append(Heading(2, sub("未按时序进度报送的节点")))
        missing = sum(1 for m in review.missed_milestones if m.submitted_on is None)
        blocks.append(
            Paragraph(
                f"本期共有{len(review.missed_milestones)}个时序进度节点未按期报送，"
                f"其中{missing}个至今未报。"
            )
        )
        blocks.append(
            Table(
                ("序号", "任务", "责任部室", "节点要求", "应报日期", "报送情况"),
                tuple(
                    (
                        m.number,
                        m.title,
                        m.department,
                        m.asks,
                        fmt_day(m.due_date),
                        f"{fmt_day(m.submitted_on)}补报" if m.submitted_on else "未报送",
                    )
                    for m in review.missed_milestones
                ),
            )
        )
    return blocks


def closing(review: Review) -> list[Block]:
    """Section 五: next steps as 一是…二是…, in the register of a 通报."""
    return [Heading(1, "五、下步工作要求"), Paragraph(requirement_text(review))]
