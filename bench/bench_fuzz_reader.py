"""Fuzz the plan reader: mutated .txt, .docx, .xlsx and .yaml files, each read in a worker
process with a time limit; reports crashes, hangs and peak memory.

    python -m bench fuzz_reader [--inputs 10000] [--seconds 3600] [--hang 10] [--seed 1]

A crash is any exception other than `InputError` (the reader's one-line refusal); a hang is an
input the worker has not finished within `--hang` seconds (the worker is killed and
restarted). Peak memory is the worker's maximum resident set size. Inputs are made from the
seed documents in `../shared/seeds` (or a built-in plan) by byte flips, truncation, splicing,
repetition of a chunk (blow-up) and insertion of hostile tokens; Office files are mutated both
as raw bytes and in their XML before re-zipping. Bounded by `--inputs` and `--seconds`.
Exits non-zero when a crash or a hang was found.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import random
import resource
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
FALLBACK = (
    "某市科协2030年工作要点\n一、党建\n1.学习理论。不少于12次。（牵头部室：办公室；配合单位：学会部）\n"
    "(一)动员部署阶段(3月下旬5月上旬)。\n八项行动是:\n(一)行动。5家以上\n學(xué)會(huì)\n"
)
TOKENS = [
    "1", "一", "（牵头单位：", "；配合单位：", "、", "。", "\n", "\r", "\x00", "(一)", "一、",
    "3月下旬", "不少于", "5%", "“", "等", " ", "\u2028", "\ufeff", "2021年", "：", "〔", "】",
]  # fmt: skip


def _seed_texts() -> list[str]:
    if SEEDS.is_dir():
        return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    return [FALLBACK]


def _docx_bytes(text: str) -> bytes:
    import docx

    document = docx.Document()
    for line in text.splitlines()[:400]:
        document.add_paragraph("".join(ch for ch in line if ch.isprintable()))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _xlsx_bytes(text: str) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["某市2030年重点任务分工表"])
    sheet.append(["序号", "工作任务", "牵头单位", "配合单位", "完成时限"])
    for index, line in enumerate(text.splitlines()[:200], start=1):
        clean = "".join(ch for ch in line if ch.isprintable())
        sheet.append([index, clean, "办公室", "学会部", "6月底前"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _yaml_bytes(text: str) -> bytes:
    import yaml

    from models.errors import InputError
    from models.plan_reader.document import parse_plan_text

    try:
        plan = parse_plan_text(text, source_name="seed.txt", default_year=2030)
    except InputError:
        return b"title: x\nyear: 2030\nitems: [{number: '1', title: t}]\n"
    return yaml.safe_dump(plan.contract(), allow_unicode=True).encode()


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(6)
        at = rng.randrange(max(len(out), 1))
        if kind == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del out[at : at + rng.randint(1, 64)]
        elif kind == 2:
            out[at:at] = rng.choice(TOKENS).encode() * rng.randint(1, 2000)
        elif kind == 3 and out:
            chunk = bytes(out[at : at + rng.randint(1, 200)])
            out[at:at] = chunk * rng.randint(2, 3000)
        elif kind == 4:
            del out[rng.randrange(len(out) + 1) :]
        else:
            other = rng.randrange(max(len(out), 1))
            out[at:at] = out[other : other + rng.randint(1, 500)]
    return bytes(out[: 22 * 1024 * 1024])


def _mutate_zip(data: bytes, rng: random.Random) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    names = sorted(parts)
    target = rng.choice([n for n in names if n.endswith(".xml")] or names)
    parts[target] = _mutate_bytes(parts[target], rng)
    if rng.random() < 0.1:
        del parts[rng.choice(names)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def make_input(corpus: dict[str, list[bytes]], rng: random.Random) -> tuple[str, bytes]:
    """One mutated input: (suffix, bytes)."""
    suffix = rng.choice(sorted(corpus))
    base = rng.choice(corpus[suffix])
    if suffix in {".docx", ".xlsx"} and rng.random() < 0.7:
        return suffix, _mutate_zip(base, rng)
    if suffix == ".txt" and rng.random() < 0.2:
        codec = rng.choice(["gb18030", "big5", "utf-16-le", "utf-32", "utf-16"])
        base = base.decode("utf-8", "replace").encode(codec, "ignore")
    return suffix, _mutate_bytes(base, rng)


def _worker(conn: Connection, folder: str) -> None:
    from models.errors import InputError
    from models.plan_reader.document import read_plan_file

    while True:
        job = conn.recv()
        if job is None:
            return
        suffix, data = job
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        started = time.perf_counter()
        outcome = "ok"
        detail = ""
        try:
            read_plan_file(path, default_year=2030)
        except InputError as exc:
            outcome = "refused"
            detail = str(exc).splitlines()[0] if str(exc) else ""
            if "\n" in str(exc):
                outcome, detail = "crash", f"multi-line message: {exc!r}"
        except Exception as exc:  # the fuzzer's job is to find these
            outcome = "crash"
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        conn.send((outcome, detail, time.perf_counter() - started, peak))


@dataclass
class Report:
    """Counts and findings of one fuzz run."""

    inputs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    peak_mb: int = 0
    slowest: float = 0.0


def run(*, inputs: int, seconds: float, hang: float, seed: int, keep: Path | None) -> Report:
    """Fuzz for at most `inputs` inputs or `seconds` seconds; returns the report."""
    rng = random.Random(seed)
    texts = _seed_texts()
    corpus = {
        ".txt": [t.encode() for t in texts],
        ".docx": [_docx_bytes(t) for t in texts[:3]],
        ".xlsx": [_xlsx_bytes(t) for t in texts[:3]],
        ".yaml": [_yaml_bytes(t) for t in texts[:3]],
    }
    report = Report()
    context = multiprocessing.get_context("spawn")
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as folder:

        def start() -> tuple[multiprocessing.process.BaseProcess, Connection]:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, folder), daemon=True)
            process.start()
            return process, parent

        process, conn = start()
        while report.inputs < inputs and time.monotonic() < deadline:
            suffix, data = make_input(corpus, rng)
            report.inputs += 1
            conn.send((suffix, data))
            if not conn.poll(hang):
                process.kill()
                process.join()
                report.hangs.append(f"#{report.inputs} {suffix} {len(data)} bytes")
                _keep(keep, report.inputs, suffix, data)
                report.outcomes["hang"] = report.outcomes.get("hang", 0) + 1
                process, conn = start()
                continue
            outcome, detail, elapsed, peak = conn.recv()
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            report.peak_mb = max(report.peak_mb, peak)
            report.slowest = max(report.slowest, elapsed)
            if outcome == "crash":
                report.crashes.append(f"#{report.inputs} {suffix}: {detail}")
                _keep(keep, report.inputs, suffix, data)
            if peak > 400:
                process.kill()
                process.join()
                process, conn = start()
        conn.send(None)
        process.join(timeout=10)
    return report


def _keep(folder: Path | None, number: int, suffix: str, data: bytes) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"finding-{number}{suffix}").write_bytes(data)


def main() -> None:
    """Parse arguments, fuzz, print the figures with the machine; non-zero on findings."""
    parser = argparse.ArgumentParser(prog="bench fuzz_reader", description=__doc__)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--hang", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="folder for crashing inputs")
    args = parser.parse_args(sys.argv[1:])
    started = time.perf_counter()
    report = run(
        inputs=args.inputs, seconds=args.seconds, hang=args.hang, seed=args.seed, keep=args.keep
    )
    elapsed = time.perf_counter() - started
    print(
        f"{platform.platform()} | CPUs {os.cpu_count()} | Python {platform.python_version()} | "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"inputs {report.inputs} in {elapsed:.0f} s (seed {args.seed})")
    print(f"outcomes {dict(sorted(report.outcomes.items()))}")
    print(f"crashes {len(report.crashes)} | hangs (> {args.hang:g} s) {len(report.hangs)}")
    print(f"slowest input {report.slowest:.2f} s | peak worker memory {report.peak_mb} MB")
    for line in report.crashes[:20] + report.hangs[:20]:
        print("  ", line)
    if report.crashes or report.hangs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
