"""A real headless Chromium attaches evidence to a report through the form, downloads it
through the signed link on the form's history, and has a forbidden file refused with what
it typed kept. The portal runs in uvicorn over SQLite (fixtures of `test_portal_browser`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.attachment_table import Attachment
from models.settings import Settings
from models.supervision import Submission
from notifications.links import form_url
from tests import attachment_files as files
from tests.integration.test_portal_browser import (
    WebDriver,
    driver,
    pytestmark,
    served,
    wait_until,
)
from tests.portal_rows import DUE, CheckinRows

__all__ = ["driver", "pytestmark", "served"]


def allow_downloads(web: WebDriver, folder: Path) -> None:
    """Let headless Chromium save downloads into `folder` (through chromedriver's CDP)."""
    web.call(
        "POST",
        f"/session/{web.session}/goog/cdp/execute",
        {
            "cmd": "Browser.setDownloadBehavior",
            "params": {"behavior": "allow", "downloadPath": str(folder)},
        },
    )


def element_value(web: WebDriver, css: str, name: str) -> str:
    return str(web.call("GET", f"/session/{web.session}/element/{web.find(css)}/property/{name}"))


def counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        subs = session.scalar(select(func.count()).select_from(Submission))
        kept = session.scalar(select(func.count()).select_from(Attachment))
    return int(subs or 0), int(kept or 0)


def test_chromium_uploads_evidence_downloads_it_and_keeps_text_on_refusal(
    driver: WebDriver,
    served: tuple[Settings, sessionmaker[Session], CheckinRows],
    tmp_path: Path,
) -> None:
    settings, sessions, rows = served
    url = form_url(
        settings=settings,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=DUE,
    )
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    photo, ledger = uploads / "现场照片.png", uploads / "活动台账.pdf"
    photo.write_bytes(files.image("PNG"))
    ledger.write_bytes(files.pdf("学术交流活动台账" * 2000))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    allow_downloads(driver, downloads)

    driver.go(url)
    driver.click('input[name="status"][value="on_track"]')
    driver.type("#narrative", "已举办学术活动120场次，附照片和台账。")
    driver.type("#attachments", f"{photo}\n{ledger}")
    driver.click("#submit")
    wait_until(lambda: "提交成功" in driver.source())
    assert "随报送保存附件2个：现场照片.png、活动台账.pdf" in driver.source()
    assert counts(sessions) == (1, 2)

    driver.go(url)
    wait_until(lambda: "以往报送" in driver.source())
    assert driver.count("#history ul.attachments a") == 2
    link = "#history ul.attachments li:nth-child(2) a"
    assert element_value(driver, link, "href").startswith(f"{settings.public_url}/f/")
    driver.click(link)
    saved = downloads / "活动台账.pdf"
    wait_until(lambda: saved.exists() and not list(downloads.glob("*.crdownload")))
    assert saved.read_bytes() == ledger.read_bytes()

    tool = uploads / "工具.pdf"
    tool.write_bytes(files.executable())
    driver.go(url)
    driver.click('input[name="status"][value="at_risk"]')
    driver.call("POST", f"/session/{driver.session}/element/{driver.find('#narrative')}/clear", {})
    driver.type("#narrative", "第二版：补充<b>说明</b>，场地仍紧张。")
    driver.type("#problems", "经费未到位")
    driver.type("#attachments", str(tool))
    driver.click("#submit")
    wait_until(lambda: "请修改以下内容后重新提交" in driver.source())
    source = driver.source()
    assert "附件“工具.pdf”的内容是无法识别的文件" in source
    assert "本次提交未保存任何内容" in source
    assert element_value(driver, "#narrative", "value") == "第二版：补充<b>说明</b>，场地仍紧张。"
    assert element_value(driver, "#problems", "value") == "经费未到位"
    assert element_value(driver, 'input[name="status"][value="at_risk"]', "checked") == "True"
    assert counts(sessions) == (1, 2)
