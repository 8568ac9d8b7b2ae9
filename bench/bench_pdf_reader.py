"""Time and peak memory of reading PDFs, ordinary and hostile.

    python -m bench pdf_reader [--pages 10,100,500] [--bomb-mb 1024]

Each PDF is read with `read_plan_file` (which reads a PDF in a forked child capped in memory
and time) from a fresh process, so the peak printed is that read's own (the larger of the
process and its PDF child). Cases: text PDFs of N pages (one numbered line per row), a
600-page PDF (over the 500-page limit) and a stream bomb that unpacks to `--bomb-mb` MB.
Prints the machine, the load and the library versions beside the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from importlib.metadata import version
from pathlib import Path

from tests.hostile.pdf_bomb import write_pdf_bomb

READ = """
import resource, sys
from pathlib import Path
from models.errors import InputError
from models.plan_reader.document import read_plan_file
try:
    plan = read_plan_file(Path(sys.argv[1]), default_year=2030)
    outcome = f"{len(plan.items)} items"
except InputError as exc:
    outcome = "refused: " + exc.reason[:40]
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(max(own, child), outcome)
"""


def write_text_pdf(path: Path, pages: int, lines: int = 40) -> Path:
    """A PDF of `pages` pages of numbered lines in a standard font."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    number = 1
    for _ in range(pages):
        rows = []
        for row in range(lines):
            text = f"{number}. Item {number} of the plan, report every quarter."
            rows.append(f"BT /F1 10 Tf 56 {800 - row * 18} Td ({text}) Tj ET")
            number += 1
        stream = zlib.compress("\n".join(rows).encode())
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream"
        )
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % index + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def _read(path: Path) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", READ, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        return seconds, 0, "crashed: " + result.stderr.strip().splitlines()[-1][:60]
    peak, outcome = result.stdout.strip().split(" ", 1)
    return seconds, int(peak), outcome


def main() -> None:
    """Print one line per case: size on disk, wall seconds, peak MB, outcome."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="10,100,500")
    parser.add_argument("--bomb-mb", type=int, default=1024)
    args = parser.parse_args(sys.argv[1:])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" load {os.getloadavg()[0]:.2f}; pdfplumber {version('pdfplumber')},"
        f" pdfminer.six {version('pdfminer.six')}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cases = [
            (f"text, {n} pages", write_text_pdf(folder / f"p{n}.pdf", int(n)))
            for n in args.pages.split(",")
        ]
        cases.append(("text, 600 pages (over the limit)", write_text_pdf(folder / "big.pdf", 600)))
        cases.append(
            (
                f"stream bomb, {args.bomb_mb} MB unpacked",
                write_pdf_bomb(folder / "bomb.pdf", size=args.bomb_mb << 20),
            )
        )
        print(f"{'case':38} {'file':>9} {'seconds':>8} {'peak MB':>8}  outcome")
        for name, path in cases:
            seconds, peak_kb, outcome = _read(path)
            size = path.stat().st_size / 1024
            print(f"{name:38} {size:8.0f}k {seconds:8.2f} {peak_kb / 1024:8.0f}  {outcome}")


if __name__ == "__main__":
    main()
