"""PNG charts in the Word 通报 draw their Chinese labels with a real CJK font: no tofu boxes.

`make test` installs Debian's fonts-noto-cjk; under CI the font must be found (a missing font
fails here rather than silently shipping numbered charts). Without one, the chart falls back to
numbered bars and a legend, which the last test checks.
"""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from tasks.reporting import charts
from tasks.reporting.outline import Chart

BARS = Chart("depts", "图1 各部室按时报送率", "bar", bars=(("学会部", 80.0), ("普及部", None)))
WEEKS = Chart(
    "weeks", "图2 红黄绿灯", "stacked", series=(("9/3", (3, 1, 0, 0)), ("9/10", (2, 1, 1, 0)))
)


@pytest.fixture
def font() -> object:
    found = charts.cjk_font()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no CJK font found: `make test` installs fonts-noto-cjk")
        pytest.skip("no CJK font on this machine (make browser installs fonts-noto-cjk)")
    return found


def _ink(png: bytes, box: tuple[int, int, int, int]) -> int:
    """How many non-white pixels `png` has inside `box`."""
    image = Image.open(io.BytesIO(png)).convert("L").crop(box)
    return sum(1 for value in image.tobytes() if value < 200)


def test_bar_chart_draws_its_chinese_labels(font: object) -> None:
    png = charts.png(BARS)
    assert png == charts.png(BARS)
    assert charts.covers(font, charts.labels_of(BARS))  # type: ignore[arg-type]
    width, height = Image.open(io.BytesIO(png)).size
    assert width == charts.WIDTH
    # The label column left of the axis holds the department names' strokes.
    assert _ink(png, (0, 0, 160, height)) > 60
    assert charts.png_legend(BARS) == ""


def test_the_font_is_checked_per_character(font: object) -> None:
    assert charts.covers(font, "督办学会部")  # type: ignore[arg-type]
    assert not charts.covers(font, "学\U000f0001")  # type: ignore[arg-type]


def test_stacked_chart_has_the_colour_names(font: object) -> None:
    png = charts.png(WEEKS)
    assert _ink(png, (40, 0, 400, 20)) > 60  # 绿灯 黄灯 红灯 未评定 beside their swatches


def test_without_a_cjk_font_the_chart_is_numbered_with_a_legend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(charts, "CJK_FONTS", ())
    monkeypatch.delenv("DUBAN_CJK_FONT", raising=False)
    charts.cjk_font.cache_clear()
    try:
        assert charts.cjk_font() is None
        assert charts.png(BARS) == charts.numbered_png(BARS)
        assert charts.png_legend(BARS).startswith("注：1. 学会部 80.0%")
    finally:
        charts.cjk_font.cache_clear()
