"""Rate limits stay correct across worker processes (`duban portal --workers N`, issue 16)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from portal.security import Limiter, RateLimiter, SharedRateLimiter
from portal.server import uvicorn_options
from tests.integration.test_portal import SETTINGS

CHILD = """
import sys
from pathlib import Path
from portal.security import SharedRateLimiter
limiter = SharedRateLimiter(Path(sys.argv[1]), clock=lambda: 1000.0)
allowed = sum(limiter.allow("POST:checkin:1:2", limit=25, window=60) for _ in range(20))
print(allowed)
"""


def test_processes_share_one_count(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    children = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    allowed = [int(child.communicate(timeout=60)[0]) for child in children]
    assert sum(allowed) == 25  # 80 attempts in four processes, one limit of 25


def test_shared_window_slides_and_keys_are_separate(tmp_path: Path) -> None:
    now = [0.0]
    first = SharedRateLimiter(tmp_path / "limits.db", clock=lambda: now[0], prune_every=3)
    second = SharedRateLimiter(tmp_path / "limits.db", clock=lambda: now[0])
    assert [first.allow("a", limit=2, window=60) for _ in range(2)] == [True, True]
    assert second.allow("a", limit=2, window=60) is False
    assert second.allow("b", limit=2, window=60) is True
    now[0] = 61.0
    assert second.allow("a", limit=2, window=60) is True
    assert first.allow("a", limit=2, window=60) is True
    assert first.allow("a", limit=2, window=60) is False


def test_shared_counts_cost_the_window_not_the_limit(tmp_path: Path) -> None:
    # the per-address backstop is generous (6000 a minute): counting it must not read one
    # row per request, or every request of a deadline rush pays for all the others
    now = [0.0]
    limiter = SharedRateLimiter(tmp_path / "limits.db", clock=lambda: now[0])
    for _ in range(3000):
        assert limiter.allow("ip:10.0.0.1", limit=10**9, window=60)
        now[0] += 0.01
    connection = sqlite3.connect(tmp_path / "limits.db")
    (rows,) = connection.execute("select count(*) from counts").fetchone()
    connection.close()
    assert rows <= 31  # 30 s of hits in one-second buckets


def test_shared_hits_are_forgotten_at_most_one_bucket_late(tmp_path: Path) -> None:
    now = [0.5]
    limiter = SharedRateLimiter(tmp_path / "limits.db", clock=lambda: now[0])
    assert limiter.allow("a", limit=1, window=60) is True
    now[0] = 60.4  # inside the window: refused, as an exact sliding window would
    assert limiter.allow("a", limit=1, window=60) is False
    now[0] = 60.6  # just out of the window, still in the bucket it fell in: refused
    assert limiter.allow("a", limit=1, window=60) is False
    now[0] = 61.0  # the bucket has left the window
    assert limiter.allow("a", limit=1, window=60) is True


@pytest.mark.parametrize("shared", [False, True])
def test_allow_each_stops_at_the_first_refusal(tmp_path: Path, shared: bool) -> None:
    limiter: Limiter = (
        SharedRateLimiter(tmp_path / "limits.db", clock=lambda: 5.0)
        if shared
        else RateLimiter(clock=lambda: 5.0)
    )
    assert limiter.allow_each([("ip", 3), ("link", 1)], window=60) is True
    # the link is refused: the address stays counted
    assert limiter.allow_each([("ip", 3), ("link", 1)], window=60) is False
    assert limiter.allow("ip", limit=3, window=60) is True  # the third
    # the address is refused: the other key is not counted
    assert limiter.allow_each([("ip", 3), ("other", 1)], window=60) is False
    assert limiter.allow("other", limit=1, window=60) is True


def test_workers_option_reaches_uvicorn() -> None:
    options = uvicorn_options(SETTINGS, host=None, port=None, workers=4)
    assert options["workers"] == 4
    # a busy machine's slow worker start-up is not taken for a dead worker (restart loop)
    assert options["timeout_worker_healthcheck"] >= 30
    assert "workers" not in uvicorn_options(SETTINGS, host=None, port=None)


@pytest.mark.slow
def test_duban_portal_with_two_workers_counts_one_limit(tmp_path: Path) -> None:
    import os
    import time

    import httpx

    from duban.runtime import open_store
    from models.db import transaction
    from models.settings import Settings
    from notifications.links import make_token
    from notifications.sink import free_port
    from tests.portal_rows import make_checkin

    secret = "w" * 40
    env = {**os.environ, "DUBAN_DATA_DIR": str(tmp_path), "DUBAN_SECRET_KEY": secret}
    env.pop("DUBAN_DATABASE_URL", None)
    duban = Path(sys.executable).with_name("duban")
    subprocess.run([str(duban), "db", "upgrade"], env=env, check=True, capture_output=True)  # noqa: S603
    settings = Settings(data_dir=tmp_path, secret_key=secret, _env_file=None)
    with transaction(open_store(settings).sessions) as session:
        rows = make_checkin(session)
    token = make_token(
        settings=settings,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=rows.checkin.due_date.replace(year=2099),
    )
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [str(duban), "portal", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "duban portal --workers 2 did not start"
            time.sleep(0.2)
        time.sleep(1.0)  # the second worker
        codes = [
            httpx.get(f"http://127.0.0.1:{port}/c/{token}", timeout=10).status_code
            for _ in range(40)
        ]
    finally:
        server.terminate()
        stderr = server.communicate(timeout=30)[1].decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    assert codes.count(200) == 30 and codes.count(429) == 10, codes
    assert (tmp_path / "portal-limits.db").exists()
