"""Plan reading and import at province scale: a ~1 MB plan of ~5,000 items.

Times `parse_plan_text` on the generated text (target < 1 s) and `import_plan` of the
result into a fresh SQLite database holding 500 departments (target < 10 s), then prints
the figures with the machine and library versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

CN = "一二三四五六七八九十"


def section_number(index: int) -> str:
    """Chinese section numeral for 1..99 (`一`, `十`, `十一`, `二十三`)."""
    tens, ones = divmod(index, 10)
    prefix = "" if tens == 0 else ("十" if tens == 1 else CN[tens - 1] + "十")
    return prefix + (CN[ones - 1] if ones else "")


def generate_plan(*, items: int = 5000, departments: int = 500, per_section: int = 100) -> str:
    """A plan text with `items` numbered items spread over sections, each with units and a
    target, naming departments `部门N` (some in traditional script, some with a 市 prefix)."""
    lines = ["某省督查室2030年重点工作任务分解", "", "某省人民政府办公厅", "2030年2月1日", ""]
    for number in range(1, items + 1):
        if (number - 1) % per_section == 0:
            lines.append(f"{section_number((number - 1) // per_section + 1)}、第{number}批重点任务")
        lead = f"部门{number % departments}"
        support = f"市部門{(number * 7) % departments}"
        lines.append(
            f"{number}.推进第{number}项重点工作落地见效。"
            f"组织开展专项活动不少于{number % 90 + 10}场次,"
            f"覆盖基层单位{number % 40 + 5}家以上,按季度报送进展。"
            f"（牵头单位：{lead}；配合单位：{support}）"
        )
    lines += [
        "",
        "（一）动员部署阶段（2月下旬—3月下旬）。",
        "（二）组织实施阶段（4月上旬至11月下旬）。",
    ]
    lines.append("（三）总结验收阶段（12月）。")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    return (
        f"{platform.platform()} | {platform.machine()} | CPUs: {os.cpu_count()} | "
        f"Python {platform.python_version()} | SQLAlchemy {version('sqlalchemy')} | "
        f"pydantic {version('pydantic')} | zhconv {version('zhconv')}"
    )


def _verdict(wall: float, cpu: float, limit: float) -> str:
    if wall < limit:
        return "OK"
    return "OK on CPU time; wall time slowed by load" if cpu < limit else "SLOW"


def main() -> None:
    """Run the benchmark and print figures against the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--departments", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(sys.argv[1:])

    from models.db import make_engine, make_sessionmaker, transaction, upgrade
    from models.directory_file import DepartmentEntry, DirectoryFile
    from models.plan_reader.document import parse_plan_text
    from tasks.directory import upsert_directory
    from tasks.plan_import import digest_bytes, import_plan

    load = os.getloadavg()[0]
    text = generate_plan(items=args.items, departments=args.departments)
    size_mb = len(text.encode()) / 1048576
    timings: list[float] = []
    cpu: list[float] = []
    parsed = None
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        parsed = parse_plan_text(text, source_name="bench.txt")
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    assert parsed is not None
    parse_s = statistics.median(timings)
    parse_cpu = statistics.median(cpu)
    assert len(parsed.items) == args.items, len(parsed.items)

    now = datetime(2030, 2, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        directory = DirectoryFile(
            departments=[
                DepartmentEntry(name=f"部门{n}", aliases=[f"部門{n}"])
                for n in range(args.departments)
            ]
        )
        with transaction(sessions) as session:
            upsert_directory(session=session, directory=directory, now=now)
        started, cpu_started = time.perf_counter(), time.process_time()
        with transaction(sessions) as session:
            outcome = import_plan(
                session=session,
                parsed=parsed,
                source_name="bench.txt",
                source_sha256=digest_bytes(text.encode()),
                now=now,
            )
        import_s = time.perf_counter() - started
        import_cpu = time.process_time() - cpu_started
        started = time.perf_counter()
        with transaction(sessions) as session:
            again = import_plan(
                session=session,
                parsed=parsed,
                source_name="bench.txt",
                source_sha256=digest_bytes(text.encode()),
                now=now,
            )
        reimport_s = time.perf_counter() - started
        engine.dispose()

    print("duban plan benchmark")
    print(f"machine: {_machine()}")
    print(f"load average at start: {load:.2f} (wall time includes waiting for other processes)")
    print(f"document: {size_mb:.2f} MB, {len(parsed.items)} items, {len(parsed.sections)} sections")
    verdict = _verdict(parse_s, parse_cpu, 1.0)
    print(
        f"parse (median of {args.repeat}): {parse_s:.3f} s wall, {parse_cpu:.3f} s CPU  "
        f"[target < 1 s: {verdict}]"
    )
    verdict = _verdict(import_s, import_cpu, 10.0)
    print(
        f"import into SQLite ({args.departments} departments, status {outcome.status}, "
        f"{len(outcome.unresolved)} unresolved units): {import_s:.3f} s wall, "
        f"{import_cpu:.3f} s CPU  [target < 10 s: {verdict}]"
    )
    print(f"re-import of the same document ({again.status}): {reimport_s:.3f} s")


if __name__ == "__main__":
    main()
