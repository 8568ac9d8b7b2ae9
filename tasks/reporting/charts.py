"""Charts drawn by hand: SVG for HTML, and PNG rasters for DOCX (python-docx has no SVG).

No network, no plotting library. The PNG draws its Chinese labels with a CJK font found on
the machine (`cjk_font`: `DUBAN_CJK_FONT`, else Noto CJK as `make test` installs it, else the
usual Windows/macOS/WenQuanYi fonts) through Pillow, checking that the font has a glyph for
every character it draws (no tofu boxes). Where no such font exists, bars are numbered and the
DOCX prints a legend beneath (see `png_legend`). Output is a pure function of the chart and
the font: the same chart gives the same bytes on the same machine.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from functools import lru_cache
from html import escape
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from models.review import COLOUR_NAMES, COLOURS
from tasks.reporting.outline import Chart, fmt_pct

PALETTE = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828", "none": "#bdbdbd"}
BAR = "#1f5fa8"
WIDTH = 640


def svg(chart: Chart) -> str:
    """The chart as a standalone `<svg>` element (text escaped)."""
    return _svg_bars(chart) if chart.kind == "bar" else _svg_stacked(chart)


def _svg_bars(chart: Chart) -> str:
    row, left, right = 22, 170, 70
    height = 30 + row * len(chart.bars)
    top = max([100.0, *(v for _, v in chart.bars if v is not None)])
    span = WIDTH - left - right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{height - 10}" stroke="#666"/>',
    ]
    for index, (label, value) in enumerate(chart.bars):
        y = 15 + index * row
        short = label if len(label) <= 12 else label[:11] + "…"
        out.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{escape(short)}</text>"
        )
        if value is None:
            out.append(
                f'<text x="{left + 6}" y="{y + 13}" font-size="12" fill="#666">无数据</text>'
            )
            continue
        width = round(span * max(value, 0.0) / top, 1)
        out.append(f'<rect x="{left}" y="{y + 2}" width="{width}" height="14" fill="{BAR}"/>')
        out.append(
            f'<text x="{left + width + 4}" y="{y + 13}" font-size="12">{fmt_pct(value)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _svg_stacked(chart: Chart) -> str:
    height, bottom, left, legend = 260, 40, 40, 24
    plot = height - bottom - legend
    top = max([1, *(sum(counts) for _, counts in chart.series)])
    step = (WIDTH - left - 10) / max(1, len(chart.series))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">'
    ]
    for index, colour in enumerate(COLOURS):
        x = left + index * 90
        out.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[colour]}"/>')
        out.append(f'<text x="{x + 16}" y="14" font-size="12">{COLOUR_NAMES[colour]}</text>')
    every = max(1, len(chart.series) // 13)
    for index, (label, counts) in enumerate(chart.series):
        column = round(left + index * step + step * 0.15, 1)
        y = float(legend + plot)
        for colour, count in zip(COLOURS, counts, strict=True):
            h = round(plot * count / top, 1)
            if h:
                y -= h
                out.append(
                    f'<rect x="{column}" y="{round(y, 1)}" width="{round(step * 0.7, 1)}" '
                    f'height="{h}" fill="{PALETTE[colour]}"/>'
                )
        if index % every == 0:
            out.append(
                f'<text x="{round(column + step * 0.35, 1)}" y="{height - bottom + 16}" '
                f'font-size="11" text-anchor="middle">{escape(label)}</text>'
            )
    out.append(f'<text x="4" y="{legend + 10}" font-size="11">{top}</text>')
    out.append("</svg>")
    return "".join(out)


_GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"),
    "%": ("101", "001", "010", "100", "101"),
    "/": ("001", "001", "010", "100", "100"),
    "-": ("000", "000", "111", "000", "000"),
}


class _Canvas:
    """An RGB raster with rectangles and a 3x5 digit font (scaled)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x: int, y: int, w: int, h: int, colour: str) -> None:
        rgb = bytes.fromhex(colour.lstrip("#"))
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0:
            return
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + (x1 - x0) * 3] = rgb * (x1 - x0)

    def text(self, x: int, y: int, text: str, scale: int = 2, colour: str = "#222222") -> None:
        for char in text:
            glyph = _GLYPHS.get(char)
            if glyph is not None:
                for gy, line in enumerate(glyph):
                    for gx, bit in enumerate(line):
                        if bit == "1":
                            self.rect(x + gx * scale, y + gy * scale, scale, scale, colour)
            x += 4 * scale

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[row * stride : (row + 1) * stride])
            for row in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


# (path, face index) of fonts with Simplified Chinese glyphs, in order of preference.
CJK_FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # Debian fonts-noto-cjk: SC
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("C:/Windows/Fonts/msyh.ttc", 0),
    ("C:/Windows/Fonts/simhei.ttf", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
)
LABEL_SIZE = 13
_MISSING = "\U000f0000"  # a private-use code point no font draws: what a missing glyph looks like


@lru_cache(maxsize=1)
def cjk_font() -> ImageFont.FreeTypeFont | None:
    """A font that draws Chinese, or None (see the module docstring for where it looks)."""
    configured = os.environ.get("DUBAN_CJK_FONT")
    candidates = [(configured, 0)] if configured else []
    for path, index in [*candidates, *CJK_FONTS]:
        if not Path(path).is_file():
            continue
        try:
            font = ImageFont.truetype(path, LABEL_SIZE, index=index)
        except OSError:
            continue
        if covers(font, "学会部普及部办公室绿黄红灯未评定"):
            return font
    return None


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    image = Image.new("L", (LABEL_SIZE * 2, LABEL_SIZE * 2), 0)
    ImageDraw.Draw(image).text((2, 0), char, font=font, fill=255)
    return image.tobytes()


