"""Bytes to text: detect the encoding of a plain-text plan, refuse what is not text.

UTF-8 (with or without BOM), UTF-16 and UTF-32 (with or without BOM), GBK, GB18030 and Big5.
Where two legacy encodings both decode the bytes (Big5 bytes are often valid GBK), the one
whose text is made of common Chinese characters wins, so Big5 is not read as GBK mojibake.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import InputError

MAX_BYTES = 20 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"BM", "BMP 图片"),
    (b"%PDF", "PDF 文件"),
    (b"PK\x03\x04", "ZIP 压缩包"),
    (b"\xd0\xcf\x11\xe0", "旧版 Office 文件（.doc/.xls），请另存为 .docx/.xlsx"),
    (b"\x7fELF", "可执行文件"),
    (b"\x1f\x8b", "gzip 压缩文件"),
    (b"Rar!", "RAR 压缩包"),
)


# The most frequent characters of Chinese text (simplified; traditional text is compared after
# conversion), plus ASCII and common punctuation, make the "plausible text" score.
_COMMON = set(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
    "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两"
    "体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线"
    "内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并"
    "提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见"
    "计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七"
    "海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场"
    "身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广"
    "石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办"
    "青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江"
    "型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严协科普牵头配"
    "，。、；：？！“”‘’（）《》【】—…·"
)
_SAMPLE_CHARS = 4000


def plausibility(text: str) -> float:
    """Share of the first characters that are ASCII text, whitespace or common Chinese."""
    sample = text[:_SAMPLE_CHARS]
    if not sample:
        return 0.0
    from models.department_match import simplified

    converted = simplified(sample) if any(ord(ch) > 0x2E7F for ch in sample) else sample
    good = sum(1 for ch in converted if (" " <= ch <= "~") or ch in "\t\n\r" or ch in _COMMON)
    return good / max(len(converted), 1)


@dataclass(frozen=True)
class DecodedText:
    """Text and the name of the encoding it was decoded with."""

    text: str
    encoding: str


def sniff_binary(data: bytes) -> str | None:
    """Name the kind of a known binary format from its leading bytes, else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            if magic == b"BM" and len(data) > 2 and data[2:3].isascii() and data[2:3].isalpha():
                continue
            return kind
    return None


def _control_ratio(text: str) -> float:
    sample = text[:65536]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    return bad / len(sample)


def decode_text(data: bytes, *, source_name: str = "") -> DecodedText:
    """Decode a plain-text plan, naming the encoding used.

    Tries UTF-8 with BOM, UTF-16 with BOM, UTF-8, GBK then GB18030; raises `InputError` for
    empty, oversized or binary input (images, archives, NUL bytes) and undecodable bytes.
    """
    if not data.strip():
        raise InputError("文件为空，没有可读取的内容", path=source_name or None)
    if len(data) > MAX_BYTES:
        raise InputError(
            f"文件过大（{len(data) / 1048576:.1f} MB），上限为 {MAX_BYTES // 1048576} MB",
            path=source_name or None,
        )
    kind = sniff_binary(data)
    if kind is not None:
        raise InputError(f"这是{kind}，不是文本计划文档", path=source_name or None)
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            return _finish(_strict(data[len(bom) :], codec, source_name), name, source_name)
    if b"\x00" in data[:65536]:
        return _finish(_wide(data, source_name), "", source_name)
    text = _strict(data, "utf-8", None)
    if text is not None:
        return _finish(text, "UTF-8", source_name)
    best: tuple[float, str, str] | None = None
    for codec, name in (("gbk", "GBK"), ("gb18030", "GB18030"), ("big5", "Big5")):
        decoded = _strict(data, codec, None)
        if decoded is None or (name == "GB18030" and best is not None and best[2] == "GBK"):
            continue
        score = plausibility(decoded)
        if best is None or score > best[0] + 0.05:
            best = (score, decoded, name)
    if best is None:
        raise InputError(
            "无法识别文件编码（支持 UTF-8、UTF-16、UTF-32、GBK、GB18030、Big5）",
            path=source_name or None,
        )
    return _finish(best[1], best[2], source_name)


_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8", "UTF-8-BOM"),
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)


def _strict(data: bytes, codec: str, source_name: str | None) -> str | None:
    """`data` decoded strictly; None on failure, or `InputError` when `source_name` is given."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if source_name is None:
            return None
        raise InputError(
            f"文件编码不是声明的 {codec.upper()}（第 {exc.start} 字节无法解码）",
            path=source_name or None,
        ) from exc


def _wide(data: bytes, source_name: str) -> tuple[str, str]:
    """Text with NUL bytes: UTF-32 or UTF-16 without BOM (the most plausible), else binary."""
    best: tuple[float, str, str] | None = None
    for codec, name, width in (
        ("utf-32-le", "UTF-32LE", 4), ("utf-32-be", "UTF-32BE", 4),
        ("utf-16-le", "UTF-16LE", 2), ("utf-16-be", "UTF-16BE", 2),
    ):  # fmt: skip
        if len(data) % width:
            continue
        decoded = _strict(data, codec, None)
        if decoded is None:
            continue
        score = plausibility(decoded)
        if best is None or score > best[0]:
            best = (score, decoded, name)
    if best is None or best[0] < 0.6:
        raise InputError("文件含有二进制数据，不是文本计划文档", path=source_name or None)
    return best[1], best[2]


def _finish(text: str | tuple[str, str] | None, name: str, source_name: str) -> DecodedText:
    if isinstance(text, tuple):
        text, name = text
    if text is None:
        raise InputError("无法识别文件编码", path=source_name or None)
    if _control_ratio(text) > 0.01:
        raise InputError("文件含有二进制数据，不是文本计划文档", path=source_name or None)
    return DecodedText(text=text.replace("\r\n", "\n").replace("\r", "\n"), encoding=name)
