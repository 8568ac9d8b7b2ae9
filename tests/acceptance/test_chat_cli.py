"""Robots as a supervisor meets them: `departments import` refuses a non-https robot with
file, line and fix; `doctor` lists robots without secrets; `mail list` and `mail relay`
show the channel (a robot on a closed loopback port: retried, nothing leaves the host)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from models import clock
from models.db import make_engine, make_sessionmaker, transaction
from models.vocabulary import Channel
from notifications.outbox import NewMessage, enqueue_messages
from notifications.sink import free_port

REPO = Path(__file__).resolve().parents[2]
DUBAN = REPO / ".venv" / "bin" / "duban"
pytestmark = pytest.mark.slow
SECRET = "SECdeadbeefcafe0123456789"


def duban(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(  # noqa: S603
        [str(DUBAN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stdout + done.stderr


def directory(path: Path, url: str) -> Path:
    path.write_text(
        "departments:\n"
        "  - name: 学会部\n"
        "    contact: {name: 陈晓, email: xuehuibu@example.org}\n"
        "    leader:\n"
        "      name: 刘卫东\n"
        "      email: liu@example.org\n"
        "      robots:\n"
        f"        - {{kind: 钉钉, url: '{url}', secret: {SECRET}}}\n",
        encoding="utf-8",
    )
    return path


def test_robots_from_import_to_relay(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_SMTP_PORT": str(free_port()),
        "DUBAN_SMTP_TIMEOUT_SECONDS": "2",
        "DUBAN_PORTAL_PORT": str(free_port()),
        "COLUMNS": "250",
        "PYTHONWARNINGS": "ignore",
    }
    assert duban(env, "db", "upgrade")[0] == 0
    http = directory(
        tmp_path / "http.yaml", "http://oapi.dingtalk.com/robot/send?access_token=abc123def456"
    )
    code, out = duban(env, "departments", "import", str(http))
    assert code == 1 and "Traceback" not in out
    assert f"{http}:8" in out and "必须是 https 地址" in out and "https://" in out
    assert "学会部" not in duban(env, "departments", "list")[1]

    url = f"https://127.0.0.1:{port}/robot/send?access_token=abc123def456"
    code, out = duban(env, "departments", "import", str(directory(tmp_path / "ok.yaml", url)))
    assert code == 0, out
    _, doctor = duban(env, "doctor")
    assert "钉钉（分管领导，https://127.0.0.1/…abc1…，加签）" in doctor
    assert SECRET not in doctor and "abc123def456" not in doctor

    engine = make_engine(f"sqlite:///{tmp_path / 'duban.db'}")
    with transaction(make_sessionmaker(engine)) as session:
        enqueue_messages(
            session=session,
            messages=[
                NewMessage(
                    key="chat:test:1",
                    kind="chat",
                    to=[url],
                    subject="第2级督办：第4项（学会部）",
                    text_body="【督办提醒】第2级督办",
                    channel=Channel.DINGTALK,
                )
            ],
            now=clock.now(),
        )
    engine.dispose()
    _, listed = duban(env, "mail", "list")
    assert "钉钉" in listed and "群消息" in listed and "abc123def456" not in listed
    _, relayed = duban(env, "mail", "relay", "--once")
    assert "领取 1 封" in relayed and "稍后重试 1" in relayed, relayed
    assert "无法连接群机器人" in relayed
