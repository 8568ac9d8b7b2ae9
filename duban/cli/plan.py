"""`duban plan …`: read a plan document, import it, list and show stored plans."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from duban.cli.output import console, line, plain_json
from duban.cli.plan_view import print_diff, print_preview, print_unresolved, targets_text
from models import clock
from models.department_match import DepartmentMatcher, Resolution
from models.directory_file import DirectoryFile, load_directory_file
from models.errors import InputError
from models.plan_reader.document import first_unit_leads, read_plan_file
from models.plan_schema import ParsedPlan, ParseWarning

app = typer.Typer(help="工作计划：解析、导入、查看。", no_args_is_help=True)

_FIELD_NAMES = {
    "title": "标题",
    "body": "正文",
    "lead": "牵头",
    "support": "配合",
    "targets": "指标",
}


_FIRST_UNIT_LEADS_HELP = "只写责任单位的计划：每项第一个单位为牵头单位，其余为配合单位"


def _read(file: Path, *, first_leads: bool = False) -> ParsedPlan:
    parsed = read_plan_file(file, default_year=clock.local_date(clock.now()).year)
    return first_unit_leads(parsed) if first_leads else parsed


def _matcher_from_file(path: Path) -> DepartmentMatcher:
    directory = load_directory_file(path)
    return DepartmentMatcher.from_directory(
        (entry.name, entry.aliases) for entry in directory.departments
    )


def resolve_departments(parsed: ParsedPlan, matcher: DepartmentMatcher) -> list[Resolution]:
    """Fill each item's `lead_departments`/`support_departments`; warn about unknown units."""
    unresolved: dict[str, Resolution] = {}
    for item in parsed.items:
        for role in ("lead", "support"):
            names: list[str] = []
            for resolution in matcher.resolve_all(getattr(item, role)):
                if resolution.department is None:
                    unresolved.setdefault(resolution.written, resolution)
                    hint = "、".join(resolution.suggestions) or "无"
                    parsed.warnings.append(
                        ParseWarning(
                            line=item.line,
                            reason=f"单位“{resolution.written}”未匹配到部门（最接近：{hint}）",
                        )
                    )
                elif resolution.department not in names:
                    names.append(resolution.department)
            setattr(item, f"{role}_departments", names)
    return list(unresolved.values())


@app.command("parse")
def parse_command(
    file: Path = typer.Argument(..., help="计划文档：.txt/.docx/.xlsx/.pdf/.doc/.wps/.yaml/.json"),
    output_format: str = typer.Option("table", "--format", help="输出格式：json 或 table"),
    departments: Path | None = typer.Option(
        None, "--departments", help="部门名录文件；给出时把单位匹配为部门"
    ),
    first_leads: bool = typer.Option(False, "--first-unit-leads", help=_FIRST_UNIT_LEADS_HELP),
) -> None:
    """解析计划文档并输出结果，不写数据库。"""
    if output_format not in {"json", "table"}:
        raise InputError(f"不支持的输出格式：{output_format}（可选 json、table）")
    parsed = _read(file, first_leads=first_leads)
    if departments is not None:
        resolve_departments(parsed, _matcher_from_file(departments))
    if output_format == "json":
        typer.echo(plain_json(parsed.contract()))
    else:
        print_preview(parsed)


def _confirmed() -> bool:
    """Ask before applying a diff; without a terminal the answer is no."""
    if not sys.stdin.isatty():
        return False
    return typer.confirm("应用以上变更？", default=False)


def _parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        written, sep, target = pair.partition("=")
        if not sep or not written.strip() or not target.strip():
            raise InputError(f"--map 的格式应为 文档中的单位=部门，收到：{pair}")
        mapping[written.strip()] = target.strip()
    return mapping


