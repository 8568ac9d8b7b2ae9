"""Console rendering for `duban plan`: the preview table, diffs and unresolved units."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from duban.cli.output import console, line
from models.department_match import Resolution
from models.plan_schema import ParsedDeadline, ParsedPlan
from tasks.plan_import import ImportOutcome

_COMPARATORS = {"ge": "≥", "le": "≤", "gt": ">", "lt": "<", "eq": "=", "approx": "≈"}
_FIELD_NAMES = {
    "title": "标题", "body": "正文", "lead": "牵头", "support": "配合", "targets": "指标",
    "schedule": "完成时限与时序进度",
}  # fmt: skip


def targets_text(parsed_targets: Sequence[tuple[str, str, float, str]]) -> str:
    """Targets as `不少于200场次（≥200场次）；…`."""
    return "；".join(
        f"{text}（{_COMPARATORS.get(comp, comp)}{value:g}{unit}）"
        for text, comp, value, unit in parsed_targets
    )


_RULES = {"monthly": "每月", "quarterly": "每季度", "half_yearly": "每半年", "yearly": "每年"}


def deadline_text(deadline: ParsedDeadline | None) -> str:
    """`2023-06-30（6月底前）`, `每季度（每季度末）`, `长期（长期坚持）`, or ""."""
    if deadline is None:
        return ""
    if deadline.kind == "date" and deadline.due is not None:
        read = deadline.due.isoformat()
    elif deadline.kind == "recurring":
        read = _RULES.get(deadline.rule or "", deadline.rule or "")
    else:
        read = "长期"
    return f"{read}（{deadline.text}）"


def _print_schedules(parsed: ParsedPlan) -> None:
    """Items' own 完成时限, 时序进度 and 考核要点, when the document gives any."""
    given = [item for item in parsed.items if item.deadline or item.milestones or item.criteria]
    if not given:
        return
    table = Table("序号", "完成时限", "时序进度", "考核要点", title="完成时限与时序进度")
    for item in given:
        milestones = "\n".join(
            f"{m.start.month}/{m.start.day}–{m.end.month}/{m.end.day} {m.text}：{m.output}"
            for m in item.milestones
        )
        table.add_row(item.number, deadline_text(item.deadline), milestones, item.criteria)
    console.print(table)


def print_preview(parsed: ParsedPlan) -> None:
    """The preview table: metadata, sections, items with units and targets, phases, warnings."""
    issued = f"，印发日期 {parsed.issued.isoformat()}" if parsed.issued else ""
    if parsed.document_number:
        issued += f"，文号 {parsed.document_number}"
    console.print(
        line(
            (parsed.title, "bold"),
            f"（{parsed.organisation or '未写明单位'}，{parsed.year}年{issued}）",
        )
    )
    if parsed.encoding:
        console.print(f"文件编码：{parsed.encoding}")
    if parsed.sections:
        sections = Table("章节", "标题", title="章节")
        for section in parsed.sections:
            sections.add_row(section.number, section.title)
        console.print(sections)
    items = Table("序号", "章节", "行", "任务", "牵头", "配合", "指标", title="任务")
    for item in parsed.items:
        lead = "、".join(item.lead)
        support = "、".join(item.support)
        if item.lead_departments is not None:
            lead = f"{lead} → {'、'.join(item.lead_departments) or '（未匹配）'}" if lead else ""
        if item.support_departments is not None and support:
            support = f"{support} → {'、'.join(item.support_departments) or '（未匹配）'}"
        targets = [(t.text, t.comparator, t.value, t.unit) for t in item.targets]
        items.add_row(
            item.number,
            item.section or item.group or "",
            str(item.line),
            item.title,
            lead or line(("未写明", "yellow")),
            support,
            targets_text(targets),
        )
    console.print(items)
    _print_schedules(parsed)
    phases = Table("阶段", "名称", "起", "止", "开始日期", "结束日期", title="实施阶段")
    for phase in parsed.phases:
        phases.add_row(
            phase.key,
            phase.name,
            phase.start,
            phase.end,
            phase.start_date.isoformat(),
            phase.end_date.isoformat(),
        )
    console.print(phases)
    for warning in parsed.warnings:
        where = f"第{warning.line}行：" if warning.line else ""
        console.print(line(("提示", "yellow"), f" {where}{warning.reason}"))
    console.print(f"共 {len(parsed.sections)} 个章节、{len(parsed.items)} 项任务。")


def print_diff(outcome: ImportOutcome) -> None:
    """Items added, removed and changed against the stored plan."""
    diff = outcome.diff
    console.print(
        f"与已导入的计划（编号 {outcome.plan_id}）相比：新增 {len(diff.added)} 项，"
        f"删除 {len(diff.removed)} 项，修改 {len(diff.changed)} 项。"
    )
    for change in diff.added:
        console.print(line("  ", ("+ 新增", "green"), f" {change.number} {change.title}"))
    for change in diff.removed:
        console.print(line("  ", ("- 删除", "red"), f" {change.number} {change.title}"))
    if diff.removed:
        console.print(line(("注意", "yellow"), " 删除任务会同时删除它的交办、报送和督办记录。"))
    for change in diff.changed:
        fields = "、".join(_FIELD_NAMES.get(name, name) for name in change.fields)
        console.print(
            line("  ", ("~ 修改", "yellow"), f" {change.number} {change.title}（{fields}）")
        )


def print_unresolved(unresolved: list[Resolution]) -> None:
    """Each unit that matched no department, with the closest names and what to do."""
    for resolution in unresolved:
        hint = "、".join(resolution.suggestions) or "无相近名称"
        console.print(
            line(
                ("未匹配单位", "yellow"),
                f" {resolution.written}（最接近：{hint}）。"
                "可在部门名录中添加别名后重新导入，或在督办开始后用 duban assign 指定；"
                "相关任务已标记为待交办。",
            )
        )
