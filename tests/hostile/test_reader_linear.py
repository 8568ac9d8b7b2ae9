"""The plan reader is linear: hostile text of a few hundred kB parses (or is refused) in
seconds, where quadratic regular expressions and scans took minutes.

Bounds are absolute and generous (a factor of ten over what the reader takes on a loaded
two-core machine); a quadratic spot on these sizes takes a hundred times longer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from types import ModuleType

import pytest

from models.errors import InputError
from models.plan_reader import (
    archive,
    deadlines,
    document,
    normalise,
    phases,
    structure,
    targets,
    units,
    xlsx,
)
from models.plan_reader.document import parse_plan_text

HEAD = "某市科协2030年工作要点\n"


def _rep(token: str, size: int) -> str:
    return token * max(1, size // len(token))


CASES: dict[str, Callable[[int], str]] = {
    "digits": lambda n: HEAD + "1." + "1" * n,
    "chinese numerals": lambda n: HEAD + "1.不少于" + "一" * n,
    "unit clause openings": lambda n: HEAD + "1.工作。" + _rep("（牵头单位：学会部", n),
    "bare unit clauses": lambda n: HEAD + "1.工作。" + _rep("；牵头单位：学会部", n),
    "one long item body": lambda n: HEAD + "1.标题。\n" + _rep("正文内容第几行\n", n),
    "deeper numbered lines": lambda n: HEAD + "（一）标题。\n" + _rep("1.内容。\n", n),
    "duplicate sections": lambda n: HEAD + "1.工作\n" + _rep("一、标题\n", n),
    "scraped pages": lambda n: (
        "上传人\n" + HEAD + "".join(f"{i}、内容{i}。1.工作\n" for i in range(1, n // 12))
    ),
    "run-on markers": lambda n: HEAD + _rep("。(一)工作", n),
    "spaces": lambda n: HEAD + "1.工作" + " " * n + "x",
    "qualifiers": lambda n: HEAD + "1.工作（牵头单位：学会部" + "等" * n + "）",
    "unit names": lambda n: (
        HEAD + "1.工作\n" + "".join(f"牵头单位：部门{i}\n" for i in range(n // 10))
    ),
    "percentages": lambda n: HEAD + "1." + _rep("5%", n),
    "quotes": lambda n: HEAD + "1.工作" + _rep("“5个", n),
}


def _parse(text: str) -> None:
    try:
        parse_plan_text(text, source_name="hostile.txt", default_year=2030)
    except InputError:
        pass


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_text_is_read_in_linear_time(name: str) -> None:
    text = CASES[name](200_000)
    started = time.perf_counter()
    _parse(text)
    assert time.perf_counter() - started < 10, name


def test_twenty_kb_of_digits_in_one_item() -> None:
    started = time.perf_counter()
    plan = parse_plan_text(HEAD + "1." + "1" * 20_000 + "\n", source_name="d.txt")
    assert time.perf_counter() - started < 2
    assert plan.items[0].targets == []


def test_lead_clause_opening_repeated_thirty_thousand_times() -> None:
    started = time.perf_counter()
    _parse(HEAD + "1.工作。" + "（牵头单位：学会部" * 30_000)
    assert time.perf_counter() - started < 15


def test_numbered_lines_near_the_size_limit_are_refused_quickly() -> None:
    text = HEAD + "".join(f"{i}.做好第{i}项工作。\n" for i in range(1, 700_000))
    assert len(text.encode()) > 13_000_000
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"超过 (20000 项|500000 段)"):
        parse_plan_text(text, source_name="lines.txt")
    assert time.perf_counter() - started < 30


def test_trailing_clause_still_read_after_the_rewrite() -> None:
    plan = parse_plan_text(
        HEAD + "1.工作。内容（含附件）。（牵头单位：学会部（秘书处）；配合单位：普及部等）\n"
        "2.调研。牵头单位：办公室；配合单位：学会部。\n",
        source_name="u.txt",
    )
    assert [(i.lead, i.support) for i in plan.items] == [
        (["学会部（秘书处）"], ["普及部"]),
        (["办公室"], ["学会部"]),
    ]


MODULES: tuple[ModuleType, ...] = (
    archive, deadlines, document, normalise, phases, structure, targets, units, xlsx,
)  # fmt: skip
PATTERNS = [
    (f"{module.__name__.rsplit('.', 1)[1]}.{name}", value)
    for module in MODULES
    for name, value in vars(module).items()
    if isinstance(value, re.Pattern)
]
TOKENS = [
    "1", "一", "十", "万", " ", "\u3000", "(", "（", "〔", "、", ".", "。", "；", "：", ":", "月",
    "3月", "年", "2021年", "“", "等", "牵头单位：", "（牵头单位：学会部", "；牵头单位：", "第",
    "1.", "(一)", "一、", "学(", "a", "不少于", "5%", "阶段", "-", "—",
]  # fmt: skip


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_every_reader_pattern_is_linear_on_runs_of_its_tokens(
    name: str, pattern: re.Pattern[str]
) -> None:
    """The class, not the examples: no reader pattern backtracks over a long run."""
    assert len(PATTERNS) > 20
    for token in TOKENS:
        text = token * (30_000 // len(token)) + "x"
        started = time.perf_counter()
        pattern.search(text)
        for _ in pattern.finditer(text):
            pass
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0, f"{name} on {token!r}×{len(text)}: {elapsed:.2f} s"
