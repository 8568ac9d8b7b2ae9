"""Text clean-up before structure: pinyin annotations, width, site boilerplate, page breaks.

Damaged characters (`??`, `三?!本`) pass through untouched. The result is a list of
paragraphs, each with the 1-based line of the source where it starts.
"""

from __future__ import annotations

import io
import re
from bisect import bisect_right
from dataclasses import dataclass

from models.errors import InputError

MAX_PARAGRAPHS = 500_000

_PINYIN_LETTERS = "a-zü" + "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN = re.compile(rf"(?<=[\u3400-\u9fff\uf900-\ufaff])\(([{_PINYIN_LETTERS}]{{1,7}})\)")
_HAS_VOWEL = re.compile(r"[aeiouüāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ]|^(?:ng|m|n|hm|hng)$")

_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF10, 0xFF1A)}
_FULL_WIDTH.update({code: code - 0xFEE0 for code in range(0xFF21, 0xFF3B)})
_FULL_WIDTH.update({code: code - 0xFEE0 for code in range(0xFF41, 0xFF5B)})
_FULL_WIDTH.update({0x3000: 0x20, 0xFF0E: 0x2E, 0xFF05: 0x25, 0xA0: 0x20})

_HAS_FULL_WIDTH = re.compile("[\uff05\uff0e\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000\xa0]")
_BOILERPLATE = re.compile(
    r"^(?:收藏\s*分享|下载\s*相关|返回\s*下载|上传人|文档编号|资源描述|展开阅读全文|相关资源|"
    r"猜你喜欢|相关搜索|当前位置[:：]|copyright|经营许可证|电脑版|点击查看更多|"
    r"亲[,，]该文档|本文档|.{0,40}由会员分享|.{0,80}_第\d+页$|第\d+页\s*/\s*共\d+页$|"
    r"举报|分享到|下载文档|立即下载|版权所有)",
    re.IGNORECASE,
)
_SCRAPED = re.compile(r"上传人|文档编号|资源描述|展开阅读全文|第\d+页\s*/\s*共\d+页|由会员分享")
_CN_NUM = "一二三四五六七八九十百"
_SPLIT_SPACE = re.compile(
    rf"(?<!\s)\s++(?=[{_CN_NUM}]{{1,3}}、|[(（][{_CN_NUM}]{{1,3}}[)）]|\d{{1,3}}[.、．](?!\d)\s*[\u3400-\u9fff])"
)
_SPLIT_AFTER_STOP = re.compile(
    rf"(?<=[。；;!！?？])(?=[{_CN_NUM}]{{1,3}}、|[(（][{_CN_NUM}]{{1,3}}[)）]"
    rf"|\d{{1,3}}[.、．](?!\d)\s*[\u3400-\u9fff])"
    rf"|(?<=[)）〕】])(?=[(（][{_CN_NUM}]{{1,3}}[)）][\u3400-\u9fff])"
)


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of cleaned text and the 1-based source line where it starts."""

    line: int
    text: str


@dataclass(frozen=True)
class CleanDocument:
    """Cleaned paragraphs; `scraped` is set when document-site boilerplate was removed."""

    paragraphs: list[Paragraph]
    scraped: bool


def strip_pinyin(text: str) -> str:
    """Remove ASCII pinyin annotations after Chinese characters: `學(xué)會(huì)` -> `學會`.

    Parentheses holding Chinese text, digits or capitals are kept: they are real text.
    """

    def drop(match: re.Match[str]) -> str:
        return "" if _HAS_VOWEL.search(match.group(1)) else match.group(0)

    return _PINYIN.sub(drop, text) if "(" in text else text


def to_half_width(text: str) -> str:
    """Full-width digits, letters, `．`, `％` and spaces to half-width; CJK punctuation kept."""
    return text.translate(_FULL_WIDTH) if _HAS_FULL_WIDTH.search(text) else text


def normalise_line(text: str) -> str:
    """One line with pinyin removed, width normalised and outer whitespace stripped."""
    return to_half_width(strip_pinyin(text)).strip()


def is_boilerplate(line: str) -> bool:
    """True for a document-sharing site's chrome (uploader, page counters, copyright)."""
    return bool(_BOILERPLATE.match(line.strip()))


