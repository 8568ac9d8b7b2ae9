"""The parts of a 通报 that real offices write and the counts alone do not (pure).

Real quarterly and half-year 通报 (see `../shared/reference/tongbao-and-kaohe.md`) count the
tasks against 序时进度 (已完成 / 超进度 / 达进度 / 欠进度), name what went well, take the
lagging items one by one ("关于'X'事项": target, actual figure, share of the year's plan, lead
and supporting units), and end with 下一步工作要求 as 一是…二是…. The blocks here read the
review's `pace` lines and `scores` (`models.review_figures.with_pace`); a review without them
(no pace computed) gets none of these blocks.
"""

from __future__ import annotations

from models.review import PaceLine, Review
from models.vocabulary import ItemProgress
from tasks.reporting.blocks import Block, Heading, Paragraph, Table, fmt_day, fmt_num, fmt_pct

ORDINALS = "一二三四五六七八九十"
NAMED_AT_MOST = 20


def progress_paragraphs(review: Review) -> list[Block]:
    """总体情况's first sentences: counts against 序时进度, and the items that went well."""
    if not review.pace:
        return []
    counts = review.progress_counts
    total = len(review.pace)
    parts = [f"{kind.label}{counts[kind]}项" for kind in ItemProgress if counts[kind]]
    behind = counts[ItemProgress.BEHIND]
    text = f"对照序时进度，纳入督办的{total}项任务中，" + "，".join(parts)
    if behind:
        text += f"，欠进度任务占{fmt_pct(100.0 * behind / total)}"
    blocks: list[Block] = [Paragraph(text + "。")]
    good = [
        line for line in review.pace if line.progress in (ItemProgress.DONE, ItemProgress.AHEAD)
    ]
    if good:
        named = "；".join(
            f"第{line.number}项“{line.title}”{line.progress.label}" for line in good[:5]
        )
        more = f"等{len(good)}项" if len(good) > 5 else ""
        blocks.append(Paragraph(f"从督查情况看，{named}{more}，推进较好。"))
    return blocks


def _figures(line: PaceLine, review: Review) -> str:
    """ "目标…，截至…完成…，完成年度计划的…%" for each target with a reported figure."""
    parts = []
    for target in line.targets:
        if target.reported is None:
            parts.append(f"目标{target.text}，尚未报送完成数")
            continue
        share = "" if target.percent is None else f"，完成年度计划的{fmt_pct(target.percent)}"
        parts.append(
            f"目标{target.text}，截至{fmt_day(review.data_until)}完成{fmt_num(target.reported)}"
            f"{target.unit}{share}"
        )
    return "；".join(parts)


def lagging_blocks(review: Review, heading: str) -> list[Block]:
    """The lagging items one by one, in the register of a 通报, then their table."""
    lagging = [line for line in review.pace if line.progress == ItemProgress.BEHIND]
    blocks: list[Block] = [Heading(2, heading)]
    if not review.pace:
        return []
    if not lagging:
        blocks.append(Paragraph("截至数据截止日，没有欠序时进度的任务。"))
        return blocks
    blocked = {b.number for b in review.blocked}
    overdue = {o.number: o for o in review.overdue}
    for line in lagging[:NAMED_AT_MOST]:
        causes = [_figures(line, review)] if line.ratio is not None else []
        if line.number in blocked:
            causes.append("牵头部室报告推进受阻")
        if line.number in overdue:
            causes.append(f"自{fmt_day(overdue[line.number].oldest_due)}起有到期报送未报")
        reason = "，".join(c for c in causes if c) or "未按序时进度推进"
        reason += "，进度滞后"
        units = f"牵头部室：{'、'.join(line.leads) or '未明确'}"
        if line.supports:
            units += f"；配合部室：{'、'.join(line.supports)}"
        blocks.append(
            Paragraph(f"关于“{line.title}”事项（第{line.number}项）：{reason}（{units}）。")
        )
    if len(lagging) > NAMED_AT_MOST:
        blocks.append(Paragraph(f"其余{len(lagging) - NAMED_AT_MOST}项欠序时进度的任务见下表。"))
    blocks.append(
        Table(
            ("序号", "任务", "牵头部室", "配合部室", "完成序时进度"),
            tuple(
                (
                    line.number,
                    line.title,
                    "、".join(line.leads) or "未明确",
                    "、".join(line.supports) or "—",
                    "—" if line.ratio is None else fmt_pct(100.0 * line.ratio),
                )
                for line in lagging
            ),
        )
    )
    return blocks


def score_blocks(review: Review) -> list[Block]:
    """The departments' 考核 scores, ranked, with what they lost points for."""
    if not review.scores:
        return []
    best, worst = review.scores[0], review.scores[-1]
    text = (
        f"按考核规则计分，本期{len(review.scores)}个部室中"
        f"得分最高的是{best.name}（{fmt_num(best.score)}分）"
    )
    if len(review.scores) > 1:
        text += f"，最低的是{worst.name}（{fmt_num(worst.score)}分）"
    rows = tuple(
        (
            str(line.rank),
            line.name,
            fmt_num(line.score),
            line.grade,
            fmt_num(line.weighted_tasks),
            fmt_num(line.load_factor),
            "；".join(
                f"{kind.label}{fmt_num(lost)}分"
                for kind in type(line.deductions[0].kind)
                if (lost := line.lost(kind))
            )
            if line.deductions
            else "未扣分",
        )
        for line in review.scores
    )
    return [
        Paragraph(text + "；逐项扣分明细可用 duban score --detail 部门名称 查看或导出 Excel。"),
        Table(("考核排名", "部室", "得分", "等次", "任务数（加权）", "负荷系数", "扣分情况"), rows),
    ]


def requirements(review: Review) -> list[str]:
    """下一步工作要求, each a clause for 一是…二是…, from what the period showed."""
    report = "报告" if review.period.kind == "year" else "通报"
    clauses = []
    behind = review.progress_counts[ItemProgress.BEHIND] if review.pace else 0
    if behind:
        clauses.append(
            f"对欠序时进度的{behind}项任务，牵头部室要分析原因、倒排工期，配合部室要主动对接，确保按期完成"
        )
    if review.overdue or review.checkins.missing:
        clauses.append("逾期未报送的，于收到本" + report + "后3个工作日内补报并说明原因")
    if review.blocked:
        clauses.append("推进受阻的，提出解决措施和需协调事项，报督查室统筹解决")
    if review.unassigned:
        clauses.append("尚未明确牵头部室的，由督查室提出交办意见")
    what = "年度任务总结评估" if review.period.kind == "year" else "下一阶段督办"
    clauses.append(f"各部室对照本{report}查漏补缺，督查室将据此做好{what}和考核工作")
    return clauses


def requirement_text(review: Review) -> str:
    """The clauses as one paragraph: 一是…；二是…。"""
    clauses = requirements(review)
    return "；".join(f"{ORDINALS[i]}是{clause}" for i, clause in enumerate(clauses)) + "。"
