"""A relay in a child process for the kill tests: `python -m tests.integration.relay_child`.

Arguments: database URL, SMTP port, ISO time, mode, marker file. Mode `hang_before_commit`
replaces `mark_sent` so that, after the server's 250, the child writes the marker file and
hangs before committing; mode `plain` just relays. The test kills the child with SIGKILL.
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


def main() -> None:
    url, port, when, mode, marker = sys.argv[1:6]
    if mode == "hang_before_commit":

        def hang(**_: Any) -> bool:
            Path(marker).write_text("after 250", encoding="utf-8")
            time.sleep(120)
            return False

        outbox.mark_sent = hang  # type: ignore[assignment]
    sessions = make_sessionmaker(make_engine(url))
    settings = Settings(smtp_port=int(port), smtp_timeout_seconds=5)
    options = RelayOptions(batch_size=1, concurrency=1, lease=timedelta(minutes=1))
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
