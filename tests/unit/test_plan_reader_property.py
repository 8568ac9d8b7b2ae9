"""Property: random and mutated documents never crash the reader and never hang."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.errors import InputError
from models.plan_reader.document import parse_plan_text
from models.plan_reader.encoding import decode_text

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
SAMPLE = (
    "某市科协2030年工作要点\n一、党建\n1.学习理论。不少于12次。（牵头部室：办公室；配合单位：学会部）\n"
    "(一)动员部署阶段(3月下旬5月上旬)。\n八项行动是:\n(一)行动。5家以上\n學(xué)會(huì)\n"
)
if SEEDS.is_dir():
    SAMPLE += "\n".join(p.read_text(encoding="utf-8")[:3000] for p in sorted(SEEDS.glob("00*")))
ALPHABET = st.sampled_from(
    list('一二三四五六七八九十、。.,:：;；()（）〔〕【】“”"-—~至年月日旬上中下底前以上不少于左右%')
    + list("0123456789 \n\tabc學會部牵头单位配合责任阶段是?")
)


def _parse(text: str) -> None:
    started = time.perf_counter()
    try:
        parse_plan_text(text, source_name="fuzz.txt", default_year=2030)
    except InputError:
        pass
    assert time.perf_counter() - started < 30, "the reader must not hang"


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.text(alphabet=ALPHABET, max_size=400))
def test_random_documents(text: str) -> None:
    _parse(text)


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(
        st.tuples(st.integers(0, len(SAMPLE)), st.integers(0, 40), st.text(ALPHABET, max_size=8)),
        max_size=12,
    )
)
def test_mutated_documents(edits: list[tuple[int, int, str]]) -> None:
    text = SAMPLE
    for position, length, insert in edits:
        text = text[:position] + insert + text[position + length :]
    _parse(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_refuse(data: bytes) -> None:
    try:
        decoded = decode_text(data)
    except InputError:
        return
    _parse(decoded.text)