def _prepare_directory(
    session: Session,
    *,
    parsed: ParsedPlan,
    directory: DirectoryFile | None,
    mapping: dict[str, str],
    create_missing: bool,
) -> DepartmentMatcher:
    """Apply the directory file, the unit mappings and missing departments; return a matcher."""
    from tasks.directory import upsert_directory
    from tasks.plan_import import matcher_from_session, unresolved_units
    from tasks.plan_units import create_departments, map_units

    now = clock.now()
    if directory is not None:
        upsert_directory(session=session, directory=directory, now=now)
    if mapping:
        added = map_units(session=session, mapping=mapping)
        if added:
            console.print(f"已添加部门别名：{'、'.join(added)}")
    matcher = matcher_from_session(session=session)
    if create_missing:
        missing = [r.written for r in unresolved_units(parsed=parsed, matcher=matcher)]
        created = create_departments(session=session, names=missing, now=now)
        if created:
            console.print(f"已新建部门：{'、'.join(created)}（请补充联系人后再开始督办）")
        matcher = matcher_from_session(session=session)
    resolve_departments(parsed, matcher)
    return matcher


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="计划文档：.txt/.docx/.xlsx/.pdf/.doc/.wps/.yaml/.json"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只预览，不写数据库"),
    yes: bool = typer.Option(False, "--yes", "-y", help="计划已导入过且有变化时，直接应用变更"),
    departments: Path | None = typer.Option(
        None, "--departments", help="先导入此部门名录（同一事务）再匹配单位"
    ),
    mapping: list[str] = typer.Option(
        [], "--map", help="把文档中的单位对应到已有部门（记为别名），如 --map 宣传处=办公室"
    ),
    create_missing: bool = typer.Option(False, "--create-missing", help="为未匹配的单位新建部门"),
    keep_script: bool = typer.Option(
        False, "--keep-script", help="保留文档原有字形，不转为简体（或设 DUBAN_KEEP_SCRIPT=true）"
    ),
    first_leads: bool = typer.Option(False, "--first-unit-leads", help=_FIRST_UNIT_LEADS_HELP),
) -> None:
    """预览并导入计划：同一文件重复导入不做改动；新版本先列出差异，确认后才应用。"""
    from duban.runtime import open_store
    from models.settings import get_settings
    from tasks.plan_import import digest_bytes, import_plan
    from tasks.plan_units import resolve_flagged

    parsed = _read(file, first_leads=first_leads)
    keep = keep_script or get_settings().keep_script
    digest = digest_bytes(file.read_bytes() + (b"\0first-unit-leads" if first_leads else b""))
    directory = load_directory_file(departments) if departments is not None else None
    units = _parse_mapping(mapping)
    store = open_store()
    now = clock.now()
    with store.sessions() as session:
        matcher = _prepare_directory(
            session, parsed=parsed, directory=directory, mapping=units,
            create_missing=create_missing,
        )  # fmt: skip
        print_preview(parsed)
        outcome = import_plan(
            session=session, parsed=parsed, source_name=file.name, source_sha256=digest,
            now=now, matcher=matcher, keep_script=keep,
        )  # fmt: skip
        if outcome.status == "pending":
            print_diff(outcome)
            if dry_run:
                session.rollback()
                console.print("预览模式：未写入任何数据。")
                return
            if outcome.diff and not yes and not _confirmed():
                session.rollback()
                console.print("未应用变更，数据库保持不变（加 --yes 可直接应用）。")
                return
            outcome = import_plan(
                session=session, parsed=parsed, source_name=file.name, source_sha256=digest,
                now=now, matcher=matcher, keep_script=keep, confirm=True,
            )  # fmt: skip
        resolved = 0
        if outcome.status == "unchanged" and (units or create_missing):
            resolved = resolve_flagged(
                session=session, plan_id=outcome.plan_id, now=now, matcher=matcher
            )
        if dry_run:
            session.rollback()
            console.print("预览模式：未写入任何数据。")
            return
        session.commit()
    if outcome.status == "unchanged":
        extra = f"；已为 {resolved} 个原未匹配的单位交办部门" if resolved else "，没有任何改动"
        console.print(f"该文件已导入过（计划编号 {outcome.plan_id}）{extra}。")
        return
    print_unresolved(outcome.unresolved)
    verb = "已创建" if outcome.status == "created" else "已更新"
    console.print(f"{verb}计划 {outcome.plan_id}：{outcome.title}（{len(parsed.items)} 项任务）。")


@app.command("list")
def list_command() -> None:
    """列出已导入的计划。"""
    from duban.runtime import open_store
    from tasks.plan_import import list_plans

    store = open_store()
    with store.sessions() as session:
        plans = list_plans(session=session)
        table = Table("编号", "标题", "年度", "单位", "状态", "来源文件")
        for plan in plans:
            table.add_row(
                str(plan.id), plan.title, str(plan.year), plan.organisation, plan.status,
                plan.source_name,
            )  # fmt: skip
    console.print(table)
    console.print(f"共 {len(plans)} 个计划。")


@app.command("show")
def show_command(plan_ref: str = typer.Argument(..., help="计划编号或完整标题")) -> None:
    """显示一个计划的章节、任务、指标和阶段。"""
    from duban.runtime import open_store
    from tasks.plan_diff import assigned_departments
    from tasks.plan_import import get_plan

    store = open_store()
    with store.sessions() as session:
        plan = get_plan(session=session, plan_ref=plan_ref)
        issued = f"，印发日期 {plan.issued.isoformat()}" if plan.issued else ""
        console.print(line((plan.title, "bold"), f"（编号 {plan.id}，{plan.year}年{issued}）"))
        console.print(f"单位：{plan.organisation or '未写明'}；状态：{plan.status}")
        sections = {s.id: s.number for s in plan.sections}
        departments = assigned_departments(session=session, plan_id=plan.id)
        items = Table(
            "序号", "章节", "任务", "牵头", "配合", "指标", "待交办", "未匹配单位", title="任务"
        )
        for item in plan.items:
            targets = [(t.text, t.comparator, t.value, t.unit) for t in item.targets]
            unresolved = "、".join(
                str(u.get("name", "")) for u in item.unresolved_units if isinstance(u, dict)
            )
            items.add_row(
                item.number,
                sections.get(item.section_id or 0, ""),
                item.title,
                "、".join(departments.get(item.id, {}).get("lead", [])),
                "、".join(departments.get(item.id, {}).get("support", [])),
                targets_text(targets),
                "是" if item.needs_assignment else "",
                unresolved,
            )
        phases = Table("阶段", "名称", "开始日期", "结束日期", title="实施阶段")
        for phase in plan.phases:
            phases.add_row(
                phase.key, phase.name, phase.start_date.isoformat(), phase.end_date.isoformat()
            )
    console.print(items)
    console.print(phases)


from duban.cli.plan_export import export_command  # noqa: E402

app.command("export")(export_command)
