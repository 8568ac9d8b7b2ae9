"""Files duban writes beside its database (reports, 督办单): whole or not at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path


def write_documents(directory: Path, documents: Sequence[tuple[Path, bytes]]) -> None:
    """Write each `(path, data)` of `directory` atomically: a temporary file beside it,
    mode 0644 whatever the umask, renamed over the path (no fsync), with few system calls:
    `directory` is created once, the temporary file is created with its final mode (changed
    only when the umask took bits away) and written with `os.write`. Creating and renaming
    files wait on the file system's journal, which a busy database keeps committing: a
    catch-up writes thousands of orders. The first error is raised; the files before it stay
    written, as before."""
    if not documents:
        return
    directory.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for path, data in documents:
        while True:
            temp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
            try:
                handle = os.open(temp, flags, 0o644)
                break
            except FileExistsError:
                continue
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view) :]
                if os.fstat(handle).st_mode & 0o7777 != 0o644:  # a umask took bits away
                    os.fchmod(handle, 0o644)
            finally:
                os.close(handle)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
