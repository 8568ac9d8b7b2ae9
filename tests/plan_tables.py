"""A task-division table (任务分工方案) for the tests: 32 items in 5 sections, written as .xlsx
and .docx the way offices lay them out — a title row, two header rows, section rows merged
across the table, 1.1 numbering, and per item a 完成时限, a 时序进度 / 任务分解 cell and a
考核要点 — so the reader and the schedule are tested on the shape real plans arrive in.

`TASKS` is the hand-written truth: tests compare what the reader returns with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TITLE = "2023年市科协重点工作任务分工方案"
YEAR = 2023


@dataclass(frozen=True)
class TableTask:
    """One row of the table as written."""

    number: str
    task: str
    milestones: str
    criteria: str
    lead: str
    support: str
    deadline: str


SECTIONS: tuple[tuple[str, str, tuple[TableTask, ...]], ...] = (
    (
        "一",
        "强化思想政治引领",
        (
            TableTask(
                "1.1",
                "深入学习宣传贯彻党的二十大精神。组织科技工作者专题学习。",
                "3月：制定学习方案 4月—6月：开展专题宣讲 12月：总结",
                "宣讲不少于20场次",
                "机关党支部",
                "办公室",
                "2023年12月底前",
            ),
            TableTask(
                "1.2",
                "开展科学家精神宣讲活动。",
                "一季度：组建宣讲团；二季度：启动宣讲；下半年：全面推开",
                "覆盖全市各县区",
                "学会部",
                "普及部、素质中心",
                "年内完成",
            ),
            TableTask(
                "1.3",
                "加强科技社团党建工作。",
                "",
                "党建工作覆盖率达到100%",
                "机关党支部",
                "学会部",
                "长期坚持",
            ),
            TableTask(
                "1.4",
                "做好意识形态工作。",
                "",
                "",
                "办公室",
                "",
                "每季度末",
            ),
            TableTask(
                "1.5",
                "推进模范机关建设。",
                "6月底前：完成自查；10月底前：整改到位",
                "",
                "机关党支部",
                "办公室",
                "10月底前完成",
            ),
            TableTask(
                "1.6",
                "开展主题党日活动。",
                "",
                "每月不少于1次",
                "机关党支部",
                "",
                "每月",
            ),
        ),
    ),
    (
        "二",
        "提升学术交流水平",
        (
            TableTask(
                "2.1",
                "举办市科协年会。",
                "5月：确定主题 6月—8月：筹备 9月：举办年会",
                "参会人数不少于500人",
                "学会部",
                "办公室、普及部",
                "9月30日前",
            ),
            TableTask(
                "2.2",
                "支持学会开展学术活动。",
                "",
                "资助学术活动不少于30项",
                "学会部",
                "",
                "持续推进",
            ),
            TableTask(
                "2.3",
                "打造学术交流品牌。",
                "4月：征集选题 7月：评审 11月：发布",
                "",
                "学会部",
                "素质中心",
                "11月底前",
            ),
            TableTask(
                "2.4",
                "建设高端科技智库。",
                "上半年：组建专家库；下半年：形成决策咨询报告",
                "形成报告3篇以上",
                "学会部",
                "办公室",
                "年底前",
            ),
            TableTask(
                "2.5",
                "开展学会能力提升专项。",
                "",
                "",
                "学会部",
                "",
                "第三季度",
            ),
            TableTask(
                "2.6",
                "推进学会治理改革。",
                "3月：调研 8月：出台指导意见",
                "",
                "学会部",
                "办公室",
                "2023年8月31日",
            ),
            TableTask(
                "2.7",
                "组织学术沙龙。",
                "",
                "全年不少于12期",
                "学会部",
                "",
                "每季度",
            ),
        ),
    ),
    (
        "三",
        "推动全民科学素质提升",
        (
            TableTask(
                "3.1",
                "组织全国科普日活动。",
                "8月：制定方案 9月：集中开展 10月：总结上报",
                "开展活动不少于200场次",
                "普及部",
                "学会部、素质中心",
                "10月底前",
            ),
            TableTask(
                "3.2",
                "推进科普示范县建设。",
                "1-3月：摸底；4-10月：创建；11月：验收",
                "新创建示范县2个",
                "普及部",
                "",
                "11月底前完成",
            ),
            TableTask(
                "3.3",
                "建设科普教育基地。",
                "",
                "新认定基地不少于10家",
                "普及部",
                "素质中心",
                "年内完成",
            ),
            TableTask(
                "3.4",
                "开展科技下乡活动。",
                "二季度：春季下乡；三季度：夏季下乡；四季度：冬季下乡",
                "",
                "普及部",
                "办公室",
                "12月20日前",
            ),
            TableTask(
                "3.5",
                "加强应急科普。",
                "",
                "",
                "普及部",
                "",
                "常态化推进",
            ),
            TableTask(
                "3.6",
                "实施青少年科学素质提升行动。",
                "3月：启动 5月：组织竞赛 7月—8月：科技夏令营",
                "参与学生不少于5000人",
                "素质中心",
                "普及部",
                "8月底前",
            ),
            TableTask(
                "3.7",
                "举办科技创新大赛。",
                "4月：发布通知 6月：初赛 9月：决赛",
                "",
                "素质中心",
                "",
                "9月底前",
            ),
        ),
    ),
    (
        "四",
        "服务创新驱动发展",
        (
            TableTask(
                "4.1",
                "建设院士专家工作站。",
                "6月底前：完成申报；12月底前：完成评估",
                "新建工作站3家以上",
                "学会部",
                "办公室",
                "12月底前",
            ),
            TableTask(
                "4.2",
                "开展科技服务企业行动。",
                "",
                "服务企业不少于100家",
                "学会部",
                "素质中心",
                "持续推进",
            ),
            TableTask(
                "4.3",
                "组建企业科协。",
                "",
                "新建企业科协5家以上",
                "学会部",
                "",
                "下半年完成",
            ),
            TableTask(
                "4.4",
                "推进科技成果转化。",
                "3月：征集成果 9月：举办对接会",
                "",
                "学会部",
                "普及部",
                "9月底前",
            ),
            TableTask(
                "4.5",
                "开展创新方法培训。",
                "",
                "培训不少于1000人次",
                "素质中心",
                "",
                "上半年",
            ),
            TableTask(
                "4.6",
                "服务乡村振兴。",
                "",
                "",
                "普及部",
                "学会部",
                "长期坚持",
            ),
        ),
    ),
    (
        "五",
        "加强自身建设",
        (
            TableTask(
                "5.1",
                "完善内部管理制度。",
                "3月：梳理制度 6月：修订印发",
                "",
                "办公室",
                "",
                "6月底前",
            ),
            TableTask(
                "5.2",
                "加强干部队伍建设。",
                "",
                "",
                "办公室",
                "机关党支部",
                "年内完成",
            ),
            TableTask(
                "5.3",
                "推进数字科协建设。",
                "一季度：需求调研；三季度：上线试运行；四季度：正式运行",
                "",
                "办公室",
                "学会部、普及部",
                "12月底前",
            ),
            TableTask(
                "5.4",
                "做好信息宣传工作。",
                "",
                "刊发信息不少于150条",
                "办公室",
                "",
                "每月",
            ),
            TableTask(
                "5.5",
                "落实安全生产责任。",
                "",
                "",
                "办公室",
                "",
                "每季度末",
            ),
            TableTask(
                "5.6",
                "做好年度考核工作。",
                "11月：制定考核方案 12月：组织考核",
                "",
                "办公室",
                "机关党支部",
                "12月底前",
            ),
        ),
    ),
)

HEADER = ("序号", "工作任务", "任务分解/时序进度", "考核要点", "牵头单位", "责任单位", "完成时限")


def tasks() -> list[TableTask]:
    """Every task row in table order."""
    return [task for _, _, rows in SECTIONS for task in rows]


def _row(task: TableTask, order: tuple[int, ...]) -> list[str]:
    values = (
        task.number,
        task.task,
        task.milestones,
        task.criteria,
        task.lead,
        task.support,
        task.deadline,
    )
    return [values[index] for index in order]


def write_xlsx(path: Path, *, order: tuple[int, ...] = tuple(range(7))) -> Path:
    """The table as a workbook: title row and section rows merged across, two header rows."""
    import openpyxl

    path = path.with_suffix(".xlsx")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    width = len(order)
    sheet.append([TITLE] + [None] * (width - 1))
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    header = [HEADER[index] for index in order]
    sheet.append(header)
    sheet.append(["（填报说明）" if col == 0 else "" for col in range(width)])
    for number, heading, rows in SECTIONS:
        sheet.append([f"{number}、{heading}"] + [None] * (width - 1))
        row = sheet.max_row
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        for task in rows:
            sheet.append(_row(task, order))
    workbook.save(path)
    return path


def write_docx(path: Path, *, order: tuple[int, ...] = tuple(range(7))) -> Path:
    """The table in a Word document under its title, section rows merged across."""
    import docx

    path = path.with_suffix(".docx")
    document = docx.Document()
    document.add_paragraph(TITLE)
    width = len(order)
    all_rows = sum(len(rows) + 1 for _, _, rows in SECTIONS) + 1
    table = document.add_table(rows=all_rows, cols=width)
    for col, index in enumerate(order):
        table.cell(0, col).text = HEADER[index]
    row = 1
    for number, heading, rows in SECTIONS:
        merged = table.cell(row, 0).merge(table.cell(row, width - 1))
        merged.text = f"{number}、{heading}"
        row += 1
        for task in rows:
            for col, value in enumerate(_row(task, order)):
                table.cell(row, col).text = value
            row += 1
    document.save(str(path))
    return path