def covers(font: ImageFont.FreeTypeFont, text: str) -> bool:
    """Whether `font` has a real glyph (not the missing-glyph box) for every character."""
    missing = _glyph(font, _MISSING)
    return all(char.isspace() or _glyph(font, char) != missing for char in set(text))


def labelled_png(chart: Chart, font: ImageFont.FreeTypeFont) -> bytes:
    """The chart with its Chinese labels drawn, as PNG bytes."""
    if chart.kind == "bar":
        row, left, right = 24, 170, 70
        image = Image.new("RGB", (WIDTH, 20 + row * len(chart.bars)), "white")
        draw = ImageDraw.Draw(image)
        top = max([100.0, *(v for _, v in chart.bars if v is not None)])
        span = WIDTH - left - right
        draw.line([(left, 5), (left, image.height - 5)], fill="#666666")
        for index, (label, value) in enumerate(chart.bars):
            y = 10 + index * row
            short = label if len(label) <= 12 else label[:11] + "…"
            draw.text((left - 6, y + 8), short, font=font, fill="#222222", anchor="rm")
            if value is None:
                draw.text((left + 6, y + 8), "无数据", font=font, fill="#666666", anchor="lm")
                continue
            width = round(span * max(value, 0.0) / top)
            draw.rectangle([left, y, left + width, y + 16], fill=BAR)
            draw.text(
                (left + width + 4, y + 8), fmt_pct(value), font=font, fill="#222222", anchor="lm"
            )
    else:
        height, bottom, legend = 260, 30, 24
        image = Image.new("RGB", (WIDTH, height), "white")
        draw = ImageDraw.Draw(image)
        for index, colour in enumerate(COLOURS):
            x = 40 + index * 90
            draw.rectangle([x, 4, x + 12, 16], fill=PALETTE[colour])
            draw.text((x + 16, 10), COLOUR_NAMES[colour], font=font, fill="#222222", anchor="lm")
        plot = height - bottom - legend
        top = max([1, *(sum(counts) for _, counts in chart.series)])
        step = (WIDTH - 50) / max(1, len(chart.series))
        every = max(1, len(chart.series) // 13)
        for index, (label, counts) in enumerate(chart.series):
            x = round(40 + index * step + step * 0.15)
            y = legend + plot
            for colour, count in zip(COLOURS, counts, strict=True):
                h = round(plot * count / top)
                if h:
                    draw.rectangle(
                        [x, y - h, x + max(1, round(step * 0.7)) - 1, y - 1], fill=PALETTE[colour]
                    )
                    y -= h
            if index % every == 0:
                centre = x + round(step * 0.35)
                draw.text(
                    (centre, height - bottom + 14), label, font=font, fill="#222222", anchor="mm"
                )
        draw.text((4, legend + 10), str(top), font=font, fill="#222222", anchor="lm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def labels_of(chart: Chart) -> str:
    """Every text the chart's PNG draws (its labels and the colour names)."""
    if chart.kind == "bar":
        shorts = (label if len(label) <= 12 else label[:11] + "…" for label, _ in chart.bars)
        return "".join(shorts) + "无数据%0123456789."
    return "".join(label for label, _ in chart.series) + "".join(COLOUR_NAMES.values())


def png(chart: Chart) -> bytes:
    """The chart as PNG bytes: labelled in Chinese when a font covers every label, else
    numbered 1, 2, … in order (see `png_legend`)."""
    font = cjk_font()
    if font is not None and covers(font, labels_of(chart)):
        return labelled_png(chart, font)
    return numbered_png(chart)


def numbered_png(chart: Chart) -> bytes:
    """The chart without any font for Chinese: bars numbered, the words in `png_legend`."""
    if chart.kind == "bar":
        row, left = 22, 40
        canvas = _Canvas(WIDTH, 20 + row * len(chart.bars))
        top = max([100.0, *(v for _, v in chart.bars if v is not None)])
        span = WIDTH - left - 90
        canvas.rect(left, 5, 1, canvas.height - 10, "#666666")
        for index, (_, value) in enumerate(chart.bars):
            y = 10 + index * row
            canvas.text(4, y + 3, str(index + 1))
            if value is None:
                canvas.text(left + 6, y + 3, "-")
                continue
            width = round(span * max(value, 0.0) / top)
            canvas.rect(left, y, width, 16, BAR)
            canvas.text(left + width + 6, y + 3, f"{value:.1f}%")
        return canvas.png()
    height, bottom = 220, 20
    plot = height - bottom - 10
    canvas = _Canvas(WIDTH, height)
    top = max([1, *(sum(counts) for _, counts in chart.series)])
    step = (WIDTH - 20) / max(1, len(chart.series))
    every = max(1, len(chart.series) // 8)
    for index, (label, counts) in enumerate(chart.series):
        x = round(10 + index * step + step * 0.15)
        y = 10 + plot
        for colour, count in zip(COLOURS, counts, strict=True):
            h = round(plot * count / top)
            y -= h
            canvas.rect(x, y, max(1, round(step * 0.7)), h, PALETTE[colour])
        if index % every == 0:
            canvas.text(x, height - bottom + 6, label)
    return canvas.png()


def png_legend(chart: Chart) -> str:
    """The words the PNG cannot show: what each numbered bar or colour is ("" when the PNG
    draws its own labels)."""
    font = cjk_font()
    if font is not None and covers(font, labels_of(chart)):
        return ""
    if chart.kind == "bar":
        return "注：" + "；".join(
            f"{index}. {label} {fmt_pct(value)}"
            for index, (label, value) in enumerate(chart.bars, start=1)
        )
    return (
        "注：横轴为各周末日期（月/日），柱高为任务数；颜色自下而上依次为"
        "绿色（绿灯）、黄色（黄灯）、红色（红灯）、灰色（未评定）。"
    )
