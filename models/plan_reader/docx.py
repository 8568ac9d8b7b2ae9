"""Word documents -> `ParsedPlan`: paragraphs and tables in document order."""

from __future__ import annotations

from pathlib import Path

from models.errors import InputError
from models.plan_reader.archive import MAX_CELLS, MAX_PARAGRAPHS, check_counts, open_office_archive
from models.plan_reader.normalise import normalise_line
from models.plan_reader.xlsx import looks_like_task_table, table_to_plan
from models.plan_schema import ParsedPlan


def _blocks(path: Path) -> tuple[list[str], list[list[list[str]]]]:
    """Paragraph texts (table cells flattened in order) and the tables as rows of cell text."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise InputError(
            f"无法打开 Word 文件（文件已损坏：{type(exc).__name__}）", path=path
        ) from exc
    lines: list[str] = []
    tables: list[list[list[str]]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, Table):
            rows = [[normalise_line(cell.text) for cell in row.cells] for row in block.rows]
            tables.append(rows)
            for row in rows:
                lines.extend(dict.fromkeys(text for text in row if text))
    return lines, tables


def read_docx(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """Read a .docx plan: a 任务分工表 table if there is one, else its text.

    Declared sizes, paragraph and cell counts are checked before python-docx parses it (see
    `models.plan_reader.archive`). Raises `InputError` when the file is not a real Word
    document (a renamed zip, a damaged one) or passes the limits.
    """
    from models.plan_reader.document import parse_plan_text

    with open_office_archive(path, kind=".docx", required="word/document.xml") as archive:
        limits = {b"w:p": MAX_PARAGRAPHS, b"w:tc": MAX_CELLS}
        check_counts(archive, path, ["word/document.xml"], limits)
    try:
        lines, tables = _blocks(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"无法读取 Word 文件（文件已损坏：{type(exc).__name__}）", path=path
        ) from exc
    for rows in tables:
        if looks_like_task_table(rows):
            title = next((normalise_line(t) for t in lines if normalise_line(t)), path.stem)
            return table_to_plan(
                rows, source_name=path.name, title=title, default_year=default_year
            )
    return parse_plan_text("\n".join(lines), source_name=path.name, default_year=default_year)
