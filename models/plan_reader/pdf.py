"""PDF plans -> `ParsedPlan`: the text layer (pdfplumber) in reading order, or a task table.

Lines wrapped by the page width are joined back into paragraphs; running headers and
footers (a line repeated at the top or bottom of most pages), page numbers (`- 3 -`,
`第3页/共9页`) and the 红头 block's 文号 and 签发人 lines are dropped. Task-division tables
(over several pages, header rows repeated) go through the same table reader as .docx/.xlsx.
A PDF with no text layer (a scan), an encrypted one, one past `MAX_PAGES` or one that
pdfminer cannot parse is refused with one line.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from models.errors import InputError
from models.plan_reader.normalise import normalise_line
from models.plan_reader.xlsx import Row, looks_like_task_table, table_to_plan
from models.plan_schema import ParsedPlan, ParseWarning

MAX_PAGES = 500
MAX_CHARS_PER_PAGE = 20_000
_PAGE_NUMBER = re.compile(
    r"^(?:[-—－–_\s]*\d{1,4}[-—－–_\s]*|第\s*\d+\s*页(?:\s*/?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+)$"
)
_SIGNER = re.compile(r"^签\s*发\s*人\s*[:：]")
_MARGIN = 0.09


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", text.replace(" ", ""))


def _page_lines(page: object) -> list[tuple[str, float, float, float]]:
    """(text, top, x1, size) of each text line of a page, in reading order; the first line
    is preceded by a marker line `("", 0, x0, 0)` holding the page's leftmost x0.

    A two-column page (a gutter free of text down the middle of its body) is read as its
    full-width head, the left column, the right column, then its full-width foot; a column
    line's x1 is shifted so that the column's right edge reads as the page's, for the
    joining of wrapped lines.
    """
    lines = page.extract_text_lines(layout=False, strip=True)  # type: ignore[attr-defined]
    left = min((float(line["x0"]) for line in lines), default=0.0)
    out: list[tuple[str, float, float, float]] = [("", 0.0, left, 0.0)]
    gutter = _gutter(page)
    if gutter is None:
        out += [_line_tuple(line) for line in lines]
        return out
    start, end = gutter
    width, height = float(page.width), float(page.height)  # type: ignore[attr-defined]
    crossing = [
        c
        for c in page.chars  # type: ignore[attr-defined]
        if float(c["x0"]) < end and float(c["x1"]) > start
    ]
    head = max((float(c["bottom"]) for c in crossing if float(c["top"]) < height / 2), default=0)
    foot = min((float(c["top"]) for c in crossing if float(c["top"]) >= height / 2), default=height)
    regions = [
        ((0.0, 0.0, width, head), 0.0),
        ((0.0, head, start, foot), width - left - start),
        ((start, head, width, foot), 0.0),
        ((0.0, foot, width, height), 0.0),
    ]
    for box, shift in regions:
        if box[3] - box[1] <= 0 or box[2] - box[0] <= 0:
            continue
        part = page.crop(box).extract_text_lines(layout=False, strip=True)  # type: ignore[attr-defined]
        for line in part:
            text, top, x1, size = _line_tuple(line)
            out.append((text, top, x1 + shift, size))
    return out


def _line_tuple(line: dict[str, Any]) -> tuple[str, float, float, float]:
    chars = line.get("chars") or []
    size = max((float(c.get("size", 0)) for c in chars), default=10.0)
    return str(line["text"]), float(line["top"]), float(line["x1"]), size


def _gutter(page: object) -> tuple[float, float] | None:
    """The x-range of a text-free gutter down the middle of a two-column body, else None.

    Looks at the body (the middle 70 % of the page's height) in 2-point bins: a run of empty
    bins at least 8 points wide, inside the middle 40 % of the width, with at least a fifth of
    the body's characters on each side.
    """
    width, height = float(page.width), float(page.height)  # type: ignore[attr-defined]
    body = [
        c
        for c in page.chars  # type: ignore[attr-defined]
        if height * 0.15 < float(c["top"]) < height * 0.85 and str(c["text"]).strip()
    ]
    if len(body) < 40:
        return None
    bins = int(width // 2) + 1
    covered = [False] * bins
    for c in body:
        for index in range(int(float(c["x0"]) // 2), min(bins, int(float(c["x1"]) // 2) + 1)):
            covered[index] = True
    best: tuple[int, int] | None = None
    run_start: int | None = None
    for index in range(int(width * 0.3 // 2), int(width * 0.7 // 2) + 1):
        if index < bins and not covered[index]:
            run_start = index if run_start is None else run_start
            if best is None or index - run_start > best[1] - best[0]:
                best = (run_start, index)
        else:
            run_start = None
    if best is None or (best[1] - best[0] + 1) * 2 < 8:
        return None
    start, end = best[0] * 2.0, (best[1] + 1) * 2.0
    left_side = sum(1 for c in body if float(c["x1"]) <= start)
    right_side = sum(1 for c in body if float(c["x0"]) >= end)
    if min(left_side, right_side) * 5 < len(body):
        return None
    return start, end


def _paragraphs(
    pages: list[tuple[list[tuple[str, float, float, float]], float, float]],
) -> tuple[str, list[tuple[int, int]]]:
    """Join wrapped lines, drop running headers/footers, page numbers and 文号/签发人.

    Returns the text (one paragraph a line) and, per paragraph, its (page, line on page).
    """
    edges: Counter[str] = Counter()
    inside: set[str] = set()
    for lines, height, _ in pages:
        for text, top, _, _ in lines[1:]:
            if top < height * _MARGIN or top > height * (1 - _MARGIN):
                edges[_shape(text)] += 1
            else:
                inside.add(_shape(text))
    edges = Counter({shape: count for shape, count in edges.items() if shape not in inside})
    repeated = {
        shape for shape, count in edges.items() if len(pages) >= 3 and count * 2 >= len(pages)
    }
    paragraphs: list[str] = []
    where: list[tuple[int, int]] = []
    current = ""
    start = (1, 1)
    left = min((lines[0][2] for lines, _, _ in pages if len(lines) > 1), default=0.0)
    for page_number, (lines, height, width) in enumerate(pages, start=1):
        right = width - left
        for line_number, (text, top, x1, size) in enumerate(lines[1:], start=1):
            at_edge = top < height * _MARGIN or top > height * (1 - _MARGIN)
            clean = normalise_line(text)
            if not clean or (at_edge and (_shape(text) in repeated or _PAGE_NUMBER.match(clean))):
                continue
            if _PAGE_NUMBER.match(clean) or _SIGNER.match(clean):
                continue
            if not current:
                start = (page_number, line_number)
            current += clean
            if x1 < right - 2 * size:
                paragraphs.append(current)
                where.append(start)
                current = ""
    if current:
        paragraphs.append(current)
        where.append(start)
    return "\n".join(paragraphs), where


def _table_rows(tables: list[list[list[str | None]]]) -> list[Row]:
    """Rows of the tables on consecutive pages as one table: repeated header rows dropped, a
    row broken over a page joined back (its continuation has no 序号); a cell merged over
    the row is filled from the left, one merged down from above."""
    rows: list[Row] = []
    header: Row | None = None
    previous: Row = []
    for table in tables:
        first = True
        for raw in table:
            row = [normalise_line(cell or "") for cell in raw]
            if header is not None and row == header:
                continue
            if first and rows and header is not None and raw and raw[0] == "" and any(row):
                rows[-1] = [a + b for a, b in zip(rows[-1], row, strict=False)]
                previous = rows[-1]
                first = False
                continue
            first = False
            if header is None and looks_like_task_table([row]):
                header = row
            if raw and raw[0] is not None and len(raw) > 1 and all(c is None for c in raw[1:]):
                row = [row[0]] * len(row)
            else:
                row = [
                    previous[i] if cell is None and i < len(previous) else row[i]
                    for i, cell in enumerate(raw)
                ]
            rows.append(row)
            previous = row
    return rows


PDF_MEMORY_BYTES = 768 * 1024 * 1024
"""Memory a PDF may take to read beyond what the reading process already holds."""
PDF_SECONDS = 120.0
"""Wall time a PDF may take to read."""


def read_pdf(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """Read a PDF plan: its task table if it has one, else its text. Raises `InputError`.

    A PDF's streams are compressed and can unpack to any size (a PDF bomb), which no page or
    character limit sees before the library has unpacked them; so the PDF is read in a
    forked child process whose address space is capped at `PDF_MEMORY_BYTES` above the
    parent's and which is killed after `PDF_SECONDS`. Either limit is one clear line.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, args=(sender, path, default_year), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(PDF_SECONDS):
            raise InputError(
                f"PDF 读取超过 {PDF_SECONDS:.0f} 秒仍未完成（文件过于复杂或已损坏），已停止",
                path=path,
            )
        outcome, value = receiver.recv()
    except EOFError:
        raise InputError(
            f"PDF 解压后超出内存上限（{PDF_MEMORY_BYTES // 1048576} MB），可能是异常构造的文件",
            path=path,
        ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if outcome == "plan" and isinstance(value, ParsedPlan):
        return value
    if outcome == "memory":
        raise InputError(
            f"PDF 解压后超出内存上限（{PDF_MEMORY_BYTES // 1048576} MB），可能是异常构造的文件",
            path=path,
        )
    reason, line = value if isinstance(value, tuple) else (str(value), 0)
    raise InputError(str(reason), path=path, line=int(line))


def _read_in_child(sender: Connection, path: Path, default_year: int | None) -> None:
    """The child's side of `read_pdf`: cap memory, read, send the plan or the reason."""
    _cap_memory(PDF_MEMORY_BYTES)
    try:
        sender.send(("plan", _read_pdf(path, default_year=default_year)))
    except InputError as exc:
        sender.send(("input", (exc.reason, exc.line)))
    except MemoryError:
        sender.send(("memory", None))
    except Exception as exc:  # every failure is one line in the parent
        sender.send(("input", (f"无法读取 PDF 文件（{type(exc).__name__}）", 0)))
    finally:
        sender.close()


def _out_of_memory(exc: BaseException) -> bool:
    """True if `exc`, or what it wraps (pdfplumber wraps pdfminer's errors), is a MemoryError."""
    todo: list[BaseException] = [exc]
    visited: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, MemoryError):
            return True
        todo += [a for a in current.args if isinstance(a, BaseException)]
        todo += [c for c in (current.__cause__, current.__context__) if c is not None]
    return False


def _cap_memory(extra: int) -> None:
    """Limit this process's address space to its current size plus `extra` bytes."""
    import resource

    current = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                current = int(line.split()[1]) * 1024
    if current:
        resource.setrlimit(resource.RLIMIT_AS, (current + extra, current + extra))


def _read_pdf(path: Path, *, default_year: int | None = None) -> ParsedPlan:
    """`read_pdf` in the current process, without the memory and time bounds."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    from models.plan_reader.document import parse_plan_text

    try:
        document = pdfplumber.open(path)
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        raise InputError("PDF 文件已加密，请先去除密码保护再导入", path=path) from exc
    except Exception as exc:
        causes = (*exc.args, exc.__cause__, exc.__context__)
        if any(isinstance(c, PDFPasswordIncorrect | PDFEncryptionError) for c in causes):
            raise InputError("PDF 文件已加密，请先去除密码保护再导入", path=path) from exc
        raise InputError(
            f"无法打开 PDF 文件（文件已损坏：{type(exc).__name__}）", path=path
        ) from exc
    with document:
        try:
            count = len(document.pages)
            if count > MAX_PAGES:
                raise InputError(
                    f"PDF 共 {count} 页，超出上限 {MAX_PAGES} 页；请拆分后导入", path=path
                )
            pages = []
            tables: list[list[list[str | None]]] = []
            chars = 0
            for page in document.pages:
                if len(page.chars) > MAX_CHARS_PER_PAGE:
                    raise InputError(
                        f"PDF 第{page.page_number}页文字过多（{len(page.chars)} 字），超出上限",
                        path=path,
                    )
                chars += len(page.chars)
                pages.append((_page_lines(page), float(page.height), float(page.width)))
                tables.extend(page.extract_tables())
                page.close()
        except InputError:
            raise
        except Exception as exc:
            if _out_of_memory(exc):
                raise MemoryError from exc
            raise InputError(f"无法读取 PDF 文件（{type(exc).__name__}）", path=path) from exc
    if chars == 0:
        raise InputError("PDF 没有文字层（可能是扫描件），无法识别；请提供文字版文件", path=path)
    text, where = _paragraphs(pages)
    rows = _table_rows(tables)
    if rows and looks_like_task_table(rows):
        title = next((line for line in text.splitlines() if line), path.stem)
        return table_to_plan(rows, source_name=path.name, title=title, default_year=default_year)
    plan = parse_plan_text(text, source_name=path.name, default_year=default_year)
    plan.warnings = [_on_page(warning, where) for warning in plan.warnings]
    return plan


def _on_page(warning: ParseWarning, where: list[tuple[int, int]]) -> ParseWarning:
    """A warning about paragraph N as `第3页第12行：…` (page and line of the PDF)."""
    if not 0 < warning.line <= len(where):
        return warning
    page, line = where[warning.line - 1]
    return ParseWarning(line=0, reason=f"第{page}页第{line}行：{warning.reason}")
