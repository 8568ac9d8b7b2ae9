"""`duban demo` as a newcomer runs it: quiet output (Prefect's logs in a file), a line per
report and the summary; afterwards `duban demo --serve-form` opens the links in its mail
with the demo's clock. A short span (two working days) keeps the test to about half a minute."""

from __future__ import annotations

import contextlib
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import httpx
import pytest

from tests.prefect_server import free_port

DUBAN = str(Path(sys.executable).with_name("duban"))
pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def test_demo_is_quiet_and_its_mail_links_open_afterwards(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env |= {
        "DUBAN_DATA_DIR": str(tmp_path / "data"),
        "DUBAN_PORTAL_PORT": str(port),
        "DUBAN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "COLUMNS": "100",
    }
    demo = subprocess.run(  # noqa: S603
        [DUBAN, "demo", "--reset", "--until", "2021-05-25"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    lines = output.splitlines()
    assert len(lines) < 60, output
    assert not [line for line in lines if " | INFO " in line or "Flow run" in line], output
    assert "已生成 2021年度 报告：data/reports/duban-plan1-2021.{html,docx,md}" in output
    assert "督办演示：全年运行结果" in output and "用时分布：" in output
    # The second plan (seed 000's 八项行动) has its own reports and summary lines.
    assert "已生成 八项行动 2021年度 报告：data/reports/duban-plan2-2021.{html,docx,md}" in output
    assert "第二个计划：" in output and "八项行动对照序时进度：" in output
    assert "督办单：共 " in output
    log = tmp_path / "data" / "logs" / "demo-prefect.log"
    assert "Beginning flow run" in log.read_text(encoding="utf-8")

    box = mailbox.Maildir(tmp_path / "data" / "mail", factory=None, create=False)
    links = set()
    for key in box.iterkeys():
        message = message_from_bytes(box.get_bytes(key), policy=default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        links |= set(re.findall(rf"http://127\.0\.0\.1:{port}/c/[A-Za-z0-9._~-]+", text))
    assert links

    form_log = tmp_path / "form.out"
    with form_log.open("wb") as out:
        form = subprocess.Popen(  # noqa: S603
            [DUBAN, "demo", "--serve-form"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert form.poll() is None, form_log.read_text(encoding="utf-8")
            time.sleep(0.3)
        codes = {httpx.get(link, timeout=10).status_code for link in sorted(links)}
    finally:
        os.killpg(form.pid, signal.SIGTERM)
        form.wait(timeout=30)
    assert codes == {200}
    assert "模拟时钟 2021-05-25 17:30" in form_log.read_text(encoding="utf-8")
