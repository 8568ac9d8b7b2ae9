"""Property: any text, and any bytes under a text/Office/YAML name, is read or refused with one
Chinese line, within a per-input time and memory bound.

Inputs are built from hostile tokens repeated up to thousands of times, so a quadratic spot
or an unbounded allocation breaks the bound. Memory is measured with tracemalloc (Python
allocations), per input.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.errors import InputError
from models.plan_reader.document import parse_plan_text, read_plan_file

TOKENS = st.sampled_from(
    [
        "1", "12", "一", "十", "万", "1.", "1、", "(一)", "（一）", "一、", "（牵头单位：",
        "牵头部室:", "；配合单位：", "〔责任单位：", "）", "〕", "、", "。", "；", ":", "\n", " ",
        "\u3000", "不少于", "以上", "5%", "场次", "“", "”", "等", "3月下旬", "至", "阶段",
        "2021年", "5月24日", "學(xué)", "上传人", "展开阅读全文", "八项行动是:", "\r", "\f",
    ]
)  # fmt: skip
PIECES = st.tuples(TOKENS, st.integers(1, 3000))
SECONDS = 5.0
PEAK_BYTES = 200 * 1024 * 1024


def _bounded(action: object) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()  # type: ignore[operator]
    except InputError as exc:
        assert "\n" not in str(exc)
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < SECONDS, f"{elapsed:.1f} s"
    assert peak < PEAK_BYTES, f"{peak / 1048576:.0f} MB"


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(PIECES, min_size=1, max_size=12))
def test_hostile_text_is_read_or_refused_within_bounds(pieces: list[tuple[str, int]]) -> None:
    text = "某市2030年工作要点\n" + "".join(token * count for token, count in pieces)
    _bounded(lambda: parse_plan_text(text, source_name="p.txt", default_year=2030))


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from([".txt", ".docx", ".xlsx", ".yaml", ".json", ".md"]),
    st.binary(max_size=4000),
    st.lists(PIECES, max_size=4),
)
def test_any_bytes_under_any_name_are_read_or_refused(
    tmp_path_factory: object, suffix: str, data: bytes, pieces: list[tuple[str, int]]
) -> None:
    folder: Path = tmp_path_factory.mktemp("p")  # type: ignore[attr-defined]
    path = folder / f"input{suffix}"
    path.write_bytes(data + "".join(t * c for t, c in pieces).encode("utf-8"))
    _bounded(lambda: read_plan_file(path, default_year=2030))
