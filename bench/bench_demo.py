"""The main job as a benchmark: `duban demo` in a fresh data dir, timed (target < 3 min).

Runs the installed `duban demo --reset` as a subprocess with its own data directory and form
port and prints the wall time, CPU time, peak memory, the lines it printed and where the time
went (the phases the demo records in `<data dir>/demo.json`) with the machine and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from notifications.sink import free_port


def main() -> None:
    """Run the demo once (or up to `--until`) and print its figures."""
    parser = argparse.ArgumentParser(prog="bench demo", description=__doc__)
    parser.add_argument("--until", default="2021-12-31", help="simulated end date")
    args = parser.parse_args(sys.argv[1:])
    duban = Path(sys.executable).parent / "duban"
    with tempfile.TemporaryDirectory(prefix="duban-bench-demo-") as data_dir:
        port = free_port()  # its own form port: another demo on the machine may hold 8765
        env = {
            **os.environ,
            "DUBAN_DATA_DIR": data_dir,
            "COLUMNS": "120",
            "DUBAN_PORTAL_PORT": str(port),
            "DUBAN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        completed = subprocess.run(  # noqa: S603
            [str(duban), "demo", "--reset", "--until", args.until],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        state_file = Path(data_dir) / "demo.json"
        phases = json.loads(state_file.read_text())["seconds"] if state_file.exists() else {}
    if completed.returncode != 0:
        print(completed.stdout[-3000:], completed.stderr[-3000:])
        raise SystemExit(f"duban demo failed with exit code {completed.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"date: {datetime.now(UTC):%Y-%m-%d}")
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "versions: "
        + ", ".join(f"{name} {version(name)}" for name in ("prefect", "sqlalchemy", "aiosmtplib"))
    )
    lines = len((completed.stdout + completed.stderr).splitlines())
    print(f"demo until {args.until}: wall {wall:.1f} s (target < 180 s), CPU {cpu:.1f} s")
    print(f"lines printed: {lines} (target < 60)")
    print(f"peak memory of the demo process: {after.ru_maxrss / 1024:.0f} MB")
    for phase, seconds in phases.items():
        print(f"  {phase}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
