"""Errors a user can fix: each names the file and line where it can, and what to do."""

from __future__ import annotations

from pathlib import Path


class DubanError(Exception):
    """Base of every error duban reports to a user as one line, without a traceback."""


class InputError(DubanError):
    """Bad input in a file: carries the path, the 1-based line (0 if unknown) and the reason."""

    def __init__(self, reason: str, *, path: Path | str | None = None, line: int = 0) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        """`file:line: reason` (Chinese reason), leaving out what is unknown."""
        where = self.path or ""
        if where and self.line:
            where = f"{where}:{self.line}"
        elif self.line:
            where = f"第{self.line}行"
        return f"{where}: {self.reason}" if where else self.reason


class NotFoundError(DubanError):
    """A plan, item, check-in or department named by the user does not exist."""
