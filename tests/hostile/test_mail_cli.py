"""`duban mail relay --once` as a user runs it: a fresh directory where only `duban db upgrade`
ran (the database elsewhere, as on PostgreSQL), the embedded SMTP server, and a department
address that is not ASCII among ordinary ones."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from models.db import make_engine, make_sessionmaker, transaction
from notifications.outbox import enqueue_message
from notifications.sink import free_port

NOW = datetime(2021, 7, 5, 1, 0, tzinfo=UTC)
DUBAN = (str(Path(sys.executable).with_name("duban")),)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [*DUBAN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_relay_in_a_directory_where_only_db_upgrade_ran(tmp_path: Path) -> None:
    workdir = tmp_path / "office"
    workdir.mkdir()
    (tmp_path / "db").mkdir()
    url = f"sqlite:///{tmp_path / 'db' / 'duban.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DUBAN_DATA_DIR"},  # the default dir
        "DUBAN_DATABASE_URL": url,
        "DUBAN_SMTP_EMBEDDED": "true",
        "DUBAN_SMTP_PORT": str(free_port()),
        "PYTHONWARNINGS": "ignore",
    }
    upgraded = run(["db", "upgrade"], workdir, env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert not (workdir / ".duban").exists()
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        for n, address in enumerate(
            [*(f"dept{n}@example.org" for n in range(32)), "学会部@例子.中国"]
        ):
            enqueue_message(
                session=session,
                key=f"cli-{n}",
                kind="request",
                to=[address],
                subject=f"【报送提醒】第{n + 1}项",
                text_body="请报送。",
                now=NOW,
            )
    engine.dispose()
    relayed = run(["mail", "relay", "--once"], workdir, env)
    output = relayed.stdout + relayed.stderr
    assert relayed.returncode == 0, output
    assert "Traceback" not in output
    assert "发送成功 33" in output
    assert len(mailbox.Maildir(workdir / ".duban" / "mail", create=False)) == 33
