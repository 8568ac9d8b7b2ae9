"""A supervision pass in a child process: `python -m tests.faults.pass_child URL PLAN DAY MODE`.

Further arguments: marker file, start time (Unix seconds; the child waits until then, so two
children start together). Mode `plain` runs the pass, `reverse` runs its chunks last to
first (so two children meet in the middle); mode `slow` sleeps 20 ms before every
statement and writes the marker once its first chunk has committed, so the test can SIGKILL
it in the middle of the pass. Prints the number of new notices.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import event

from models.db import make_engine, make_sessionmaker
from tests.faults import scenario


def main() -> None:
    url, plan, day, mode, marker, start = sys.argv[1:7]
    engine = make_engine(url)
    if mode == "slow":

        def crawl(*_: Any) -> None:
            time.sleep(0.02)

        def committed(*_: Any) -> None:
            Path(marker).write_text("first chunk committed", encoding="utf-8")

        event.listen(engine, "before_cursor_execute", crawl)
        event.listen(engine, "commit", committed)
    time.sleep(max(0.0, float(start) - time.time()))
    sessions = make_sessionmaker(engine)
    new = scenario.run_pass(sessions, int(plan), date.fromisoformat(day), reverse=mode == "reverse")
    print(new, flush=True)


if __name__ == "__main__":
    main()
