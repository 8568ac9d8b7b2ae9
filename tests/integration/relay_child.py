"""A relay in a child process for the kill tests: `python -m tests.integration.relay_child`.

Arguments: database URL, SMTP port, ISO time, mode, marker file. Mode `hang_before_commit`
replaces the marking of accepted rows so that, after the server's 250, the child writes the
marker file and hangs before committing (one row at a time); mode `hang_window` does the
same with four connections and a duplicate window of `WINDOW` rows, so the relay keeps
sending until the window is full; mode `hang_default_window` does the same at the relay's
default settings (its connections, batches and window); mode `plain` just relays. The test
kills the child with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from models.db import make_engine, make_sessionmaker
from models.settings import Settings
from notifications import outbox
from notifications.relay import RelayOptions, relay_once

WINDOW = 5


def main() -> None:
    url, port, when, mode, marker = sys.argv[1:6]
    if mode in ("hang_before_commit", "hang_window", "hang_default_window"):

        def hang(**_: Any) -> bool:
            Path(marker).write_text("after 250", encoding="utf-8")
            time.sleep(120)
            return False

        outbox.mark_sent = hang  # type: ignore[assignment]
        outbox.mark_sent_many = hang  # type: ignore[assignment]
    sessions = make_sessionmaker(make_engine(url))
    settings = Settings(smtp_port=int(port), smtp_timeout_seconds=5)
    options = RelayOptions(batch_size=1, concurrency=1, lease=timedelta(minutes=1))
    if mode == "hang_window":
        # batches of 4 < 20 rows: the window must hold across streamed batches too
        options = RelayOptions(
            batch_size=4, concurrency=4, window=WINDOW, lease=timedelta(minutes=1)
        )
    if mode == "hang_default_window":
        options = RelayOptions(lease=timedelta(minutes=1))
    asyncio.run(
        relay_once(
            sessions=sessions,
            settings=settings,
            now=datetime.fromisoformat(when),
            options=options,
        )
    )


if __name__ == "__main__":
    main()
