"""`duban mail …` end to end: preview, list, relay into the embedded sink, store, show, retry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from models import clock
from models.db import make_engine, make_sessionmaker, transaction
from models.outbox import OutboxMessage
from notifications.outbox import enqueue_message
from notifications.rendering import render_message
from notifications.samples import sample_context
from notifications.sink import free_port

REPO = Path(__file__).resolve().parents[2]
DUBAN = REPO / ".venv" / "bin" / "duban"
pytestmark = pytest.mark.slow


def duban(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = subprocess.run(  # noqa: S603
        [str(DUBAN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_mail_commands_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DUBAN_DATA_DIR": str(tmp_path),
        "DUBAN_SMTP_PORT": str(free_port()),
        "COLUMNS": "200",
        "PYTHONWARNINGS": "ignore",
    }
    assert "【催办】" in duban(env, "mail", "preview", "reminder")
    assert "未知的邮件类型" in duban(env, "mail", "preview", "spam", code=1)
    duban(env, "db", "upgrade")
    engine = make_engine(f"sqlite:///{tmp_path / 'duban.db'}")
    rendered = render_message("request", sample_context("request"))
    with transaction(make_sessionmaker(engine)) as session:
        row: OutboxMessage = enqueue_message(
            session=session,
            key="cli-1",
            kind="request",
            to=["dept@example.org"],
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            now=clock.now(),
        )
    engine.dispose()
    assert "待发送 1" in duban(env, "mail", "list")
    relayed = duban(env, "mail", "relay", "--once")
    assert "已启动内置邮件服务器" in relayed and "发送成功 1" in relayed
    assert "已发送 1" in duban(env, "mail", "list", "--status", "sent")
    listing = duban(env, "mail", "store")
    assert row.id[:12] in listing and "共 1 封" in listing
    shown = duban(env, "mail", "store", row.id[:12])
    assert f"<{row.id}@example.org>" in shown and "2021年6月30日（星期三）" in shown
    assert "dept@example.org：250 accepted" in duban(env, "mail", "show", row.id[:8])
    assert "不能重试" in duban(env, "mail", "retry", row.id[:8], code=1)
    assert "放回待发送队列：0 封" in duban(env, "mail", "retry", "--dead")
    assert (tmp_path / "mail" / "new").is_dir()
