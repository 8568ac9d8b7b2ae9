"""Start `tests.faults.pass_child` processes with a shared start time and their own logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start_pass(
    url: str, plan_id: int, day: date, mode: str, workdir: Path, *, start_at: float = 0.0
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a pass child; returns the process and its log path (marker is `workdir/marker`)."""
    log_path = workdir / f"pass-{mode}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "tests.faults.pass_child",
                url,
                str(plan_id),
                day.isoformat(),
                mode,
                str(workdir / "marker"),
                str(start_at),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path
