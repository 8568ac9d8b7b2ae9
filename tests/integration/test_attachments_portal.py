"""Evidence over HTTP, on SQLite and PostgreSQL: upload with a report, stored in its
transaction, listed in the receipt and the form's history, downloaded through the signed
link byte for byte; refused files keep what was typed and store nothing.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.attachment_table import Attachment
from models.outbox import OutboxMessage
from models.settings import Settings
from models.supervision import Submission
from models.vocabulary import AttachmentStorage
from notifications.links import attachment_token, make_token
from portal.app import create_app
from tasks.attachments import (
    CHUNK_BYTES,
    directory_path,
    submission_attachment_links,
)
from tests import attachment_files as files
from tests.integration.test_portal import rows, sessions
from tests.portal_rows import DUE, CheckinRows

__all__ = ["rows", "sessions"]

NOW = datetime(2021, 9, 20, 2, 0, tzinfo=UTC)
CLIENT = ("203.0.113.9", 40000)
BASE = "http://portal.test"
NARRATIVE = "已举办学术活动120场次，附活动照片与台账。"


def settings_with(**overrides: object) -> Settings:
    return Settings(secret_key="e" * 40, public_url=BASE, _env_file=None, **overrides)  # type: ignore[arg-type]


def client(settings: Settings, sessions: sessionmaker[Session]) -> httpx.AsyncClient:
    app = create_app(settings, sessions, now=lambda: NOW, publish=lambda _s, _n: 0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=CLIENT), base_url=BASE)


def form_path(settings: Settings, rows: CheckinRows) -> str:
    token = make_token(
        settings=settings,
        checkin_id=rows.checkin.id,
        department_id=rows.department.id,
        due_date=DUE,
    )
    return f"/c/{token}"


def fields(html: str, rows: CheckinRows, **extra: str) -> dict[str, str]:
    def hidden(name: str) -> str:
        match = re.search(rf'name="{name}" value="([^"]*)"', html)
        assert match, name
        return match.group(1)

    data = {
        "csrf_token": hidden("csrf_token"),
        "submit_id": hidden("submit_id"),
        "status": "on_track",
        "narrative": NARRATIVE,
        f"value_{rows.targets[0].id}": "120",
        "problems": "场地紧张",
    }
    data.update(extra)
    return data


async def submit(
    web: httpx.AsyncClient,
    url: str,
    rows: CheckinRows,
    uploads: list[tuple[str, bytes]],
    **extra: str,
) -> httpx.Response:
    """Open the form, then post it with `uploads` in the file field."""
    page = await web.get(url)
    attached = [("attachments", (name, data, "application/octet-stream")) for name, data in uploads]
    return await web.post(url, data=fields(page.text, rows, **extra), files=attached)


def stored(sessions: sessionmaker[Session], rows: CheckinRows) -> tuple[int, int, int]:
    """Submissions, attachments and receipts of the check-in."""
    with sessions() as session:
        subs = session.scalar(select(func.count()).where(Submission.checkin_id == rows.checkin.id))
        attached = session.scalar(
            select(func.count())
            .select_from(Attachment)
            .join(Submission, Submission.id == Attachment.submission_id)
            .where(Submission.checkin_id == rows.checkin.id)
        )
        receipts = sum(
            1
            for message in session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "receipt")
            )
            if message.to_addrs == rows.department.contact_emails
        )
    return int(subs or 0), int(attached or 0), receipts


async def test_upload_is_stored_listed_in_the_receipt_and_downloads_identically(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with()
    photo = files.image("PNG")
    ledger = files.pdf("x" * (CHUNK_BYTES * 2 + 17))
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        page = await web.get(url)
        assert 'enctype="multipart/form-data"' in page.text
        assert "每个不超过20 MB，每次最多10个" in page.text
        reply = await web.post(
            url,
            data=fields(page.text, rows),
            files=[
                ("attachments", ("现场照片.png", photo, "image/png")),
                ("attachments", ("../../活动 台账\u202e.pdf", ledger, "text/plain")),
            ],
        )
        assert reply.status_code == 200, reply.text
        assert "随报送保存附件2个：现场照片.png、活动 台账.pdf" in reply.text
        assert stored(sessions, rows) == (1, 2, 1)
        with sessions() as session:
            kept = session.scalars(select(Attachment).order_by(Attachment.position)).all()
            receipt = session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "receipt")
            ).all()[-1]
        assert [(a.file_name, a.kind, a.media_type, a.size) for a in kept] == [
            ("现场照片.png", "png", "image/png", len(photo)),
            ("活动 台账.pdf", "pdf", "application/pdf", len(ledger)),
        ]
        assert [a.sha256 for a in kept] == [
            hashlib.sha256(photo).hexdigest(),
            hashlib.sha256(ledger).hexdigest(),
        ]
        assert all(a.storage is AttachmentStorage.DATABASE for a in kept)
        assert "附件（2个，下载链接30天内有效）" in receipt.text_body
        links = re.findall(rf"{BASE}/f/[A-Za-z0-9_.-]+", receipt.text_body)
        assert len(links) == 2
        assert "现场照片.png（PNG图片" in receipt.text_body
        assert all(link in receipt.html_body for link in links)

        for link, content, media in zip(
            links, (photo, ledger), ("image/png", "application/pdf"), strict=True
        ):
            got = await web.get(urlsplit(link).path)
            assert got.status_code == 200
            assert got.content == content
            assert got.headers["content-type"] == media
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["cache-control"] == "no-store"
            disposition = got.headers["content-disposition"]
            assert disposition.startswith("attachment; filename=")
            encoded = disposition.split("filename*=UTF-8''")[1]
            assert unquote(encoded) in {"现场照片.png", "活动 台账.pdf"}
            head = await web.head(urlsplit(link).path)
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["content-length"] == str(len(content))

        again = await web.get(url)
        assert "现场照片.png" in again.text and "活动 台账.pdf" in again.text
        assert len(re.findall(r'href="http://portal.test/f/', again.text)) == 2


async def test_the_review_can_list_a_submissions_files_with_download_urls(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with()
    content = files.word()
    async with client(settings, sessions) as web:
        await submit(web, form_path(settings, rows), rows, [("总结.docx", content)])
        with sessions() as session:
            submission = session.scalars(
                select(Submission).where(Submission.checkin_id == rows.checkin.id)
            ).one()
            listed = submission_attachment_links(
                session=session, submission_id=submission.id, settings=settings, now=NOW
            )
        assert [(x.file_name, x.kind_label) for x in listed] == [("总结.docx", "Word文档")]
        got = await web.get(urlsplit(listed[0].url).path)
        assert got.content == content
        assert got.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )


REFUSED = [
    pytest.param(
        [("太大.pdf", files.pdf("y" * 70_000))], "“太大.pdf”超过64 KB的大小限制", id="too-large"
    ),
    pytest.param(
        [(f"第{n}份.pdf", files.pdf()) for n in range(4)],
        "本次选择了4个附件，每次最多可上传3个",
        id="too-many",
    ),
    pytest.param(
        [("照片.png", files.image("PNG")), ("工具.exe", files.executable())],
        "“工具.exe”的内容是无法识别的文件",
        id="forbidden-type",
    ),
    pytest.param(
        [("报告.pdf", files.word())],
        "“报告.pdf”的扩展名 .pdf 与文件内容（Word文档）不符",
        id="lying-extension",
    ),
]


@pytest.mark.parametrize(("uploads", "message"), REFUSED)
async def test_a_refused_file_keeps_the_typed_text_and_stores_nothing(
    sessions: sessionmaker[Session],
    rows: CheckinRows,
    uploads: list[tuple[str, bytes]],
    message: str,
) -> None:
    settings = settings_with(attachment_max_bytes=65536, attachment_max_count=3)
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        page = await web.get(url)
        reply = await web.post(
            url,
            data=fields(page.text, rows, next_steps="下半年<b>加快</b>推进"),
            files=[("attachments", (name, data, "application/pdf")) for name, data in uploads],
        )
    assert reply.status_code == 422
    assert message in reply.text
    assert "本次提交未保存任何内容" in reply.text
    assert NARRATIVE in reply.text
    assert "场地紧张" in reply.text
    assert "下半年&lt;b&gt;加快&lt;/b&gt;推进" in reply.text
    assert re.search(rf'id="value_{rows.targets[0].id}"[^>]*value="120"', reply.text)
    assert stored(sessions, rows) == (0, 0, 0)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_a_body_over_every_limit_is_refused_before_it_is_read(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with(attachment_max_bytes=4096, attachment_max_count=2)
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        page = await web.get(url)
        request = web.build_request(
            "POST",
            url,
            data=fields(page.text, rows),
            files=[("attachments", ("a.pdf", files.pdf("z" * 300_000), "application/pdf"))],
        )
        reply = await web.send(request)
    assert reply.status_code == 413
    assert "提交内容过大" in reply.text
    assert stored(sessions, rows) == (0, 0, 0)


async def test_empty_file_inputs_are_no_attachments(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with()
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        reply = await submit(web, url, rows, [("", b"")])
    assert reply.status_code == 200, reply.text
    assert stored(sessions, rows) == (1, 0, 1)


async def test_a_resent_form_stores_its_files_once(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with()
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        page = await web.get(url)
        data = fields(page.text, rows)
        upload = [("attachments", ("a.pdf", files.pdf(), "application/pdf"))]
        replies = [await web.post(url, data=data, files=upload) for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert stored(sessions, rows) == (1, 1, 1)


async def test_download_links_refuse_tampering_other_purposes_and_other_departments(
    sessions: sessionmaker[Session], rows: CheckinRows
) -> None:
    settings = settings_with()
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        await submit(web, url, rows, [("a.pdf", files.pdf())])
        with sessions() as session:
            attachment = session.scalars(select(Attachment)).one()
        good = attachment_token(
            settings=settings,
            attachment_id=attachment.id,
            department_id=rows.department.id,
            now=NOW,
        )
        other_department = attachment_token(
            settings=settings,
            attachment_id=attachment.id,
            department_id=rows.department.id + 1000,
            now=NOW,
        )
        assert (await web.get(f"/f/{good}")).status_code == 200
        form_token = url.removeprefix("/c/")
        attempts = {
            "tampered": f"/f/{good[:-3]}abc",
            "form link": f"/f/{form_token}",
            "other department": f"/f/{other_department}",
            "download token on the form": f"/c/{good}",
            "garbage": "/f/nothing",
        }
        replies = {name: await web.get(path) for name, path in attempts.items()}
        expired = create_app(
            settings,
            sessions,
            now=lambda: NOW + timedelta(days=settings.attachment_link_days + 1),
            publish=lambda _s, _n: 0,
        )
        transport = httpx.ASGITransport(app=expired, client=CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as late:
            replies["expired"] = await late.get(f"/f/{good}")
    assert {name: reply.status_code for name, reply in replies.items()} == dict.fromkeys(
        replies, 404
    )
    assert all(b"%PDF" not in reply.content for reply in replies.values())


async def test_the_shared_directory_store_keeps_bytes_by_digest(
    sessions: sessionmaker[Session], rows: CheckinRows, tmp_path: Path
) -> None:
    store = tmp_path / "shared-evidence"
    settings = settings_with(attachment_dir=store)
    content = files.excel()
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        reply = await submit(web, url, rows, [("../统计表.xlsx", content)])
        assert reply.status_code == 200, reply.text
        with sessions() as session:
            attachment = session.scalars(select(Attachment)).one()
            raw = session.scalar(select(Attachment.content))
        assert attachment.storage is AttachmentStorage.DIRECTORY and raw is None
        on_disk = directory_path(store, attachment.sha256)
        assert on_disk.read_bytes() == content
        assert [p.name for p in store.rglob("*") if p.is_file()] == [attachment.sha256]
        token = attachment_token(
            settings=settings,
            attachment_id=attachment.id,
            department_id=rows.department.id,
            now=NOW,
        )
        got = await web.get(f"/f/{token}")
    assert got.content == content
    assert "%E7%BB%9F%E8%AE%A1%E8%A1%A8.xlsx" in got.headers["content-disposition"]


async def test_files_and_their_submission_commit_together(
    sessions: sessionmaker[Session], rows: CheckinRows, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("the receipt could not be composed")

    monkeypatch.setattr("tasks.submissions.insert_receipt", broken)
    settings = settings_with()
    url = form_path(settings, rows)
    async with client(settings, sessions) as web:
        reply = await submit(web, url, rows, [("a.pdf", files.pdf())])
    assert reply.status_code == 503
    assert NARRATIVE in reply.text
    assert stored(sessions, rows) == (0, 0, 0)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_a_large_file_stops_spooling_at_the_limit() -> None:
    from starlette.requests import Request

    from portal.attachments import read_upload

    boundary = "b0undary"
    big = b"%PDF-" + b"x" * (3 * 1024 * 1024)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="narrative"\r\n\r\n'
            f"{NARRATIVE}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="attachments"; filename="大.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    written: list[int] = []  # bytes counted before the file was dropped

    async def receive() -> dict[str, object]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/c/x",
        "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())],
    }
    settings = settings_with(attachment_max_bytes=100_000)
    form = await read_upload(Request(scope, receive), settings=settings, text_bytes=128 * 1024)
    try:
        assert form.fields["narrative"] == NARRATIVE
        assert [part.name for part in form.files] == ["大.pdf"]
        assert form.files[0].spool is None
        written.append(form.files[0].size)
        assert form.accepted == []
        assert form.refusals[0] == "附件“大.pdf”超过98 KB的大小限制，未保存。"
    finally:
        form.close()
    assert written[0] <= 100_000 + 65536 < len(big)
