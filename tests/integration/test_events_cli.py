"""`duban events status`: how many domain events wait for Prefect's feed, since when, and
who publishes them (SQLite, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from models.db import make_engine, upgrade
from models.outbox import DomainEvent

DUBAN = Path(sys.executable).with_name("duban")
REPO = Path(__file__).resolve().parents[2]


def status(env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603
        [str(DUBAN), "events", "status"], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_names_the_backlog_its_oldest_row_and_the_publisher(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    engine = make_engine(url)
    upgrade(engine)
    env = {**os.environ, "DUBAN_DATABASE_URL": url, "COLUMNS": "200"}
    env.pop("DUBAN_EVENT_PUBLISHER", None)
    out = status(env)
    assert "待发布事件 0 条。" in out
    assert "发布方式：flow" in out
    written = [datetime(2021, 5, 24, 1, 30, tzinfo=UTC), datetime(2021, 5, 24, 2, 0, tzinfo=UTC)]
    with engine.begin() as connection:
        connection.execute(
            insert(DomainEvent),
            [
                {
                    "type": "duban.checkin.requested",
                    "resource_id": f"duban.checkin.{n}",
                    "related": [],
                    "payload": {},
                    "occurred_at": moment,
                    "created_at": moment,
                }
                for n, moment in enumerate(written)
            ],
        )
    engine.dispose()
    out = status({**env, "DUBAN_EVENT_PUBLISHER": "relay"})
    assert "待发布事件 2 条，最早一条写入于 2021年5月24日 09:30。" in out  # Asia/Shanghai
    assert "发布方式：relay" in out
    assert "duban events relay" in out
