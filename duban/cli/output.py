"""Console output for the CLI: one rich console, and a uniform way to fail."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print `message` as an error on stderr and exit with `code`."""
    err_console.print(f"[bold red]错误：[/]{message}", markup=True, soft_wrap=True)
    sys.exit(code)