def split_inline(text: str) -> list[str]:
    """Split a run-on paragraph before section and item markers (after a space or a full stop)."""
    parts: list[str] = []
    for chunk in _SPLIT_SPACE.split(text):
        parts.extend(piece for piece in _SPLIT_AFTER_STOP.split(chunk) if piece.strip())
    return [part.strip() for part in parts]


def _join_pages(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join page chunks `1、…`, `2、…` of a scraped page into one run, keeping other lines."""
    out: list[tuple[int, str]] = []
    expected = 1
    run: list[tuple[int, str]] = []
    for number, line in lines:
        marker = f"{expected}、"
        if line.startswith(marker):
            run.append((number, line[len(marker) :]))
            expected += 1
        elif run:
            run.append((number, line))
        else:
            out.append((number, line))
    if run:
        out.extend(_split_run(run))
    return out


def _split_run(run: list[tuple[int, str]]) -> list[tuple[int, str]]:
    offsets: list[int] = []
    numbers: list[int] = []
    length = 0
    for number, piece in run:
        offsets.append(length)
        numbers.append(number)
        length += len(piece)
    text = "".join(piece for _, piece in run)
    result: list[tuple[int, str]] = []
    position = 0
    for part in split_inline(text):
        found = text.find(part, position)
        offset = found if found >= 0 else position
        position = offset + len(part) if found >= 0 else position
        index = bisect_right(offsets, offset) - 1
        result.append((numbers[index] if index >= 0 else run[0][0], part))
    return result


_LINE_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _numbered_lines(text: str, *, scraped: bool) -> list[tuple[int, str]]:
    """Non-empty cleaned lines with their 1-based numbers; raises past `MAX_PARAGRAPHS`.

    Every Unicode line break (form feed, U+2028, …) ends a line, as `\\n` does.
    """
    if _LINE_BREAKS.search(text):
        text = _LINE_BREAKS.sub("\n", text)
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(io.StringIO(text, newline="\n"), start=1):
        cleaned = normalise_line(line)
        if not cleaned or (scraped and is_boilerplate(cleaned)):
            continue
        if len(lines) >= MAX_PARAGRAPHS:
            raise InputError(f"文档超过 {MAX_PARAGRAPHS} 段，超出上限；请拆分为多个计划文件")
        lines.append((number, cleaned))
    return lines


def clean_document(text: str) -> CleanDocument:
    """Normalise every line, drop site boilerplate, rejoin scraped pages, split run-ons.

    Linear in the length of `text`; raises `InputError` past `MAX_PARAGRAPHS` paragraphs.
    """
    head = text[:1_000_000].split("\n", 400)[:400]
    tail = text[-100_000:].rsplit("\n", 40)[-40:]
    scraped = any(_SCRAPED.search(line) for line in head) or any(
        _SCRAPED.search(line) for line in tail
    )
    lines = _numbered_lines(text, scraped=scraped)
    if scraped:
        lines = _join_pages(lines)
        return CleanDocument([Paragraph(n, t) for n, t in lines], scraped=True)
    paragraphs: list[Paragraph] = []
    for number, line in lines:
        for part in split_inline(line):
            paragraphs.append(Paragraph(number, part))
            if len(paragraphs) > MAX_PARAGRAPHS:
                raise InputError(f"文档超过 {MAX_PARAGRAPHS} 段，超出上限；请拆分为多个计划文件")
    return CleanDocument(paragraphs, scraped=False)


DOC_NUMBER = re.compile(r"^\S{1,16}[〔\[［(（]\d{4}[〕\]］)）]\s*\d{1,4}\s*号$")
"""A 红头 document's number (文号) on a line of its own: `长科协〔2021〕12号`."""
RED_HEAD = re.compile(r"^(\S{2,30}?)(?:文件|文件处理笺)$")
"""The 红头 issuing-body line: `长治市科学技术协会文件`."""
