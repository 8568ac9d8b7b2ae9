"""Target phrases -> `ParsedTarget`: a number with its measure word or `%` and its qualifier.

`不少于200场次` is (ge, 200, 场次); `5家以上` (ge, 5, 家); `6.2%左右` (approx, 6.2, %);
`力争建成6家` is (eq, 6, 家) with text `6家`. Durations, ages, dates, ordinals, numbers in
quotes and numbers inside names (`121人才梯队`, `“三长”`) are not targets.
"""

from __future__ import annotations

import re

from models.plan_schema import Comparator, ParsedTarget

_UNITS = sorted(
    (
        "万人次 人次 场次 場次 场(次) 場(次) 批次 期次 户次 门次 课时 学时 个百分点 百分点 平方米 "
        "公里 万元 亿元 億元 元 项 項 个 個 家 场 場 次 名 人 位 篇 期 所 座 处 處 件 份 条 條 "
        "支 户 戶 村 站 台 臺 套 本 册 冊 部 种 種 类 類 节 節 堂 天 小时 亩 畝 吨 噸 % ‰ 万"
    ).split(),
    key=len,
    reverse=True,
)
_UNIT_RE = "|".join(re.escape(unit) for unit in _UNITS)
_CN_DIGITS = "零〇一二两兩三四五六七八九十百千万萬亿億"
_PREFIX = (
    "不少于|不少於|不低于|不低於|至少|不超过|不超過|不高于|不多于|多于|超过|超過|高于|少于|低于|"
    "约|約|近|控制在"
)
_SUFFIX = "及以上|以上|以下|以内|以內|左右|上下"
# Linear on any input: the number never starts inside a run of digits or numerals (the
# lookbehind), digits are possessive, and a Chinese numeral is at most 12 characters, so a
# long run of `1` or `一` is tried once, not once per position.
_TARGET = re.compile(
    rf"(?=[不至超多高少低约約近控\d{_CN_DIGITS}])(?P<prefix>{_PREFIX})?(?<![\d{_CN_DIGITS}])"
    rf"(?P<num>\d++(?:\.\d++)?+(?:[万萬千亿億])?|[{_CN_DIGITS}]{{1,12}})"
    rf"(?P<unit>{_UNIT_RE})(?P<suffix>{_SUFFIX})?"
)
MAX_TARGETS = 200
_BAD_AFTER = {
    "人": "才员員民群大口士物社工",
    "名": "单單称稱片牌城村镇鎮师師家人",
    "家": "庭园園长長乡鄉属屬",
    "部": "门門署分室长長",
    "条": "例件",
    "條": "例件",
    "本": "领領地级級",
    "期": "间間刊",
    "站": "点點",
    "台": "账賬",
    "节": "点點",
    "次": "会會",
    "所": "属屬有",
    "处": "室",
    "种": "类植",
    "类": "型",
    "支": "部撑持",
    "个": "月人",
    "個": "月人",
    "万": "元人",
    "天": "内內",
}
_SCOPE = re.compile("(?:围绕|圍繞|针对|針對|聚焦|依托|按照|第|前|近年)$")
_CN_VALUES = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000, "萬": 10000, "亿": 10**8, "億": 10**8}
_MULTIPLIER = {"万": 1e4, "萬": 1e4, "千": 1e3, "亿": 1e8, "億": 1e8}


def chinese_number(text: str) -> int | None:
    """Value of a Chinese numeral (`十二`, `两百`, `三万五千`), or None if it is not one."""
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in "零〇" and digit is None:
            continue
        if ch in _CN_VALUES:
            if digit is not None:
                return None
            digit = _CN_VALUES[ch]
        elif ch in _CN_UNITS:
            factor = _CN_UNITS[ch]
            if factor >= 10000:
                total = (total + section + (digit or 0)) * factor
                section = 0
            else:
                section += (1 if digit is None else digit) * factor
            digit = None
        else:
            return None
    return total + section + (digit or 0)


def _comparator(prefix: str, suffix: str) -> Comparator:
    if prefix in {"不少于", "不少於", "不低于", "不低於", "至少"} or suffix in {"以上", "及以上"}:
        return "ge"
    if prefix in {"超过", "超過", "多于", "高于"}:
        return "gt"
    if prefix in {"不超过", "不超過", "不高于", "不多于", "控制在"} or suffix in {
        "以下",
        "以内",
        "以內",
    }:
        return "le"
    if prefix in {"少于", "低于"}:
        return "lt"
    if prefix in {"约", "約", "近"} or suffix in {"左右", "上下"}:
        return "approx"
    return "eq"


class _Quotes:
    """Whether a position is inside quotes, scanning the text once from left to right."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.curly = 0
        self.straight = 0
        self.corner = 0

    def inside(self, position: int) -> bool:
        segment = self.text[self.position : position]
        self.curly += segment.count("“") - segment.count("”")
        self.straight += segment.count('"')
        self.corner += segment.count("「") - segment.count("」")
        self.position = position
        return self.curly > 0 or self.straight % 2 == 1 or self.corner > 0


def find_targets(text: str, *, anywhere: bool = False) -> list[ParsedTarget]:
    """Every target phrase in `text`, in order, each with its verbatim text.

    With `anywhere` (a phrase written by hand) scope words and name heuristics are skipped.
    At most `MAX_TARGETS` are returned. Linear in the length of `text`.
    """
    found: list[ParsedTarget] = []
    quotes = _Quotes(text)
    for match in _TARGET.finditer(text):
        if len(found) >= MAX_TARGETS:
            break
        prefix = match.group("prefix") or ""
        suffix = match.group("suffix") or ""
        number, unit = match.group("num"), match.group("unit")
        start, end = match.start("num"), match.end()
        chinese = not number[0].isdigit()
        if chinese:
            value: float | None = chinese_number(number)
            if value is None or not (prefix or suffix):
                continue
        else:
            base = number.rstrip("万萬千亿億")
            value = float(base) * _MULTIPLIER.get(number[len(base) :], 1.0)
        if unit == "万" and not chinese:
            continue
        if not anywhere:
            before = text[max(0, start - 3) : start]
            if start and (text[start - 1].isdigit() or text[start - 1] in ".-—~～/:："):
                continue
            if not prefix and _SCOPE.search(before):
                continue
            if quotes.inside(start):
                continue
            following = text[end : end + 1] if not suffix else ""
            if following and following in _BAD_AFTER.get(unit, ""):
                continue
            if following in {"年", "月", "日", "岁", "歲", "周"}:
                continue
        text_value = (prefix + number + unit + suffix) if prefix else match.group(0)
        clean_unit = unit.replace("(", "").replace(")", "")
        found.append(
            ParsedTarget.model_construct(
                text=text_value,
                comparator=_comparator(prefix, suffix),
                value=float(value),
                unit=clean_unit,
            )
        )
    return found
