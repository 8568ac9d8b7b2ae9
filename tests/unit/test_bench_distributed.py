"""The distributed benchmark's bookkeeping: peak files and busy time (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_distributed import PEAK_SITE, busy_seconds, read_peaks, run_timings

T0 = datetime(2021, 3, 18, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_read_peaks_keeps_the_largest_process_per_key(tmp_path: Path) -> None:
    (tmp_path / "run-a.101.peak").write_text("204800\n")
    (tmp_path / "run-a.102.peak").write_text("102400\n")
    (tmp_path / "relay1-0.7.peak").write_text("51200\n")
    (tmp_path / "broken.9.peak").write_text("")
    (tmp_path / "notes.txt").write_text("1")
    assert read_peaks(tmp_path) == {"run-a": 200.0, "relay1-0": 50.0}


def test_busy_seconds_counts_overlapping_intervals_once() -> None:
    assert busy_seconds([]) == 0.0
    shards = [(_at(0), _at(10)), (_at(5), _at(12)), (_at(20), _at(21)), (_at(6), _at(7))]
    assert busy_seconds(shards) == 13.0


def test_peak_site_writes_a_file_only_for_a_keyed_process(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(PEAK_SITE), DUBAN_BENCH_PEAK_DIR=str(tmp_path))
    env.pop("DUBAN_BENCH_PEAK_NAME", None)
    env.pop("PREFECT__FLOW_RUN_ID", None)
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
    assert list(tmp_path.iterdir()) == []
    env["PREFECT__FLOW_RUN_ID"] = "0f0e"
    subprocess.run(
        [sys.executable, "-c", "x = bytearray(64 * 1024 * 1024)"], env=env, check=True, timeout=60
    )
    peaks = read_peaks(tmp_path)
    assert list(peaks) == ["0f0e"]
    assert peaks["0f0e"] > 64


def _run(
    run_id: str, created: float, start: float, end: float, **extra: object
) -> dict[str, object]:
    return {
        "id": run_id,
        "created": _at(created).isoformat(),
        "start_time": _at(start).isoformat(),
        "end_time": _at(end).isoformat(),
        "deployment_id": extra.get("deployment_id"),
        "parent_task_run_id": extra.get("parent_task_run_id"),
    }


def _task(task_id: str, flow_run_id: str, start: float, end: float) -> dict[str, object]:
    return {
        "id": task_id,
        "flow_run_id": flow_run_id,
        "start_time": _at(start).isoformat(),
        "end_time": _at(end).isoformat(),
    }


def test_run_timings_split_each_process_run_around_its_tasks() -> None:
    runs = [
        _run("gate", 0, 10, 60, deployment_id="d1"),
        _run("plan", 11, 11, 59, parent_task_run_id="p-plan"),
        _run("shard", 12, 20, 50, deployment_id="d2", parent_task_run_id="p-shard"),
    ]
    tasks = [
        _task("p-plan", "gate", 11, 59),
        _task("p-shard", "plan", 12, 50),
        _task("chunk1", "shard", 22, 30),
        _task("chunk2", "shard", 31, 45),
        _task("inline", "plan", 55, 57),
    ]
    assert run_timings(runs, tasks) == "10.0+[45.0|2.0|3.0] 8.0+[2.0|23.0|5.0]"
