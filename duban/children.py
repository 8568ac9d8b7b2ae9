"""Child processes that `duban serve` keeps running: each in its own process group, restarted
with back-off when it dies, and stopped with its whole group (and any descendant that left
it) so that nothing outlives the parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
STABLE_AFTER_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


def backoff_seconds(failures: int) -> float:
    """Delay before restart number `failures` (1, 2, 4, … seconds, at most one minute)."""
    if failures <= 0:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1)))


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (read from /proc; empty where /proc is missing)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """True if a process `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return state != "Z"


def stop_process_group(
    process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """End the process group led by `process`: SIGTERM, then SIGKILL after `timeout` s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@dataclass
class Child:
    """One supervised command: its argv, environment and log file, and its current process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    failures: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    tree: set[int] = field(default_factory=set)

    def start(self, now: float) -> None:
        """Start the command in a new session (its own process group), output to the log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = now
        self.restart_at = None

    def running(self) -> bool:
        """True while the current process has not exited."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM the process group and every known descendant; SIGKILL what is left."""
        if self.process is None:
            return
        self.tree |= descendants(self.process.pid)
        stop_process_group(self.process, timeout)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in self.tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.tree:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self.tree.clear()


@dataclass
class Children:
    """Keeps a list of `Child` running: `poll()` restarts the dead ones with back-off."""

    children: list[Child]
    report: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic

    def start(self, child: Child) -> None:
        """Start `child` now."""
        child.start(self.clock())

    def poll(self) -> None:
        """Schedule a restart for each child that exited; start those whose delay is over."""
        now = self.clock()
        for child in self.children:
            if child.process is None:
                continue
            if child.restart_at is None and not child.running():
                code = child.process.returncode
                stable = now - child.started_at >= STABLE_AFTER_SECONDS
                child.failures = 1 if stable else child.failures + 1
                delay = backoff_seconds(child.failures)
                child.restart_at = now + delay
                child.tree |= descendants(child.process.pid)
                self.report(
                    f"{child.name}已退出（退出码 {code}），{delay:g} 秒后重启"
                    f"（日志：{child.log_path}）"
                )
            elif child.restart_at is not None and now >= child.restart_at:
                child.stop()
                child.start(now)
                self.report(f"已重启{child.name}（第 {child.failures} 次）")

    def stop_all(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(self.children):
            child.stop()
