"""Console output for the CLI: one plain-text console, styled lines, and a uniform way to fail.

Text from outside (department names, answers, extension reasons, file paths, plan titles)
reaches the supervisor's terminal as plain text: the consoles never interpret Rich markup
or emoji codes in a string (`[/x]` prints as `[/x]`), and every string they render, in a
table cell too, has its control characters escaped (`ESC[2J` prints as `\\x1b[2J`, an
OSC-8 hyperlink as its visible escape), so nothing typed into a form can clear the screen,
plant a link or move the cursor. Style comes only from code, through `line()`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.style import Style
from rich.text import Text

# C0 (except tab and line feed), DEL, C1, and the invisible direction and line controls
# that can make a terminal line read differently from its bytes.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with each control character replaced by a visible escape (`\\x1b`, `\\u202e`)."""

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(visible, text)


def plain_json(data: object) -> str:
    """`data` as indented JSON for the terminal: every control character \\u-escaped.

    `json.dumps` escapes C0 controls but, with `ensure_ascii=False`, leaves C1 controls and
    direction overrides raw; these become `\\u0085`-style escapes too (still valid JSON).
    """
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def plain(value: object) -> Text:
    """`value` as plain text for printing or a table cell: no markup, controls escaped."""
    return Text(escape_controls(str(value)))


def line(*parts: str | tuple[str, str]) -> Text:
    """One output line from parts: a string is plain text, `(text, style)` is styled text.

    Every part's text is plain (markup never parsed, controls escaped); only the style
    names given here in code (`"yellow"`, `"bold red"`) style it.
    """
    result = Text()
    for part in parts:
        if isinstance(part, tuple):
            text, style = part
            result.append(escape_controls(text), style=Style.parse(style))
        else:
            result.append(escape_controls(part))
    return result


class PlainConsole(Console):
    """A rich `Console` that treats every string as plain text with controls escaped."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("highlight", False)
        super().__init__(markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Plain `Text` for `text`: markup and emoji off whatever the caller asks."""
        kwargs["markup"] = False
        kwargs["emoji"] = False
        rendered: Text = super().render_str(escape_controls(text), **kwargs)
        return rendered


console = PlainConsole()
err_console = PlainConsole(stderr=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print `message` (plain text) as an error on stderr and exit with `code`."""
    err_console.print(line(("错误：", "bold red"), message), soft_wrap=True)
    sys.exit(code)
