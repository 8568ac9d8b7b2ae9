"""Time per MB of the plan reader on hostile and ordinary text, from 100 kB to 10 MB.

    python -m bench reader_scaling [--sizes 0.1,1,10] [--cases all] [--timeout 120]

Each case is generated at each size and read with `parse_plan_text` in a child process that
is stopped after `--timeout` seconds; a linear reader shows a flat seconds-per-MB column (a
refusal at a documented limit is shown as such, with its time). Prints the machine, the
load and the library versions beside the figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

HEAD = "某市科协2030年工作要点\n"


def _rep(token: str, size: int) -> str:
    return token * max(1, size // len(token.encode()))


def _ordinary(size: int) -> str:
    """A real-looking plan: items of ~1 kB with units, targets and a few body lines."""
    body = "组织开展专项活动不少于20场次，覆盖基层单位5家以上，按季度报送进展。" * 8
    item = "{n}.推进第{n}项重点工作落地见效。" + body + "\n（牵头单位：学会部；配合单位：普及部）\n"
    count = max(1, size // len(item.format(n=1).encode()))
    return HEAD + "".join(item.format(n=n) for n in range(1, count + 1))


CASES: dict[str, Callable[[int], str]] = {
    "ordinary plan": _ordinary,
    "digits in one item": lambda n: HEAD + "1." + "1" * n,
    "（牵头单位：学会部 repeated": lambda n: HEAD + "1.工作。" + _rep("（牵头单位：学会部", n),
    "one item, many lines": lambda n: HEAD + "1.标题。\n" + _rep("正文内容第几行\n", n),
    "numbered lines": lambda n: (
        HEAD + "".join(f"{i}.做好第{i}项工作。\n" for i in range(1, n // 24 + 2))
    ),
    "chinese numerals": lambda n: HEAD + "1.不少于" + _rep("一", n),
}


def _child(name: str, size: int, queue: multiprocessing.Queue[tuple[str, float, int]]) -> None:
    from models.errors import InputError
    from models.plan_reader.document import parse_plan_text

    text = CASES[name](size)
    started = time.perf_counter()
    try:
        plan = parse_plan_text(text, source_name="bench.txt", default_year=2030)
        outcome = f"{len(plan.items)} items"
    except InputError as exc:
        outcome = f"refused: {exc.reason[:30]}"
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    queue.put((outcome, elapsed, peak))


def main() -> None:
    """Run every case at every size; print seconds per MB and peak memory."""
    parser = argparse.ArgumentParser(prog="bench reader_scaling", description=__doc__)
    parser.add_argument("--sizes", default="0.1,1,10", help="sizes in MB, comma-separated")
    parser.add_argument("--cases", default="all")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(sys.argv[1:])
    sizes = [float(s) for s in args.sizes.split(",")]
    names = list(CASES) if args.cases == "all" else args.cases.split(",")
    print(
        f"{platform.platform()} | CPUs {os.cpu_count()} | Python {platform.python_version()} | "
        f"pydantic {version('pydantic')} | load {os.getloadavg()[0]:.2f}"
    )
    context = multiprocessing.get_context("spawn")
    print(f"{'case':32s} {'MB':>6s} {'s':>8s} {'s/MB':>8s} {'peak MB':>8s}  outcome")
    for name in names:
        for mb in sizes:
            queue: multiprocessing.Queue[tuple[str, float, int]] = context.Queue()
            process = context.Process(target=_child, args=(name, int(mb * 1_000_000), queue))
            process.start()
            process.join(args.timeout)
            if process.is_alive():
                process.kill()
                process.join()
                print(
                    f"{name:32s} {mb:6.1f} {'>' + str(int(args.timeout)):>8s} {'':8s} {'':8s}  hang"
                )
                break
            outcome, elapsed, peak = queue.get()
            print(f"{name:32s} {mb:6.1f} {elapsed:8.2f} {elapsed / mb:8.2f} {peak:8d}  {outcome}")


if __name__ == "__main__":
    main()
