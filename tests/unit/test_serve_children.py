"""`duban serve`'s guards and its child supervision: refusals before anything starts, one
line for a port already taken, restart with back-off, and a stop that leaves no process."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duban.children import Child, Children, alive, backoff_seconds, descendants
from duban.cli import app
from duban.cli.serve import serve_refusal
from duban.ports import port_problem
from models.settings import Settings


def test_backoff_doubles_up_to_a_minute() -> None:
    assert [backoff_seconds(n) for n in (0, 1, 2, 3, 7, 20)] == [0, 1, 2, 4, 60, 60]


def test_a_form_beyond_loopback_needs_a_public_url() -> None:
    refusal = serve_refusal(Settings(portal_host="0.0.0.0"))  # noqa: S104
    assert refusal is not None and "DUBAN_PUBLIC_URL" in refusal
    public = "https://duban.example.org"
    assert serve_refusal(Settings(portal_host="0.0.0.0", public_url=public)) is None  # noqa: S104
    assert serve_refusal(Settings()) is None


def test_production_with_the_development_secret_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.setenv("DUBAN_ENV", "production")
    try:
        with pytest.raises(ValueError, match="DUBAN_SECRET_KEY"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_port_already_taken_is_one_line_with_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = port_problem("127.0.0.1", port, "报送表单", "设置 DUBAN_PORTAL_PORT")
    assert problem == (
        f"报送表单端口 127.0.0.1:{port} 已被占用：停止占用它的程序，或设置 DUBAN_PORTAL_PORT。"
    )


def test_serve_on_a_taken_ui_port_stops_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.settings import get_settings

    monkeypatch.setenv("DUBAN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = CliRunner().invoke(app, ["serve", "--ui-port", str(port)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert f"Prefect 界面端口 127.0.0.1:{port} 已被占用" in result.output
    assert "--ui-port" in result.output
    assert not (tmp_path / "data").exists()


def test_a_dead_child_is_restarted_after_its_backoff_and_stopped_with_its_tree(
    tmp_path: Path,
) -> None:
    now = [100.0]
    lines: list[str] = []
    script = "import subprocess, sys, time; subprocess.Popen(['sleep', '60']); sys.exit(3)"
    child = Child("测试进程", [sys.executable, "-c", script], {}, tmp_path / "child.log")
    children = Children([child], report=lines.append, clock=lambda: now[0])
    children.start(child)
    assert child.process is not None
    child.process.wait(timeout=30)
    children.poll()
    assert lines == [f"测试进程已退出（退出码 3），1 秒后重启（日志：{tmp_path / 'child.log'}）"]
    first = child.process
    children.poll()
    assert child.process is first
    now[0] += 1
    children.poll()
    assert child.process is not first and lines[-1] == "已重启测试进程（第 1 次）"
    tree = descendants(child.process.pid)
    children.stop_all()
    assert not child.running()
    assert [pid for pid in tree if alive(pid)] == []
