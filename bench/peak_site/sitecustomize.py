"""Bench only: record a process's peak memory at exit (put this directory on PYTHONPATH).

When `DUBAN_BENCH_PEAK_DIR` is set and the process has a key — `DUBAN_BENCH_PEAK_NAME`, or
`PREFECT__FLOW_RUN_ID`, which a Prefect process worker sets for each flow-run process — the
process writes its `VmHWM` (peak resident set, kB) at exit to `<dir>/<key>.<pid>.peak`.
Processes without a key (the workers themselves) write nothing. `bench.bench_distributed`
reads the files with `read_peaks`.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path


def _write(directory: str, key: str) -> None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                target = Path(directory) / f"{key}.{os.getpid()}.peak"
                target.write_text(line.split()[1] + "\n")
                return
    except OSError:
        return


def _install() -> None:
    directory = os.environ.get("DUBAN_BENCH_PEAK_DIR")
    key = os.environ.get("DUBAN_BENCH_PEAK_NAME") or os.environ.get("PREFECT__FLOW_RUN_ID")
    if directory and key:
        atexit.register(_write, directory, key)


_install()
