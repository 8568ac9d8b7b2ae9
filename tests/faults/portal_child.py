"""The check-in portal under uvicorn in a child process, for the restart-during-POST test.

`python -m tests.faults.portal_child URL PORT MODE MARKER`: serves the portal on 127.0.0.1
with a fixed clock. Mode `hang_before_commit` writes the marker and blocks the POST when its
first commit (or savepoint release) begins; `hang_after_commit` does so right after the
POST's transaction committed, before any response. The test then SIGKILLs the process.
Mode `plain` just serves.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_sessionmaker
from models.settings import Settings
from portal import app as portal_app

SETTINGS = Settings(secret_key="s" * 40, public_url="http://portal.test", _env_file=None)
NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)


def main() -> None:
    url, port, mode, marker = sys.argv[1:5]
    sessions = make_sessionmaker(make_engine(url))

    def hang(*_: Any) -> None:
        Path(marker).write_text(mode, encoding="utf-8")
        time.sleep(120)

    if mode == "hang_before_commit":
        event.listen(sessions, "before_commit", hang)
    elif mode == "hang_after_commit":
        real = portal_app.transaction

        @contextmanager
        def commit_then_hang(factory: sessionmaker[Session]) -> Iterator[Session]:
            with real(factory) as session:
                yield session
            hang()

        portal_app.transaction = commit_then_hang  # type: ignore[assignment]
    app = portal_app.create_app(SETTINGS, sessions, now=lambda: NOW, publish=lambda *_: 0)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
