"""`python -m bench [NAME [ARGS…] | NAME NAME…]`: run one benchmark, several, or all of them.

Every `bench/bench_*.py` module with a `main()` is registered automatically; each parses
its own arguments from `sys.argv[1:]`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path


def registry() -> dict[str, Callable[[], None]]:
    """Benchmark name -> its `main`, for every `bench_*.py` next to this file."""
    found: dict[str, Callable[[], None]] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("bench_"):
            loaded = importlib.import_module(f"bench.{module.name}")
            entry = getattr(loaded, "main", None)
            if callable(entry):
                found[module.name.removeprefix("bench_")] = entry
    return found


def run() -> None:
    """Run the benchmark named by the first argument, or every benchmark in turn.

    Turns off the telemetry heartbeat of the Prefect servers the benchmarks start (as the
    CLI does, `duban/runtime.py`): on SQLite under load it logs "database is locked"
    tracebacks that are not the benchmark's.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    benches = registry()
    args = sys.argv[1:]
    if args and args[0] in {"-h", "--help"}:
        print("usage: python -m bench [" + "|".join(sorted(benches)) + "] [ARGS…]")
        return
    if len(args) > 1 and all(arg in benches for arg in args):
        for name in args:
            print(f"== {name}")
            sys.argv = [f"bench {name}"]
            benches[name]()
        return
    if args and args[0] in benches:
        sys.argv = [f"bench {args[0]}", *args[1:]]
        benches[args[0]]()
        return
    if args:
        raise SystemExit(f"unknown benchmark {args[0]!r}; known: {', '.join(sorted(benches))}")
    for name, entry in sorted(benches.items()):
        print(f"== {name}")
        sys.argv = [f"bench {name}"]
        entry()


if __name__ == "__main__":
    run()
